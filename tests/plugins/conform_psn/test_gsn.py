"""GSN parity with the official cvnlab/GSN outputs, and its documented behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import GSNDenoiser, perform_gsn

from conform_core.metrics import noise_ceiling
from conform_core.testing.fakes import make_condition_trials

from .conftest import assert_close

RETURNS = ["cN", "cS", "cNb", "cSb", "eigvals_signal", "eigvals_difference"]


def test_gsn_matches_official(ref):
    """Covariances, ncsnr and means within rtol; shrinkage levels and iterations exact."""
    out = perform_gsn(ref.data, {"returns": RETURNS})
    for key in ["cN", "cS", "cNb", "cSb", "ncsnr", "mnS", "mnN", *RETURNS[4:]]:
        if f"gsn__{key}" in ref:
            assert_close(out[key], ref[f"gsn__{key}"], ref.rtol(f"gsn__{key}"), key)
    for key in ("shrinklevelN", "shrinklevelD", "numiters"):
        assert out[key] == pytest.approx(float(ref[f"gsn__{key}"]), abs=1e-12), key


def test_gsn_without_shrinkage_matches_official(ref):
    if "gsn_noshrink__cN" not in ref:
        pytest.skip(f"{ref.name} has no gsn_noshrink reference")
    out = perform_gsn(ref.data, {"wantshrinkage": False})
    for key in ("cN", "cS", "cNb", "cSb", "ncsnr", "mnS"):
        assert_close(out[key], ref[f"gsn_noshrink__{key}"], ref.rtol(f"gsn_noshrink__{key}"), key)
    assert out["numiters"] == int(ref["gsn_noshrink__numiters"])
    assert out["shrinklevelN"] == out["shrinklevelD"] == 1.0


def test_gsn_output_names_shapes_and_defaults(rng):
    data = rng.standard_normal((6, 30, 3))
    out = perform_gsn(data)
    assert set(out) == {"mnN", "mnS", "ncsnr", "shrinklevelN", "shrinklevelD", "numiters",
                        "cN", "cS", "cNb", "cSb"}
    assert out["mnN"].shape == out["mnS"].shape == (1, 6)
    assert out["cSb"].shape == (6, 6) and out["ncsnr"].shape == (6,)
    assert isinstance(out["shrinklevelN"], float) and isinstance(out["numiters"], int)


def test_gsn_does_not_modify_options(rng):
    opt = {"wantshrinkage": True, "returns": ["cSb"]}
    perform_gsn(rng.standard_normal((4, 20, 2)), opt)
    assert opt == {"wantshrinkage": True, "returns": ["cSb"]}


def test_gsn_refined_covariances_are_psd(rng):
    out = perform_gsn(rng.standard_normal((8, 25, 3)))
    for key in ("cSb", "cNb"):
        assert np.linalg.eigvalsh(out[key]).min() > -1e-10


def test_gsn_float32_in_float32_out(rng):
    data = rng.standard_normal((5, 40, 3))
    out32 = perform_gsn(data.astype(np.float32))
    out64 = perform_gsn(data.astype(np.float32).astype(np.float64))
    assert out32["cSb"].dtype == np.float32
    # float32 products: ~1e-7 relative rounding, amplified by the refinement; 1e-4 is ample
    assert_close(out32["cSb"], out64["cSb"], 1e-4, "cSb float32 vs float64")


def test_gsn_noise_ceilings_are_the_core_formula():
    """GSNDenoiser reports conform_core.metrics.noise_ceiling of GSN's ncsnr, bit for bit."""
    trials = make_condition_trials(n_units=8, n_conditions=30)
    gsn = GSNDenoiser(n_trials=3).fit(trials)
    np.testing.assert_array_equal(gsn.noise_ceiling_, noise_ceiling(gsn.ncsnr_, 3))
    np.testing.assert_array_equal(gsn.noise_ceiling(1), noise_ceiling(gsn.ncsnr_, 1))
    assert noise_ceiling([0.0, 1.0], 1) == pytest.approx([0.0, 50.0])
