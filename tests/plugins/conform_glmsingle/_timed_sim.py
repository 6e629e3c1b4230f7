"""A fine-grid generative model for event-table (timed) GLMsingle tests.

Independent of the package's fine-grid code: each trial is a boxcar on a 0.01-s grid (ten
times finer than the package's 0.1-s grid), convolved with the canonical double gamma of
``conform_core.hrf`` and sampled at the volume times, scaled so that a ``stimdur`` boxcar
peaks at 1 (so the true amplitudes are in the units of the betas).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conform_core.hrf import CANONICAL_PARAMS, spm_double_gamma

DT = 0.01


def response(onsets: np.ndarray, durations: np.ndarray, n_time: int, tr: float,
             stimdur: float = 3.0) -> np.ndarray:
    """Regressors ``(n_time, n_trials)`` of the generative model."""
    h = spm_double_gamma(CANONICAL_PARAMS, np.arange(0, 50, DT))
    scale = np.convolve(h, np.ones(round(stimdur / DT))).max()
    step = round(tr / DT)
    k = np.arange(n_time) * step
    out = np.zeros((n_time, len(onsets)))
    for i, (o, d) in enumerate(zip(onsets, durations)):
        resp = np.convolve(np.ones(max(1, round(d / DT))), h) / scale
        lag = k - round(o / DT)
        ok = (lag >= 0) & (lag < resp.size)
        out[ok, i] = resp[lag[ok]]
    return out


def _three_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.full(n, 3.0)


def simulate(seed: int, *, n_runs: int = 4, n_time: int = 150, tr: float = 2.0,
             n_units: int = 30, n_cond: int = 20, noise: float = 0.3,
             durations: Callable[[np.random.Generator, int], np.ndarray] = _three_seconds,
             isi: tuple[float, float] = (4.0, 8.0), extra_k: int = 0,
             extra_scale: float = 2.0) -> dict[str, Any]:
    """Simulate runs with jittered onsets (continuous, off the TR grid) and known amplitudes.

    Onsets: gaps uniform in ``isi`` seconds, the last trial at least 20 s before the end of
    the run; amplitudes N(2, 1) per unit and trial; white noise of sd ``noise`` on a
    baseline of 100. With ``extra_k``: AR(1) (phi 0.5, standardised) nuisance time courses
    with loadings N(0, ``extra_scale``) per unit, added to the data.

    Returns
    -------
    dict
        ``runs`` (float32, units x time), ``tables`` (onset, duration, condition per run),
        ``truth`` (units x trials, run-major, by onset), ``extras`` (per run time x k),
        ``loads`` (units x k), ``tr``.
    """
    rng = np.random.default_rng(seed)
    loads = rng.normal(0, extra_scale, (n_units, extra_k))
    runs, tables, truth, extras = [], [], [], []
    for _ in range(n_runs):
        ons = np.cumsum(rng.uniform(*isi, 100)) - isi[0] + 4.0
        ons = ons[ons < n_time * tr - 20]
        dur = durations(rng, ons.size)
        cond = rng.integers(0, n_cond, ons.size)
        amp = rng.normal(2.0, 1.0, (n_units, ons.size))
        y = 100 + amp @ response(ons, dur, n_time, tr).T + rng.normal(0, noise, (n_units, n_time))
        if extra_k:
            z = rng.normal(0, 1, (n_time, extra_k))
            e = np.zeros_like(z)
            for t in range(n_time):
                e[t] = z[t] + (0.5 * e[t - 1] if t else 0.0)
            e = (e - e.mean(axis=0)) / e.std(axis=0)
            y = y + loads @ e.T
            extras.append(e)
        runs.append(y.astype(np.float32))
        tables.append({"onset": ons, "duration": dur, "condition": cond})
        truth.append(amp)
    return {"runs": runs, "tables": tables, "truth": np.concatenate(truth, axis=1),
            "extras": extras, "loads": loads, "tr": tr}


def unit_r(betas: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per unit, Pearson r between estimated betas and true amplitudes (over trials)."""
    b = np.asarray(betas, np.float64).reshape(truth.shape[0], -1)
    bc = b - b.mean(axis=1, keepdims=True)
    tc = truth - truth.mean(axis=1, keepdims=True)
    return (bc * tc).sum(axis=1) / np.sqrt((bc**2).sum(axis=1) * (tc**2).sum(axis=1))
