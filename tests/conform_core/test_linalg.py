"""Tests of conform_core.linalg.LeaveOneOutRidge, against scikit-learn's RidgeCV and brute force.

Tolerances. In float64 both sides solve the same ridge problems through orthogonal
factorisations of well-conditioned matrices (cond(XᵀX + αI) < 1e4 here), so they agree to
about cond x eps ~ 1e-12; we assert 1e-10 (relative on coefficients), two orders of margin and
far tighter than any algebraic slip (a missing 1/n leverage term or a wrong alpha moves the
coefficients by > 1e-3). The chosen alphas must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV

from conform_core.exceptions import ParameterError, ShapeError
from conform_core.linalg import LeaveOneOutRidge

ALPHAS = np.logspace(-2, 4, 13)
RTOL = 1e-10


def problem(n: int, p: int, t: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Y = X W + noise whose sd rises across targets, so that targets prefer different alphas."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 1.5
    Y = X @ rng.standard_normal((p, t)) + 2.0 + rng.standard_normal((n, t)) * np.linspace(0.3, 20, t)
    return X, Y


@pytest.mark.parametrize("n, p", [(80, 12), (25, 40)], ids=["n>p", "n<p"])
@pytest.mark.parametrize("per_target", [True, False])
def test_matches_sklearn_ridgecv_without_intercept(n, p, per_target):
    X, Y = problem(n, p)
    coef, index, _ = LeaveOneOutRidge(X, ALPHAS).fit(Y, per_target=per_target)
    ref = RidgeCV(alphas=ALPHAS, fit_intercept=False, alpha_per_target=per_target).fit(X, Y)
    np.testing.assert_array_equal(ALPHAS[index], np.broadcast_to(ref.alpha_, index.shape))
    np.testing.assert_allclose(coef, ref.coef_.T, rtol=RTOL, atol=0)
    if per_target:  # the noise levels differ, so the targets do not all pick one alpha
        assert len(np.unique(index)) > 1


def test_matches_sklearn_ridgecv_with_intercept_on_centred_data():
    X, Y = problem(60, 10)
    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    coef, index, _ = LeaveOneOutRidge(X - xm, ALPHAS, intercept=True).fit(Y - ym)
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(ALPHAS[index], ref.alpha_)
    np.testing.assert_allclose(coef, ref.coef_.T, rtol=RTOL, atol=0)
    np.testing.assert_allclose(ym - xm @ coef, ref.intercept_, rtol=RTOL)


def test_sse_and_hat_diagonal_equal_brute_force_leave_one_out():
    X, Y = problem(20, 5, t=3)
    ridge = LeaveOneOutRidge(X, ALPHAS)
    sse, projection = ridge.sse(Y)
    for a, alpha in enumerate(ALPHAS):
        errors = np.empty_like(Y)
        for i in range(len(X)):
            keep = np.arange(len(X)) != i
            model = Ridge(alpha=alpha, fit_intercept=False).fit(X[keep], Y[keep])
            errors[i] = Y[i] - model.predict(X[i: i + 1])[0]
        np.testing.assert_allclose(sse[a], (errors**2).sum(axis=0), rtol=RTOL)
        hat = X @ np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T)
        np.testing.assert_allclose(ridge.hat_diagonal[:, a], np.diag(hat), rtol=RTOL)
    np.testing.assert_allclose(projection, ridge.project(Y), rtol=0, atol=0)


def test_coef_from_a_projection_or_from_targets_is_the_same():
    X, Y = problem(40, 8)
    ridge = LeaveOneOutRidge(X, ALPHAS)
    index = np.arange(Y.shape[1]) % len(ALPHAS)
    from_y = ridge.coef(Y, index)
    np.testing.assert_array_equal(from_y, ridge.coef(None, index, projection=ridge.project(Y)))
    for j, i in enumerate(index):  # each target with its own alpha, as a plain ridge
        ref = Ridge(alpha=ALPHAS[i], fit_intercept=False).fit(X, Y[:, j]).coef_
        np.testing.assert_allclose(from_y[:, j], ref, rtol=RTOL)
    np.testing.assert_array_equal(ridge.coef(Y, 3), ridge.coef(Y, np.full(Y.shape[1], 3)))


def test_one_alpha_for_all_targets_minimises_the_total_error():
    sse = np.array([[1.0, 5.0], [2.0, 1.0], [4.0, 4.0]])
    np.testing.assert_array_equal(LeaveOneOutRidge.choose(sse), [0, 1])
    np.testing.assert_array_equal(LeaveOneOutRidge.choose(sse, per_target=False), [1, 1])


def test_float32_products_agree_with_float64():
    X, Y = problem(50, 10)
    c64, i64, _ = LeaveOneOutRidge(X, ALPHAS).fit(Y)
    c32, i32, _ = LeaveOneOutRidge(X, ALPHAS, dtype="float32").fit(Y.astype(np.float32))
    assert c32.dtype == np.float32
    # float32 rounding (eps 6e-8) times cond(XᵀX + αI) < 1e3: relative error < 1e-4
    np.testing.assert_array_equal(i32, i64)
    np.testing.assert_allclose(c32, c64, rtol=1e-3, atol=1e-4 * np.abs(c64).max())


def test_many_alphas_and_targets_are_chunked_without_changing_results(monkeypatch):
    import conform_core.linalg as linalg

    X, Y = problem(30, 6, t=5)
    whole = LeaveOneOutRidge(X, ALPHAS).sse(Y)[0]
    monkeypatch.setattr(linalg, "_CHUNK_ELEMENTS", 1)  # one alpha at a time
    np.testing.assert_allclose(LeaveOneOutRidge(X, ALPHAS).sse(Y)[0], whole, rtol=1e-14)


def test_bad_inputs_name_the_value_and_the_fix():
    X, Y = problem(10, 3)
    with pytest.raises(ParameterError, match=r"positive finite alphas; got \[1.0, -1.0\]"):
        LeaveOneOutRidge(X, [1.0, -1.0])
    with pytest.raises(ShapeError, match=r"non-empty 2-D X .* got shape \(10,\)"):
        LeaveOneOutRidge(X[:, 0], ALPHAS)
    with pytest.raises(ShapeError, match=r"10 rows .* got shape \(9, 6\).*reshape"):
        LeaveOneOutRidge(X, ALPHAS).sse(Y[:9])
