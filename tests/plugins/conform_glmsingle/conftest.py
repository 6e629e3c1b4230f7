"""Fixtures for the GLMsingle tests: reference cases and cached native fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
GLMSINGLE_REFDATA = REPO_ROOT.parent / "shared" / "refdata" / "glmsingle"
CASES = ("c1_1d_tr1_sd3", "c3_1d_options")


def case_params(case: str, ref: Any) -> dict[str, Any]:
    """The options the official fit of ``case`` used (refdata JSON ``options.main``)."""
    params: dict[str, Any] = {"verbose": False}
    if case.startswith("c3"):
        params.update(sessionindicator=[1, 1, 1, 2, 2, 2], xvalscheme=[[0, 3], [1, 4], [2, 5]],
                      n_pcs=6, pcstop=1.0, fracs=np.linspace(0.95, 0.15, 9), maxpolydeg=2,
                      chunklen=300, extra_regressors=list(ref["extra_regressors"]))
    return params


def case_inputs(ref: Any) -> tuple[list[np.ndarray], list[np.ndarray], float, float]:
    runs = [r.astype(np.float32) for r in ref["data"]]
    design = [d.astype(np.float64) for d in ref["design"]]
    return design, runs, float(ref["stimdur"]), float(ref["tr"])


@pytest.fixture(scope="session", params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """(name, npz) of a shared reference case; skips when ../shared/refdata is absent."""
    path = GLMSINGLE_REFDATA / f"{request.param}.npz"
    if not path.is_file():
        pytest.skip(f"GLMsingle reference data not found at {path}: the parity tests compare "
                    "with the official package's outputs in ../shared/refdata beside the repo")
    return request.param, dict(np.load(path))


def _fit(name: str, ref: Any, official_hrfs: bool, force: dict[str, Any] | None = None) -> dict:
    from conform_glmsingle import GLM_single

    params = case_params(name, ref)
    if official_hrfs:
        params.update(
            hrflibrary=ref["official_hrflibrary"], hrftoassume=ref["official_hrftoassume"]
        )
    design, runs, stimdur, tr = case_inputs(ref)
    return GLM_single(params).fit(design, runs, stimdur, tr, _force=force)


@pytest.fixture(scope="session")
def end_to_end(case: tuple[str, Any]) -> tuple[str, Any, dict]:
    """Native fit with default choices and our generated HRF library."""
    name, ref = case
    return name, ref, _fit(name, ref, official_hrfs=False)


@pytest.fixture(scope="session")
def forced(case: tuple[str, Any]) -> tuple[str, Any, dict]:
    """Native fit with the official HRFs and every discrete choice forced to the reference."""
    name, ref = case
    force = {
        "HRFindex": ref["out_B_HRFindex"].ravel(),
        "noisepool": ref["out_C_noisepool"].ravel(),
        "pcregressors": list(ref["out_C_pcregressors"]),
        "pcnum": int(ref["out_C_pcnum"]),
        "FRACvalue": ref["out_D_FRACvalue"].ravel(),
    }
    return name, ref, _fit(name, ref, official_hrfs=True, force=force)


def unit_scale_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """Max over units of max |ours - ref| / max |ref| within the unit (trials on the last axis)."""
    a = np.asarray(ours, np.float64).reshape(ref.shape[0], -1)
    b = np.asarray(ref, np.float64).reshape(ref.shape[0], -1)
    scale = np.abs(b).max(axis=1)
    keep = scale > 0
    return float((np.abs(a - b).max(axis=1)[keep] / scale[keep]).max())


def small_study(
    seed: int = 0,
    n_units: int = 60,
    n_runs: int = 4,
    n_time: int = 150,
    n_cond: int = 20,
    tr: float = 1.0,
    stimdur: float = 3.0,
) -> dict[str, Any]:
    """A tiny simulated study built from conform_core.hrf (trial amplitudes known).

    Each run shows every condition once (so conditions repeat across runs) in 6-s slots;
    units have a random library HRF, a per-unit gain, shared noise (2 latent time courses),
    white noise and a linear drift, on a baseline of 1000.
    """
    from conform_core.hrf import hrf_library

    rng = np.random.default_rng(seed)
    lib = hrf_library(stimdur, tr)
    hrf_index = rng.integers(0, 20, n_units)
    gain = rng.lognormal(0.3, 0.3, n_units)
    cond_resp = rng.normal(1.0, 0.6, (n_units, n_cond)) * gain[:, None]
    design, runs, amps = [], [], []
    latent_load = rng.normal(0, 1, (n_units, 2))
    for _ in range(n_runs):
        order = rng.permutation(n_cond)
        onsets = 6 + 6 * np.arange(n_cond)
        d = np.zeros((n_time, n_cond))
        d[onsets, order] = 1
        amp = cond_resp[:, order] + rng.normal(0, 0.4, (n_units, n_cond)) * gain[:, None]
        signal = np.zeros((n_units, n_time))
        for j, t0 in enumerate(onsets):
            seg = lib[: n_time - t0, hrf_index].T
            signal[:, t0 : t0 + seg.shape[1]] += amp[:, [j]] * seg
        latent = np.cumsum(rng.normal(0, 0.3, (2, n_time)), axis=1)
        noise = latent_load @ latent + rng.normal(0, 0.8, (n_units, n_time))
        drift = rng.normal(0, 1, (n_units, 1)) * np.linspace(-1, 1, n_time)
        runs.append((1000 * (1 + (signal + noise + drift) / 100)).astype(np.float32))
        design.append(d)
        amps.append(amp)
    return {
        "design": design,
        "runs": runs,
        "tr": tr,
        "stimdur": stimdur,
        "amplitudes": np.concatenate(amps, axis=1),
        "hrf_index": hrf_index,
    }
