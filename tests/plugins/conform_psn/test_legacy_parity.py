"""Legacy (cross-validated) PSN parity with the official PSN v0.1.0 outputs.

K and denoisers are compared exactly / at 1e-8 relative. ``cv_scores`` are compared
at thresholds inside the span of dimensions with positive ranking score and at
K = D: the dimensions whose ranking score is clamped to 0 tie, and their order (and
so the scores of thresholds between them) depends on arbitrary null-space
eigenvectors of cSb.
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import psn, psn_cv

from conform_core.exceptions import ShapeError

from .conftest import assert_close

CONFIGS = ["V0_cv0_population", "V0_cv0_unit", "V1_cv0_population", "V3_cv0_population",
           "V3_cv0_unit", "V0_cv1_population", "V0_magnitude", "V0_cv0_population_truncate1",
           "V0_cv0_population_rank_eigenvalue", "V0_analytic_cv2"]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_legacy_matches_official(ref, cfg):
    info = ref.meta.get("legacy_configs", {}).get(cfg)
    if info is None:
        pytest.skip(f"{ref.name} has no legacy {cfg} reference")
    if "error" in info:  # upstream rejected this input (NaN): so must we
        with pytest.raises(ShapeError, match="NaN"):
            psn_cv(ref.data, info["V"], dict(info["options"]))
        return
    out = psn_cv(ref.data, info["V"], dict(info["options"]))
    p = f"legacy__{cfg}__"
    np.testing.assert_array_equal(out["best_threshold"], ref[p + "best_threshold"])
    if p + "signalsubspace" in ref:
        ss = ref[p + "signalsubspace"]
        assert_close(out["denoiser"], ss @ ss.T, ref.rtol(p + "signalsubspace"), "denoiser")
    if p + "denoiser" in ref:
        assert_close(out["denoiser"], ref[p + "denoiser"], ref.rtol(p + "denoiser"), "denoiser")
    if p + "denoiseddata" in ref:
        assert_close(out["denoiseddata"], ref[p + "denoiseddata"], ref.rtol(p + "denoiseddata"),
                     "denoiseddata")
    assert_close(out["mags"], ref[p + "mags"], ref.rtol(p + "mags"), "mags")
    if p + "cv_scores" in ref:
        n_pos = int(np.sum(ref[p + "mags"] > 0))
        keep = np.r_[np.arange(n_pos + 1), ref[p + "cv_scores"].shape[0] - 1]
        assert_close(out["cv_scores"][keep], ref[p + "cv_scores"][keep],
                     ref.rtol(p + "cv_scores"), "cv_scores")


def test_cv_preset_routes_to_legacy(ref):
    info = ref.meta.get("legacy_configs", {}).get("V0_cv0_population")
    if info is None or "error" in info:
        pytest.skip(f"{ref.name} has no complete-data legacy reference")
    out = psn(ref.data, "cv", V=0, cv_mode=0, cv_threshold_per="population")
    assert out["best_threshold"] == int(ref["legacy__V0_cv0_population__best_threshold"])
