"""Structured noise: unit variance per part, correlation along the unit grid, low rank."""

from __future__ import annotations

import numpy as np
import pytest
from conform_synthetic import grid_shape, simulate_study
from conform_synthetic._noise import NoiseModel


@pytest.mark.parametrize(
    ("n", "shape"), [(100, (10, 10)), (24, (4, 6)), (97, (1, 97)), (1, (1, 1))]
)
def test_grid_holds_every_unit_exactly(n: int, shape: tuple[int, int]) -> None:
    assert grid_shape(n) == shape


@pytest.mark.parametrize(("lowrank", "spatial"), [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.3, 0.3)])
def test_noise_has_the_requested_sd(lowrank: float, spatial: float) -> None:
    """Every mixture has sd noise_sd per unit: 4000 draws give a relative error ~1/sqrt(8000)."""
    sd = np.linspace(0.5, 2.0, 60).astype(np.float32)
    model = NoiseModel(
        60,
        sd,
        rank=3,
        length_scale=1.5,
        lowrank_fraction=lowrank,
        spatial_fraction=spatial,
        rng=np.random.default_rng(0),
    )
    noise = model.draw(4000)
    assert noise.dtype == np.float32
    # low-rank alone has only 3 sources, so its sample sd varies more: 10 % is still tight
    np.testing.assert_allclose(noise.std(axis=0), sd, rtol=0.1 if lowrank == 1.0 else 0.06)


def _residual_correlations(**kwargs: float) -> tuple[np.ndarray, tuple[int, int]]:
    study = simulate_study(
        n_subjects=1,
        n_units=100,
        n_stimuli=100,
        n_shared=100,
        n_repeats=4,
        random_state=2,
        **kwargs,
    )
    s = study.subjects[0]
    ct = s.trials.by_condition(s.truth.signal.stimulus_ids)
    resid = (ct.data - s.truth.signal.data[:, :, None]).reshape(100, -1)
    return np.corrcoef(resid), grid_shape(100)


def test_spatial_noise_correlates_neighbours_not_distant_units() -> None:
    """Neighbours share exp(-1/(4 l^2)) ~ 0.94 of the spatial part (30 % of the variance)."""
    corr, (rows, cols) = _residual_correlations(
        lowrank_fraction=0.0, spatial_fraction=0.3, noise_length_scale=2.0
    )
    grid = np.arange(rows * cols).reshape(rows, cols)
    neighbours = corr[grid[:, :-1].ravel(), grid[:, 1:].ravel()]
    distant = corr[grid[:3, :3].ravel(), grid[7:, 7:].ravel()]
    assert neighbours.mean() == pytest.approx(0.3 * np.exp(-1 / 16), abs=0.05)
    assert abs(distant.mean()) < 0.05


def test_lowrank_noise_concentrates_variance_in_few_components() -> None:
    corr, _ = _residual_correlations(lowrank_fraction=0.5, spatial_fraction=0.0, noise_rank=3)
    eig = np.linalg.eigvalsh(corr)[::-1]
    assert eig[:3].sum() / eig.sum() > 0.45  # independent noise alone would give ~3/100 + sampling
    white, _ = _residual_correlations(lowrank_fraction=0.0, spatial_fraction=0.0)
    eig = np.linalg.eigvalsh(white)[::-1]
    assert eig[:3].sum() / eig.sum() < 0.15
