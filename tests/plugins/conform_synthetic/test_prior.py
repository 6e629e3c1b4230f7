"""Exact linear tuning, population prior and Gaussian oracle of the simulator (``_prior.py``)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from conform_baselines.ridge import RidgeEncoder
from conform_synthetic import (
    SimulationParams,
    TuningPrior,
    linear_tuning,
    plan_study,
    population_prior,
    posterior_mean_readout,
    simulate_study,
)
from threadpoolctl import threadpool_limits

from conform_core.exceptions import ParameterError, ShapeError

#: A linear study: 32 features, 4 latent dimensions (the setting of the few-shot benchmark).
LINEAR = dict(n_subjects=2, n_units=200, n_stimuli=300, n_features=32, n_latent=4,
              n_repeats=2, nonlinearity=0.0, random_state=0)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small factorisations run far slower with 2 BLAS threads on a loaded 2-core machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def study():
    return simulate_study(**LINEAR)


@pytest.fixture(scope="module")
def prior(study):
    return population_prior(study, n_subjects=16, seed=0)


def condition_means(subject, ids):
    """Mean over repeats of each stimulus in ``ids`` (n, n_units) and the repeat counts."""
    betas, sid = subject.trials.betas.astype(np.float64), subject.trials.stimulus_ids
    rows = [sid == i for i in ids]
    return np.stack([betas[r].mean(axis=0) for r in rows]), np.array([r.sum() for r in rows])


def unit_correlations(pred, target):
    """Pearson r between columns of ``pred`` and ``target``, one per unit."""
    p, t = pred - pred.mean(axis=0), target - target.mean(axis=0)
    return (p * t).sum(axis=0) / np.sqrt((p * p).sum(axis=0) * (t * t).sum(axis=0))


# ----------------------------------------------------------------- linear_tuning
@pytest.mark.parametrize("index", [0, 1])
def test_linear_tuning_reproduces_the_true_signal(study, index):
    """features @ weights.T + intercept is truth.signal.

    The simulator computes the signal in float32 through ~6 rounded steps (F @ W, two
    z-scorings, the mixing product, centring, scaling); measured agreement is ~3e-7 of the
    largest response, so 1e-5 of it (about 150 float32 epsilons) leaves a 30x margin while any
    algebraic slip (a missed centring or scale) is off by > 1e-2.
    """
    subject = study.subjects[index]
    tuning = linear_tuning(study, index)
    truth = subject.truth.signal.data.T.astype(np.float64)  # (n_stimuli_s, n_units)
    features = study.stimuli.select(subject.truth.signal.stimulus_ids).embeddings
    assert tuning.weights.shape == (200, 32) and tuning.intercept.shape == (200,)
    assert tuning.subject == subject.name
    np.testing.assert_allclose(tuning.predict(features), truth, rtol=0,
                               atol=1e-5 * np.abs(truth).max())


def test_linear_tuning_noise_variance_matches_the_trials(study):
    """noise_variance is the single-trial noise variance: residuals of the trials around the
    true signal have that variance (600 trials per unit: relative sd of a variance estimate
    sqrt(2/600) ~ 6%, so 25% is a 4-sigma bound per unit; measured 0.89-1.18)."""
    subject = study.subjects[0]
    tuning = linear_tuning(study, "sub-01")
    position = {sid: i for i, sid in enumerate(study.stimuli.ids)}
    features = study.stimuli.embeddings[[position[sid] for sid in subject.trials.stimulus_ids]]
    resid = subject.trials.betas - tuning.predict(features)
    ratio = resid.var(axis=0) / tuning.noise_variance
    assert np.all(np.abs(ratio - 1) < 0.25), ratio


def test_linear_tuning_accepts_a_plan_params_or_study(study):
    params = SimulationParams(**study.params)
    a = linear_tuning(study, 1)
    for source in (params, plan_study(params)):
        b = linear_tuning(source, "sub-02")
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.intercept, b.intercept)


@pytest.mark.parametrize("function", [linear_tuning, population_prior])
def test_nonlinear_study_is_refused_with_the_fix(function):
    plan = plan_study(SimulationParams(n_units=4, n_stimuli=20, nonlinearity=0.2))
    args = (plan, 0) if function is linear_tuning else (plan,)
    with pytest.raises(ParameterError) as info:
        function(*args)
    message = str(info.value)
    assert f"{function.__name__} needs a study simulated with nonlinearity=0" in message
    assert "nonlinearity=0.2" in message and "simulate_study(..., nonlinearity=0)" in message


@pytest.mark.parametrize("subject", [2, -1, "sub-09", True])
def test_unknown_subject_names_the_choices(study, subject):
    with pytest.raises(ParameterError, match=r"'subject' parameter of linear_tuning must be a "
                                             r"subject index in \[0, 1\] or a name \(sub-01 \.\.\. "
                                             r"sub-02\)"):
        linear_tuning(study, subject)


# ----------------------------------------------------------------- population_prior
def test_prior_is_low_rank_and_reproducible(study, prior):
    """theta = (A m k, b): rank n_latent + 1 = 5; the same seed gives the same prior."""
    eig = np.linalg.eigvalsh(prior.covariance)
    assert prior.mean.shape == (33,) and prior.covariance.shape == (33, 33)
    assert prior.n_samples == 16 * 200
    assert np.all(eig[-5:] > 1e-3 * eig[-1]) and np.all(np.abs(eig[:-5]) < 1e-10 * eig[-1])
    again = population_prior(study, n_subjects=16, seed=0)
    np.testing.assert_array_equal(again.covariance, prior.covariance)
    other = population_prior(study, n_subjects=16, seed=1)
    assert not np.allclose(other.mean, prior.mean, rtol=1e-6, atol=0)
    noise = np.mean([linear_tuning(study, i).noise_variance.mean() for i in range(2)])
    assert prior.noise_variance == pytest.approx(noise, rel=0.2)  # same population of units


def test_prior_does_not_use_the_study_subjects(study, prior):
    """Fresh subjects come from streams of their own: the study's subjects do not change it,
    and none of them is among its samples."""
    fewer = population_prior(SimulationParams(**{**LINEAR, "n_subjects": 1}), n_subjects=16)
    np.testing.assert_array_equal(fewer.covariance, prior.covariance)
    one = population_prior(study, n_subjects=1)
    for index in range(2):
        tuning = linear_tuning(study, index)
        theta = np.column_stack([tuning.weights, tuning.intercept])
        assert not np.allclose(theta.mean(axis=0), one.mean)


# ----------------------------------------------------------------- posterior_mean_readout
def test_posterior_mean_beats_ridge_at_small_n(study, prior):
    """The oracle of the few-shot benchmark: with N = 20 context stimuli it predicts held-out
    stimuli of a study subject (not used for the prior) far better than per-unit ridge.

    Measured mean r with the true signal over 200 units, seeds 0-2: oracle 0.93-0.95, ridge
    0.57-0.69 (refit) and 0.57-0.70 (fold average): a gap of 0.24-0.37. The asserted 0.1 is
    less than half the smallest gap, and far above the seed-to-seed spread of the mean over
    200 units (~0.05 for ridge, which moves with the particular 20 stimuli drawn).
    """
    subject = study.subjects[1]
    tuning = linear_tuning(study, 1)
    test_ids = np.sort(subject.test_ids)
    features_test = study.stimuli.select(test_ids).embeddings
    truth = tuning.predict(features_test)
    for seed in range(3):
        context = np.random.default_rng(seed).choice(np.sort(subject.train_ids), 20,
                                                     replace=False)
        X = study.stimuli.select(context).embeddings
        Y, repeats = condition_means(subject, context)
        w, b = posterior_mean_readout(prior, X, Y, tuning.noise_variance / repeats.mean())
        oracle = unit_correlations(features_test @ w.T + b, truth).mean()
        for refit in (True, False):
            ridge = RidgeEncoder(refit=refit).fit(X, Y).predict(features_test)
            assert oracle > unit_correlations(ridge, truth).mean() + 0.1, (seed, refit)


def test_posterior_mean_matches_the_textbook_formula_per_unit(prior):
    """Vectorised and low-rank form == mu + Σ Aᵀ (A Σ Aᵀ + σ² I)⁻¹ (y − A mu), unit by unit.

    Both are float64 solves of systems with condition number ~ (λmax(AΣAᵀ) + σ²)/σ² < 1e5;
    measured agreement ~1e-12 relative, so 1e-8 keeps a wide margin.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((15, 32))
    Y = rng.standard_normal((15, 6)) * 3 + 1
    s2 = np.geomspace(0.1, 10, 6)
    w, b = posterior_mean_readout(prior, X, Y, s2)
    A = np.column_stack([X, np.ones(15)])
    mu, cov = prior.mean, prior.covariance
    for u in range(6):
        gain = cov @ A.T @ np.linalg.inv(A @ cov @ A.T + s2[u] * np.eye(15))
        theta = mu + gain @ (Y[:, u] - A @ mu)
        scale = np.abs(theta).max()
        np.testing.assert_allclose(w[u], theta[:-1], rtol=0, atol=1e-8 * scale)
        np.testing.assert_allclose(b[u], theta[-1], rtol=0, atol=1e-8 * scale)
    w1, b1 = posterior_mean_readout(prior, X, Y[:, 2], s2[2])
    assert w1.shape == (32,) and np.ndim(b1) == 0
    np.testing.assert_allclose(w1, w[2], rtol=1e-12)


def test_posterior_mean_without_context_is_the_prior_mean(prior):
    w, b = posterior_mean_readout(prior, np.zeros((0, 32)), np.zeros((0, 3)), 1.0)
    np.testing.assert_array_equal(w, np.tile(prior.mean[:-1], (3, 1)))
    np.testing.assert_array_equal(b, np.full(3, prior.mean[-1]))


def test_posterior_mean_converges_to_least_squares():
    """With a full-rank prior, posterior − LS = (AᵀA + σ²Σ⁻¹)⁻¹ σ² Σ⁻¹ (mu − θ_LS), whose norm is
    at most σ² / (λmin(AᵀA) + σ²) · ‖mu − θ_LS‖ for Σ = I: ~1e-5 relative at N = 100,000. The
    bound is exact algebra (no statistics), so it is asserted with 1e-6 slack for rounding;
    and at N = 100 the gap is larger, so the convergence is not an accident of the data."""
    rng = np.random.default_rng(1)
    prior = TuningPrior(mean=np.full(9, 0.5), covariance=np.eye(9), noise_variance=2.0)
    theta = rng.standard_normal((9, 4)) * 2
    gaps = {}
    for n in (100, 100_000):
        X = rng.standard_normal((n, 8)) + 0.3
        A = np.column_stack([X, np.ones(n)])
        Y = A @ theta + rng.standard_normal((n, 4)) * np.sqrt(2.0)
        w, b = posterior_mean_readout(prior, X, Y, 2.0)
        ls = np.linalg.lstsq(A, Y, rcond=None)[0]  # (9, 4)
        gap = np.linalg.norm(np.vstack([w.T, b]) - ls, axis=0)
        bound = 2.0 / (np.linalg.eigvalsh(A.T @ A)[0] + 2.0) \
            * np.linalg.norm(prior.mean[:, None] - ls, axis=0)
        assert np.all(gap <= bound * (1 + 1e-6) + 1e-12), (n, gap, bound)
        gaps[n] = gap.max() / np.abs(ls).max()
    assert gaps[100_000] < 1e-4 and gaps[100] > 10 * gaps[100_000]


def test_posterior_mean_with_the_simulator_prior_approaches_the_truth(study, prior):
    """Many noisy examples of a study unit: the posterior mean nears the true (w, b), closer
    than least squares, since it searches only the prior's 5-D subspace, which holds the
    truth: its error is ~sqrt(5/33) ~ 0.39 of the LS error (measured 0.31 in median over
    200 units, and 1.2% of |theta|); 0.6 and 5% leave room for another draw."""
    tuning = linear_tuning(study, 0)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((20_000, 32)) / np.sqrt(32)
    Y = tuning.predict(X) + rng.standard_normal((20_000, 200)) * np.sqrt(tuning.noise_variance)
    w, b = posterior_mean_readout(prior, X, Y, tuning.noise_variance)
    A = np.column_stack([X, np.ones(len(X))])
    ls = np.linalg.lstsq(A, Y, rcond=None)[0].T
    truth = np.column_stack([tuning.weights, tuning.intercept])
    post_err = np.linalg.norm(np.column_stack([w, b]) - truth, axis=1)
    ls_err = np.linalg.norm(ls - truth, axis=1)
    assert np.median(post_err) <= 0.6 * np.median(ls_err)
    assert np.median(post_err / np.linalg.norm(truth, axis=1)) < 0.05


@pytest.mark.parametrize(("args", "error", "pattern"), [
    (dict(X_context=np.zeros((5, 31))), ShapeError, r"shape \(n_context, n_features=32\).*got "
                                                    r"\(5, 31\)"),
    (dict(y_context=np.zeros((4, 3))), ShapeError, r"one row per context stimulus \(5\)"),
    (dict(y_context=np.full((5, 3), np.nan)), ShapeError, r"y_context contains NaN"),
    (dict(noise_variance=np.ones(2)), ShapeError, r"one per unit \(3\); got shape \(2,\)"),
    (dict(noise_variance=0.0), ParameterError, r"'noise_variance' parameter of "
                                               r"posterior_mean_readout must be positive finite"),
])
def test_bad_readout_input_names_the_value_and_the_fix(prior, args, error, pattern):
    kwargs = dict(X_context=np.zeros((5, 32)), y_context=np.zeros((5, 3)), noise_variance=1.0)
    with pytest.raises(error, match=pattern):
        posterior_mean_readout(prior, **{**kwargs, **args})


def test_tuning_prior_checks_its_shapes():
    with pytest.raises(ShapeError, match=r"mean of shape \(n_features \+ 1,\).*got \(3,\) and "
                                         r"\(2, 2\)"):
        TuningPrior(mean=np.zeros(3), covariance=np.eye(2), noise_variance=1.0)
    with pytest.raises(ParameterError, match=r"'noise_variance' parameter of TuningPrior"):
        TuningPrior(mean=np.zeros(3), covariance=np.eye(3), noise_variance=-1.0)


def test_docstring_examples_run():
    import conform_synthetic._prior as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("noise", [{}, {"noise_rank": 0, "lowrank_fraction": 0.0,
                                        "spatial_fraction": 0.0},
                                   {"noise_length_scale": 0.0}])
def test_noise_covariance_is_the_covariance_the_trials_were_drawn_from(noise):
    from conform_synthetic import noise_covariance

    study = simulate_study(n_subjects=2, n_units=36, n_stimuli=400, n_repeats=5,
                           random_state=4, **noise)
    subject = study.subjects[1]
    rows = np.searchsorted(subject.truth.signal.stimulus_ids, subject.trials.stimulus_ids)
    residual = subject.truth.trial_amplitudes - subject.truth.signal.data.T[rows]
    empirical = np.cov(residual.T)
    model = noise_covariance(study, "sub-02")
    # 2,000 trials: each variance is estimated to ~3 % (sqrt(2/2000)); the median of 36 ratios
    # is within a few percent of 1, and the off-diagonal pattern matches closely
    assert abs(np.median(np.diag(empirical) / np.diag(model)) - 1) < 0.05
    upper = np.triu_indices(36, 1)
    if np.abs(model[upper]).max() > 0:
        assert np.corrcoef(empirical[upper], model[upper])[0, 1] > 0.9
    else:  # independent noise: sample correlations of 2,000 trials have sd ~0.022; the
        # largest of 630 pairs stays under ~4.5 sd
        assert np.abs(np.corrcoef(residual.T)[upper]).max() < 0.12
