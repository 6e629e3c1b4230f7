"""mosaic_noise_ceiling: MOSAIC's data handling around the core ncsnr and noise ceiling."""

from __future__ import annotations

import numpy as np
import pytest
from conform_mosaic import mosaic_noise_ceiling

from conform_core.data import TrialData
from conform_core.exceptions import ShapeError
from conform_core.metrics import ncsnr, noise_ceiling

from .conftest import reference_ceiling


def _split(seed: int = 0, n_units: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved trials of 30 stimuli with 1-4 repeats."""
    rng = np.random.default_rng(seed)
    reps = rng.integers(1, 5, 30)
    reps[0] = 2
    ids = np.repeat([f"img{k:02d}.png" for k in range(30)], reps)
    betas = np.repeat(rng.standard_normal((30, n_units)), reps, axis=0)
    betas = betas + rng.standard_normal(betas.shape)
    order = rng.permutation(ids.size)
    return betas[order], ids[order]


@pytest.mark.parametrize("n", [1, "avg"])
def test_matches_the_specification_written_loop_by_loop(n: int | str) -> None:
    betas, ids = _split()
    per_stimulus = [betas[ids == s] for s in np.unique(ids)]
    np.testing.assert_allclose(mosaic_noise_ceiling(betas, ids, n)[1],
                               reference_ceiling(per_stimulus, str(n)), rtol=1e-12)


@pytest.mark.parametrize("n", [1, "avg"])
def test_is_the_core_single_trial_estimator_and_formula(n: int | str) -> None:
    """Nothing of the estimator is MOSAIC's own: the result is the core's, bit for bit."""
    betas, ids = _split()
    counts = np.unique(ids, return_counts=True)[1]
    snr = ncsnr(TrialData(betas, ids), signal_variance="single_trials")
    got_snr, got = mosaic_noise_ceiling(betas, ids, n)
    np.testing.assert_array_equal(got_snr, snr)
    np.testing.assert_array_equal(got, noise_ceiling(snr, counts if n == "avg" else 1))


def test_nan_or_inf_in_any_trial_and_zero_noise_give_nan() -> None:
    clean, ids = _split()
    betas = clean.copy()
    betas[3, 0] = np.nan   # one trial
    betas[5, 1] = np.inf
    betas[:, 2] = 1.0      # identical repeats: noise variance 0
    snr, ceiling = mosaic_noise_ceiling(betas, ids, "avg")
    assert np.isnan(snr[:3]).all() and np.isnan(ceiling[:3]).all()
    # the other vertices are untouched by their neighbours' NaN
    np.testing.assert_array_equal(ceiling[3:], mosaic_noise_ceiling(clean, ids, "avg")[1][3:])


def test_refuses_splits_without_repeats_and_unavailable_n() -> None:
    betas, ids = _split()
    with pytest.raises(ShapeError, match="no stimulus has two repeats"):
        mosaic_noise_ceiling(betas[:2], ["a", "b"], 1)
    with pytest.raises(ShapeError, match="n=2 needs every stimulus to have 2 repeats"):
        mosaic_noise_ceiling(betas, ids, 2)
    with pytest.raises(ShapeError, match="'avg' or an int"):
        mosaic_noise_ceiling(betas, ids, "mean")
