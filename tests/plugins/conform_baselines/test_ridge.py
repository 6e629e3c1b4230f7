"""Tests of the ``ridge`` encoder (conform_baselines.ridge.RidgeEncoder).

References are scikit-learn's: ``RidgeCV(alpha_per_target=True)`` for leave-one-out, and
``Ridge`` fitted fold by fold (``KFold``) for K-fold, since scikit-learn's RidgeCV has no
K-fold mode with one alpha per target.

Tolerances. In float64 both sides solve the same normal equations through orthogonal
factorisations of well-conditioned (cond(XᵀX + αI) < 1e3) problems, so they agree to about
cond x eps ~ 1e-13 relative; we assert 1e-9 (relative on coefficients and predictions,
absolute on R² and cross-validated errors), four orders of margin, tight enough to catch any
algebraic slip (a wrong centring or a missing fold term changes results by > 1e-3). The
chosen alphas must be identical. In float32 the error is about cond x eps32 ~ 1e-4
relative, so we assert 1e-3 on coefficients and 1e-4 absolute on held-out R².
"""

from __future__ import annotations

import numpy as np
import pytest
from conform_baselines.ridge import DEFAULT_ALPHAS, RidgeEncoder
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from conform_core.exceptions import ParameterError, ShapeError
from conform_core.metrics import r2_score

ALPHAS = np.logspace(-2, 4, 13)
RTOL64 = 1e-9


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small factorisations run 10-70x slower with 2 BLAS threads on a loaded 2-core machine
    (design.md 3.7), so these tests pin BLAS and OpenMP to one thread."""
    with threadpool_limits(limits=1):
        yield


def make_problem(n: int = 150, p: int = 20, t: int = 24, n_test: int = 60, seed: int = 0,
                 noise: np.ndarray | None = None):
    """Train and test data, Y = X W + 5 + noise; noise sd rises across units by default."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + n_test, p)) + 2.0  # non-zero means exercise the intercept
    W = rng.standard_normal((p, t))
    sd = np.linspace(0.5, 30.0, t) if noise is None else noise
    Y = X @ W + 5.0 + rng.standard_normal((n + n_test, t)) * sd
    return X[:n], Y[:n], X[n:], Y[n:]


def kfold_reference(X, Y, alphas, k, fit_intercept=True):
    """Per-unit alpha by brute-force K-fold with scikit-learn's Ridge; refit on all data."""
    sse = np.zeros((len(alphas), Y.shape[1]))
    for train, test in KFold(k).split(X):
        for i, alpha in enumerate(alphas):
            model = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X[train], Y[train])
            sse[i] += ((Y[test] - model.predict(X[test])) ** 2).sum(axis=0)
    best = alphas[sse.argmin(axis=0)]
    return sse, best, Ridge(alpha=best, fit_intercept=fit_intercept).fit(X, Y)


# ----------------------------------------------------------------- agreement with sklearn
def test_loo_matches_sklearn_ridgecv():
    X, Y, Xt, Yt = make_problem()
    ours = RidgeEncoder(alphas=ALPHAS, cv="loo").fit(X, Y)
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(ours.alpha_, ref.alpha_)
    np.testing.assert_allclose(ours.coef_, ref.coef_.T, rtol=RTOL64, atol=0)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), rtol=RTOL64)
    np.testing.assert_allclose(r2_score(Yt, ours.predict(Xt)), r2_score(Yt, ref.predict(Xt)),
                               rtol=0, atol=RTOL64)
    assert ours.solver_ == "loo"


@pytest.mark.parametrize("solver", ["primal", "dual", "auto"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_kfold_matches_sklearn_ridge_fold_by_fold(solver, fit_intercept):
    X, Y, Xt, Yt = make_problem()
    sse, best, ref = kfold_reference(X, Y, ALPHAS, 5, fit_intercept)
    ours = RidgeEncoder(alphas=ALPHAS, cv=5, solver=solver, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_array_equal(ours.alpha_, best)
    np.testing.assert_allclose(ours.coef_, ref.coef_.T, rtol=RTOL64, atol=RTOL64)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), rtol=RTOL64)
    sst = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(ours.cv_scores_, 1 - sse / sst, rtol=0, atol=RTOL64)


def test_kfold_with_fewer_fold_stimuli_than_features():
    """Folds of 10 stimuli and 25 features: the non-square (n_fold, p) factor route."""
    X, Y, Xt, _ = make_problem(n=50, p=25)
    _, best, ref = kfold_reference(X, Y, ALPHAS, 5)
    ours = RidgeEncoder(alphas=ALPHAS, cv=5, solver="primal").fit(X, Y)
    np.testing.assert_array_equal(ours.alpha_, best)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), rtol=RTOL64)


def test_one_alpha_for_all_units_matches_sklearn():
    X, Y, Xt, _ = make_problem()
    ours = RidgeEncoder(alphas=ALPHAS, cv="loo", alpha_per_unit=False).fit(X, Y)
    ref = RidgeCV(alphas=ALPHAS).fit(X, Y)
    assert np.all(ours.alpha_ == ref.alpha_)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), rtol=RTOL64)
    kfold = RidgeEncoder(alphas=ALPHAS, alpha_per_unit=False, n_targets_batch=5).fit(X, Y)
    sse, _, _ = kfold_reference(X, Y, ALPHAS, 5)
    assert np.all(kfold.alpha_ == ALPHAS[sse.sum(axis=1).argmin()])


# ----------------------------------------------------------------- refit=False: fold average
def fold_average_reference(X, Y, alpha, folds, fit_intercept=True):
    """Mean coefficients (p, t) and intercepts (t,) of scikit-learn Ridge fitted without each
    fold at the chosen ``alpha`` (per unit)."""
    coefs, intercepts = [], []
    n = X.shape[0]
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        model = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X[train], Y[train])
        coefs.append(model.coef_.T)
        intercepts.append(model.intercept_)
    return np.mean(coefs, axis=0), np.mean(intercepts, axis=0)


def kfold_folds(n, k):
    return [test for _, test in KFold(k).split(np.zeros(n))]


# Tolerance: as for the refit (module docstring), except for the primal route with fewer
# stimuli than features, where each training fold's XᵀX is singular (rank n_train < p) and
# the zero eigenvalues are regularised only by alpha >= 1e-2: cond(XᵀX + αI) ~ 1e5 there, so
# agreement is ~1e-11 (measured 1e-11); 1e-8 keeps three orders of margin and still catches
# a wrong fold term (> 1e-3).
@pytest.mark.parametrize(("n", "p", "rtol"), [(150, 20, RTOL64), (50, 25, RTOL64), (30, 60, 1e-8)])
@pytest.mark.parametrize("solver", ["primal", "dual"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fold_average_matches_sklearn_ridge_fold_by_fold(n, p, rtol, solver, fit_intercept):
    """refit=False: coef_ and intercept_ are the mean of the K fold fits at the chosen alpha."""
    X, Y, Xt, _ = make_problem(n=n, p=p)
    ours = RidgeEncoder(alphas=ALPHAS, cv=5, solver=solver, fit_intercept=fit_intercept,
                        refit=False).fit(X, Y)
    _, best, _ = kfold_reference(X, Y, ALPHAS, 5, fit_intercept)
    np.testing.assert_array_equal(ours.alpha_, best)  # selection is unchanged by refit
    coef, intercept = fold_average_reference(X, Y, ours.alpha_, kfold_folds(n, 5), fit_intercept)
    scale = np.abs(coef).max()
    np.testing.assert_allclose(ours.coef_, coef, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(ours.intercept_, intercept, rtol=rtol,
                               atol=rtol * np.abs(intercept).max())
    np.testing.assert_allclose(ours.predict(Xt), Xt @ coef + intercept, rtol=rtol,
                               atol=rtol * np.abs(Xt @ coef).max())
    refit = RidgeEncoder(alphas=ALPHAS, cv=5, solver=solver, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_array_equal(ours.cv_scores_, refit.cv_scores_)
    assert not np.allclose(ours.coef_, refit.coef_, rtol=1e-3)  # a different estimator


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_fold_average_with_shuffled_folds_one_alpha_and_batches(solver):
    """Shuffled folds, one alpha for all units, and batching all average the right fits."""
    from conform_baselines.ridge import _make_folds

    X, Y, _, _ = make_problem()
    ours = RidgeEncoder(alphas=ALPHAS, cv=4, solver=solver, alpha_per_unit=False, random_state=7,
                        refit=False, n_targets_batch=5).fit(X, Y)
    assert np.unique(ours.alpha_).size == 1
    coef, intercept = fold_average_reference(X, Y, ours.alpha_, _make_folds(len(X), 4, 7))
    np.testing.assert_allclose(ours.coef_, coef, rtol=RTOL64, atol=RTOL64 * np.abs(coef).max())
    np.testing.assert_allclose(ours.intercept_, intercept, rtol=RTOL64)
    whole = RidgeEncoder(alphas=ALPHAS, cv=4, solver=solver, refit=False).fit(X, Y)
    for batch in (1, 7):
        part = RidgeEncoder(alphas=ALPHAS, cv=4, solver=solver, refit=False,
                            n_targets_batch=batch).fit(X, Y)
        # a different batch width may change BLAS blocking, hence summation order: ~1 ulp
        np.testing.assert_allclose(part.coef_, whole.coef_, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_fold_average_with_one_dimensional_y(solver):
    X, Y, Xt, _ = make_problem()
    one = RidgeEncoder(alphas=ALPHAS, solver=solver, refit=False).fit(X, Y[:, 3])
    two = RidgeEncoder(alphas=ALPHAS, solver=solver, refit=False).fit(X, Y[:, 3:4])
    assert one.coef_.shape == (X.shape[1],) and np.ndim(one.intercept_) == 0
    coef, intercept = fold_average_reference(X, Y[:, 3], one.alpha_, kfold_folds(len(X), 5))
    np.testing.assert_allclose(one.coef_, coef, rtol=RTOL64, atol=RTOL64 * np.abs(coef).max())
    np.testing.assert_allclose(one.intercept_, intercept, rtol=RTOL64)
    np.testing.assert_allclose(one.predict(Xt), two.predict(Xt)[:, 0], rtol=1e-12)


@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_fold_average_float32(solver):
    """float32 in, float32 out; agreement with float64 as for the refit (module docstring)."""
    X, Y, _, _ = make_problem()
    ref = RidgeEncoder(alphas=ALPHAS, solver=solver, refit=False).fit(X, Y)
    model = RidgeEncoder(alphas=ALPHAS, solver=solver, refit=False).fit(
        X.astype(np.float32), Y.astype(np.float32))
    assert model.coef_.dtype == np.float32 and model.intercept_.dtype == np.float32
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-3,
                               atol=1e-3 * np.abs(ref.coef_).max())


def test_fold_average_with_leave_one_out_names_the_fix():
    X, Y, _, _ = make_problem(t=2)
    with pytest.raises(ParameterError) as info:
        RidgeEncoder(cv="loo", refit=False).fit(X, Y)
    message = str(info.value)
    assert "refit=False averages the fits of the K cross-validation folds" in message
    assert "cv='loo'" in message and "cv=5" in message and "refit=True" in message


# ----------------------------------------------------------------- behaviour
def test_noisier_units_get_larger_alphas():
    X, Y, _, _ = make_problem(n=300, t=40, noise=np.geomspace(0.1, 100.0, 40))
    model = RidgeEncoder(alphas=np.logspace(-3, 6, 19)).fit(X, Y)
    rho = spearmanr(np.arange(40), np.log(model.alpha_)).statistic
    assert rho > 0.9, model.alpha_
    assert model.alpha_[-5:].min() > 10 * model.alpha_[:5].max()


def test_chosen_alpha_maximises_cv_score():
    X, Y, _, _ = make_problem()
    model = RidgeEncoder(alphas=ALPHAS).fit(X, Y)
    assert model.cv_scores_.shape == (len(ALPHAS), Y.shape[1])
    np.testing.assert_array_equal(model.alpha_, ALPHAS[model.cv_scores_.argmax(axis=0)])


@pytest.mark.parametrize(("n", "p"), [(150, 20), (30, 60)])
def test_primal_and_dual_agree(n, p):
    X, Y, Xt, _ = make_problem(n=n, p=p)
    primal = RidgeEncoder(alphas=ALPHAS, solver="primal").fit(X, Y)
    dual = RidgeEncoder(alphas=ALPHAS, solver="dual").fit(X, Y)
    assert (primal.solver_, dual.solver_) == ("primal", "dual")
    auto = RidgeEncoder(alphas=ALPHAS).fit(X, Y)
    assert auto.solver_ == ("primal" if n > p else "dual")
    np.testing.assert_array_equal(primal.alpha_, dual.alpha_)
    np.testing.assert_allclose(primal.cv_scores_, dual.cv_scores_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(primal.predict(Xt), dual.predict(Xt), rtol=1e-8)


@pytest.mark.parametrize("cv", [5, "loo"])
@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_batching_over_units_gives_the_same_results(cv, solver):
    X, Y, _, _ = make_problem()
    whole = RidgeEncoder(alphas=ALPHAS, cv=cv, solver=solver).fit(X, Y)
    for batch in (1, 7, 1000):
        part = RidgeEncoder(alphas=ALPHAS, cv=cv, solver=solver, n_targets_batch=batch).fit(X, Y)
        np.testing.assert_array_equal(part.alpha_, whole.alpha_)
        # a different batch width may change BLAS blocking, hence summation order: ~1 ulp
        np.testing.assert_allclose(part.coef_, whole.coef_, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(part.cv_scores_, whole.cv_scores_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cv", [5, "loo"])
@pytest.mark.parametrize("solver", ["primal", "dual"])
def test_float32_in_float32_out(cv, solver):
    X, Y, Xt, Yt = make_problem()
    ref = RidgeEncoder(alphas=ALPHAS, cv=cv, solver=solver).fit(X, Y)
    model = RidgeEncoder(alphas=ALPHAS, cv=cv, solver=solver).fit(
        X.astype(np.float32), Y.astype(np.float32))
    assert model.coef_.dtype == np.float32 and model.intercept_.dtype == np.float32
    assert model.predict(Xt.astype(np.float32)).dtype == np.float32
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_allclose(r2_score(Yt, model.predict(Xt)), r2_score(Yt, ref.predict(Xt)),
                               rtol=0, atol=1e-4)


def test_dtype_parameter_casts():
    X, Y, _, _ = make_problem(t=3)
    assert RidgeEncoder(dtype="float32").fit(X, Y).coef_.dtype == np.float32
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    assert RidgeEncoder(dtype=np.float64).fit(X32, Y32).coef_.dtype == np.float64
    assert RidgeEncoder().fit(X32, Y).coef_.dtype == np.float64  # mixed input: float64


def test_one_dimensional_y():
    X, Y, Xt, _ = make_problem()
    one = RidgeEncoder(alphas=ALPHAS).fit(X, Y[:, 3])
    two = RidgeEncoder(alphas=ALPHAS).fit(X, Y[:, 3:4])
    assert one.coef_.shape == (X.shape[1],) and one.cv_scores_.shape == (len(ALPHAS),)
    assert np.ndim(one.alpha_) == 0 and np.ndim(one.intercept_) == 0
    assert one.predict(Xt).shape == (Xt.shape[0],)
    np.testing.assert_allclose(one.predict(Xt), two.predict(Xt)[:, 0], rtol=1e-12)
    assert one.alpha_ == two.alpha_[0]


def test_random_state_shuffles_folds_reproducibly():
    X, Y, _, _ = make_problem()
    a = RidgeEncoder(alphas=ALPHAS, random_state=0).fit(X, Y)
    b = RidgeEncoder(alphas=ALPHAS, random_state=0).fit(X, Y)
    c = RidgeEncoder(alphas=ALPHAS).fit(X, Y)
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)
    assert not np.allclose(a.cv_scores_, c.cv_scores_)


def test_refit_forgets_the_previous_fit():
    X, Y, _, _ = make_problem()
    model = RidgeEncoder(alphas=ALPHAS).fit(X, Y)
    model.fit(X[:, :5], Y[:, :2])
    assert model.coef_.shape == (5, 2) and model.n_features_in_ == 5


def test_clone_and_get_params_round_trip():
    model = RidgeEncoder(alphas=(0.1, 1.0), cv="loo", fit_intercept=False, alpha_per_unit=False,
                         solver="dual", dtype="float32", n_targets_batch=10, random_state=3)
    params = model.get_params()
    assert clone(model).get_params() == params
    assert RidgeEncoder(**params).get_params() == params
    assert RidgeEncoder().get_params()["alphas"] == DEFAULT_ALPHAS
    assert RidgeEncoder().get_params()["refit"] is True
    assert clone(RidgeEncoder(refit=False)).get_params()["refit"] is False
    X, Y, _, _ = make_problem(t=2)
    assert not hasattr(clone(model.fit(X, Y)), "coef_")


# ----------------------------------------------------------------- bad input
def test_mismatched_rows_name_both_counts():
    X, Y, _, _ = make_problem()
    with pytest.raises(ShapeError, match=r"150 rows in X and 149 in Y.*Align them"):
        RidgeEncoder().fit(X, Y[:-1])


def test_nan_in_y_is_named_with_its_position():
    X, Y, _, _ = make_problem()
    Y[4, 2] = np.nan
    with pytest.raises(ShapeError, match=r"Y contains 1 NaN value\(s\) \(first at index \(4, 2\)\)"
                                         r".*Remove or impute"):
        RidgeEncoder().fit(X, Y)


@pytest.mark.parametrize("alphas", [[], [1.0, -1.0], [0.0, 1.0], [[1.0], [2.0]], ["a"],
                                    [1.0, np.nan], None])
def test_bad_alphas_name_the_value_and_the_fix(alphas):
    X, Y, _, _ = make_problem(t=2)
    with pytest.raises(ParameterError, match=r"'alphas' parameter of RidgeEncoder must be a "
                                             r"non-empty 1-D sequence of positive finite numbers; "
                                             r"got .*np\.logspace"):
        RidgeEncoder(alphas=alphas).fit(X, Y)


@pytest.mark.parametrize(("cv", "extra"), [(1, ""), (0, ""), (2.5, ""), (True, ""),
                                           ("lo", "Did you mean 'loo'"), ("kfold", "")])
def test_bad_cv_names_the_value_and_the_fix(cv, extra):
    """Caught before any data is seen (check_params, which fit runs first)."""
    X, Y, _, _ = make_problem(t=2)
    with pytest.raises(ParameterError) as info:
        RidgeEncoder(cv=cv).fit(X, Y)
    message = str(info.value)
    assert "'cv' parameter of RidgeEncoder must be an int in [2, inf) or 'loo'" in message
    assert f"got {cv!r}" in message and "Use 2 or more folds" in message and "cv='loo'" in message
    assert extra in message


def test_more_folds_than_stimuli_names_the_count():
    X, Y, _, _ = make_problem(t=2)
    RidgeEncoder(cv=151).check_params()  # the bound needs the data
    with pytest.raises(ParameterError) as info:
        RidgeEncoder(cv=151).fit(X, Y)
    message = str(info.value)
    assert "'cv' parameter of RidgeEncoder must be an int in [2, n_stimuli=150] or 'loo'" in message
    assert "got 151" in message and "Use 2 to 150 folds, or cv='loo'" in message


@pytest.mark.parametrize(("params", "pattern"), [
    (dict(solver="primall"), r"'solver' parameter of RidgeEncoder must be one of 'auto', "
                             r"'primal', 'dual'; got 'primall'\. Did you mean 'primal'\?"),
    (dict(dtype="float16"), r"'dtype' parameter .* a float dtype \('float32' or 'float64'\) "
                            r"or None; got 'float16'"),
    (dict(dtype="bogus"), r"'dtype' parameter .* got 'bogus'\. Use None"),
    (dict(n_targets_batch=0), r"'n_targets_batch' parameter .* int in \[1, inf\) or None; "
                              r"got 0\. Use None"),
    (dict(fit_intercept="yes"), r"'fit_intercept' parameter .* True or False; got 'yes'"),
    (dict(alpha_per_unit=None), r"'alpha_per_unit' parameter .* True or False; got None"),
    (dict(refit="no"), r"'refit' parameter .* True or False; got 'no'"),
])
def test_bad_parameters_name_the_value_and_the_fix(params, pattern):
    X, Y, _, _ = make_problem(t=2)
    with pytest.raises(ParameterError, match=pattern):
        RidgeEncoder(**params).fit(X, Y)


def test_empty_features_are_rejected():
    with pytest.raises(ShapeError, match=r"at least one feature .* got X of shape \(12, 0\)"):
        RidgeEncoder().fit(np.ones((12, 0)), np.ones(12))


# ----------------------------------------------------------------- scikit-learn's checks
# Encoders follow the scikit-learn estimator contract in full: every check must pass.
# (conform's own contract kit runs on RidgeEncoder from tests/test_common.py.)
@parametrize_with_checks([RidgeEncoder(alphas=(0.1, 1.0, 10.0), cv=3)])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)
