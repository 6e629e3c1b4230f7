"""The 1-D two-Gaussian EM behind findtailthreshold against scikit-learn's GaussianMixture."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conform_glmsingle._crossval import _sklearn_mixture, findtailthreshold
from conform_glmsingle._mixture import fit_two_gaussians
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture


def samples():
    rng = np.random.default_rng(11)
    yield "bimodal", np.concatenate([rng.normal(0, 1, 1500), rng.normal(6, 2.5, 400)])
    yield "skewed", rng.gamma(2.0, 2.0, 2000)  # runs all 100 iterations of every restart
    yield "overlapping", np.concatenate([rng.normal(0, 1, 900), rng.normal(1, 1.5, 300)])
    yield "r2-like", np.clip(rng.standard_t(3, 3000) * 2 + 1, -10, 60)


@pytest.mark.parametrize(("name", "values"), list(samples()), ids=[n for n, _ in samples()])
def test_the_em_is_scikit_learns_operation_for_operation(name, values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = GaussianMixture(2, tol=1e-10, reg_covar=0, n_init=3,
                                    random_state=0).fit(values[:, None])
    ours = fit_two_gaussians(values, random_state=0)
    assert ours is not None
    # the same arithmetic in the same order: equal to the last bit on this BLAS; 1e-12
    # leaves room for a BLAS that sums a dot product in another order
    np.testing.assert_allclose(ours.means, reference.means_.ravel(), rtol=1e-12)
    np.testing.assert_allclose(ours.weights, reference.weights_, rtol=1e-12)
    np.testing.assert_allclose(ours.precision_chol, reference.precisions_cholesky_.ravel(),
                               rtol=1e-12)
    assert ours.lower_bound == pytest.approx(reference.lower_bound_, rel=1e-12)
    grid = np.linspace(values.min(), values.max(), 500)
    np.testing.assert_allclose(ours.predict_proba(grid), reference.predict_proba(grid[:, None]),
                               atol=1e-12)
    sklearn_threshold = _threshold_with(values, _sklearn_mixture)
    assert findtailthreshold(values) == sklearn_threshold


def _threshold_with(values, fitter):
    import conform_glmsingle._mixture as mixture

    original = mixture.fit_two_gaussians
    mixture.fit_two_gaussians = lambda v, **kw: fitter(v, kw.get("random_state"))
    try:
        return findtailthreshold(values)
    finally:
        mixture.fit_two_gaussians = original


def test_a_collapsed_component_falls_back_to_scikit_learn():
    values = np.repeat([1.0, 5.0], 50)  # k-means gives two clusters without spread
    assert fit_two_gaussians(values) is None
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        findtailthreshold(values)
