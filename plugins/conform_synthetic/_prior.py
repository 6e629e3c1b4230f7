"""Each unit's exact linear tuning, the population prior over it, and the Gaussian oracle.

With ``nonlinearity=0`` the simulator's true response of every unit is exactly linear in the
stimulus features (``_signal.py``)::

    Z(x)   = (x W - m) / s                           z-scored over the study's stimuli
    S_u(x) = k_u (Z(x) · M_s[:, u] - c_u) + o_u      c_u, k_u: centring and scaling of the
                                                     unit over the subject's stimuli
           = x · w_u + b_u

so each unit of each subject has a weight vector ``w_u`` (length n_features) and an
intercept ``b_u``. A new person's units are draws from one population of ``(w, b)``: the
moments of that population, estimated from fresh simulated subjects of the same study, are
the prior that a Gaussian oracle reads (:func:`posterior_mean_readout`), the yardstick for
few-shot encoders such as BraInCoRL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError, ShapeError

from ._params import SimulationParams
from ._study import (
    SimulatedStudy,
    StudyPlan,
    SubjectDraws,
    draw_subject,
    fresh_subject_rng,
    plan_study,
    subject_name,
    subject_noise_model,
    subject_rng,
)

__all__ = ["LinearTuning", "TuningPrior", "linear_tuning", "noise_covariance", "population_prior",
           "posterior_mean_readout"]

Float64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LinearTuning:
    """The exact linear tuning of every unit of one simulated subject.

    Attributes
    ----------
    weights : ndarray of shape (n_units, n_features), float64
        ``w_u``: the true response of unit ``u`` to a stimulus with features ``x`` is
        ``x @ weights[u] + intercept[u]``.
    intercept : ndarray of shape (n_units,), float64
    noise_variance : ndarray of shape (n_units,), float64
        Variance of one trial's noise (``noise_sd**2``); the mean of ``r`` independent
        repeats has variance ``noise_variance / r``.
    subject : str
        The subject's name (``sub-01``, ...), or ``fresh-<seed>-<i>`` for a fresh subject.
    """

    weights: Float64
    intercept: Float64
    noise_variance: Float64
    subject: str

    def predict(self, features: Any) -> Float64:
        """Return the true responses, shape (n_stimuli, n_units), to ``features`` (n_stimuli, n_features)."""
        return np.asarray(features, dtype=np.float64) @ self.weights.T + self.intercept


@dataclass(frozen=True, eq=False)
class TuningPrior:
    """The population prior a voxel of a new person is drawn from: moments of ``(w, b)``.

    ``theta = (w_1, ..., w_E, b)``, the weights and the intercept of a unit's linear tuning.
    Made by :func:`population_prior` from simulated subjects that are not in the study; a
    hand-made prior (any mean and positive semi-definite covariance) works too.

    Attributes
    ----------
    mean : ndarray of shape (n_features + 1,), float64
        Mean of ``theta`` over units; the intercept last.
    covariance : ndarray of shape (n_features + 1, n_features + 1), float64
        Covariance of ``theta`` over units (symmetric, positive semi-definite; the
        simulator's is of rank ``n_latent + 1`` at most, so it is singular).
    noise_variance : float
        Mean over the same units of the single-trial noise variance.
    n_samples : int, default=0
        Number of units the moments were computed from (0 for a hand-made prior).
    """

    mean: Float64
    covariance: Float64
    noise_variance: float
    n_samples: int = 0

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float64)
        cov = np.array(self.covariance, dtype=np.float64)
        if mean.ndim != 1 or mean.size < 2 or cov.shape != (mean.size, mean.size):
            raise ShapeError(
                f"TuningPrior needs a mean of shape (n_features + 1,) and a covariance of shape "
                f"(n_features + 1, n_features + 1); got {mean.shape} and {cov.shape}. Put the "
                "intercept last in both.")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
            raise ShapeError("TuningPrior.mean and .covariance must be finite; got NaN or inf. "
                             "Recompute the moments from finite samples.")
        noise = float(self.noise_variance)
        if not (np.isfinite(noise) and noise >= 0):
            raise ParameterError(param="noise_variance", value=self.noise_variance,
                                 owner="TuningPrior", allowed="a finite number >= 0",
                                 fix="Pass the mean single-trial noise variance of the units.")
        cov = (cov + cov.T) / 2  # exact symmetry for eigh
        mean.flags.writeable = cov.flags.writeable = False
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "covariance", cov)
        object.__setattr__(self, "noise_variance", noise)

    @property
    def n_features(self) -> int:
        """Length of the weight vector ``w`` (the intercept excluded)."""
        return int(self.mean.size - 1)


def _as_plan(study: StudyPlan | SimulatedStudy | SimulationParams, owner: str,
             linear: bool = True) -> StudyPlan:
    if isinstance(study, StudyPlan):
        plan = study
    elif isinstance(study, SimulatedStudy):
        plan = plan_study(SimulationParams(**study.params))
    elif isinstance(study, SimulationParams):
        plan = plan_study(study)
    else:
        raise TypeError(
            f"{owner} needs a StudyPlan, a SimulatedStudy or a SimulationParams; got "
            f"{type(study).__name__}. Pass plan_study(SimulationParams(...)) or the result "
            "of simulate_study(...).")
    if linear and plan.params.nonlinearity != 0:
        raise ParameterError(
            f"{owner} needs a study simulated with $nonlinearity=0, whose responses are exactly "
            f"linear in the features; this one has nonlinearity={plan.params.nonlinearity} (the "
            "rectified share of the latent tuning).", param="nonlinearity",
            value=plan.params.nonlinearity, owner=owner,
            fix="Simulate the study with $nonlinearity=0 (the default is 0.2), e.g. "
                "simulate_study(..., nonlinearity=0).")
    return plan


def _latent_map(plan: StudyPlan) -> tuple[Float64, Float64]:
    """Return ``(A, c)`` with ``Z(x) = x @ A + c`` (linear latent tuning, float64)."""
    tuning = plan.tuning
    projection = tuning.projection.astype(np.float64)
    linear = tuning.features.astype(np.float64) @ projection
    mean, sd = linear.mean(axis=0), linear.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)  # as the simulator's z-scoring
    return projection / sd, -mean / sd


def _tuning(plan: StudyPlan, draws: SubjectDraws, latent_map: tuple[Float64, Float64],
            name: str) -> LinearTuning:
    """Weights and intercepts of one subject (see the module docstring)."""
    A, c = latent_map
    mixing = draws.mixing.astype(np.float64)
    # the centring and scaling use the latent tuning the simulator stored (float32)
    raw = plan.tuning.latent[draws.design.stimuli].astype(np.float64) @ mixing
    centre, sd = raw.mean(axis=0), raw.std(axis=0)
    scale = draws.signal_sd.astype(np.float64) / np.where(sd > 0, sd, 1.0)
    weights = (A @ mixing) * scale  # (n_features, n_units)
    intercept = (c @ mixing - centre) * scale + draws.offset.astype(np.float64)
    return LinearTuning(weights=np.ascontiguousarray(weights.T), intercept=intercept,
                        noise_variance=draws.noise_sd.astype(np.float64) ** 2, subject=name)


def linear_tuning(study: StudyPlan | SimulatedStudy | SimulationParams,
                  subject: int | str) -> LinearTuning:
    """Return the exact linear tuning of each unit of one subject of a linear simulated study.

    Parameters
    ----------
    study : StudyPlan, SimulatedStudy or SimulationParams
        A study simulated with ``nonlinearity=0`` (:func:`plan_study`, :func:`simulate_study`
        or its parameters; the subject is recomputed from the same random streams, without
        simulating its noise).
    subject : int or str
        0-based index of the subject, or its name (``"sub-01"``).

    Returns
    -------
    LinearTuning
        ``weights`` (n_units, n_features), ``intercept`` (n_units,) and the single-trial
        ``noise_variance`` (n_units,): ``truth.signal`` of the simulated subject equals
        ``features @ weights.T + intercept`` (up to float32 rounding, the simulator's
        precision).

    Raises
    ------
    ParameterError
        If the study's ``nonlinearity`` is not 0, or ``subject`` is not one of its subjects.

    Examples
    --------
    >>> from conform_synthetic import linear_tuning, simulate_study
    >>> study = simulate_study(n_subjects=1, n_units=5, n_stimuli=40, nonlinearity=0)
    >>> tuning = linear_tuning(study, 0)
    >>> truth = study.subjects[0].truth.signal.data.T
    >>> features = study.stimuli.select(study.subjects[0].truth.signal.stimulus_ids).embeddings
    >>> bool(abs(tuning.predict(features) - truth).max() < 1e-4)
    True
    """
    plan = _as_plan(study, "linear_tuning")
    index = _subject_index(plan, subject, "linear_tuning")
    draws = draw_subject(plan, subject_rng(plan.params, index), index)
    return _tuning(plan, draws, _latent_map(plan), subject_name(index, plan.params.n_subjects))


def _subject_index(plan: StudyPlan, subject: int | str, owner: str) -> int:
    """Return the 0-based index of ``subject`` (an index or a name) in ``plan``."""
    n = plan.params.n_subjects
    names = plan.subject_names
    if isinstance(subject, str) and subject in names:
        return names.index(subject)
    if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool) \
            and 0 <= subject < n:
        return int(subject)
    raise ParameterError(
        param="subject", value=subject, owner=owner,
        allowed=f"a subject index in [0, {n - 1}] or a name ({names[0]} ... {names[-1]})",
        fix="Pass the 0-based index of a subject of this study, or its name.")


def noise_covariance(study: StudyPlan | SimulatedStudy | SimulationParams,
                     subject: int | str) -> NDArray[np.float64]:
    """Return the exact single-trial noise covariance (n_units, n_units) of one subject.

    The covariance the simulator's noise model draws from (low-rank, spatially smooth and
    independent parts, scaled by each unit's noise sd), recomputed from the subject's random
    stream without simulating anything: what an oracle denoiser (the Wiener filter with the
    true signal and noise covariances) reads. Any ``nonlinearity`` works.

    Parameters
    ----------
    study : StudyPlan, SimulatedStudy or SimulationParams
    subject : int or str
        0-based index of the subject, or its name (``"sub-01"``).

    Raises
    ------
    ParameterError
        If ``subject`` is not one of the study's subjects.

    Examples
    --------
    >>> from conform_synthetic import noise_covariance, simulate_study
    >>> study = simulate_study(n_subjects=1, n_units=9, n_stimuli=30, noise_rank=0,
    ...                        lowrank_fraction=0.0, spatial_fraction=0.0)
    >>> cov = noise_covariance(study, "sub-01")
    >>> bool(np.allclose(cov, np.diag(np.diag(cov))))   # independent noise: diagonal
    True
    """
    plan = _as_plan(study, "noise_covariance", linear=False)
    index = _subject_index(plan, subject, "noise_covariance")
    params = plan.params
    rng = subject_rng(params, index)
    draws = draw_subject(plan, rng, index)
    cov = subject_noise_model(params, draws, rng).covariance()
    return cov if draws.units.size == params.n_units else cov[np.ix_(draws.units, draws.units)]


def population_prior(study: StudyPlan | SimulatedStudy | SimulationParams, n_subjects: int = 16,
                     seed: int = 0) -> TuningPrior:
    """Return the population prior a voxel of a new person is drawn from.

    ``n_subjects`` fresh subjects of the same study (same stimuli, shared tuning and
    settings, each with its own stimulus allocation, unit scales and mixing) are drawn from
    random streams that no subject of the study uses, so a held-out subject of the study
    never informs its own prior. The mean and covariance over all their units of
    ``theta = (w, b)`` (:func:`linear_tuning`) are the prior that a Gaussian oracle reads
    (:func:`posterior_mean_readout`).

    Parameters
    ----------
    study : StudyPlan, SimulatedStudy or SimulationParams
        A study simulated with ``nonlinearity=0``.
    n_subjects : int, default=16
        Fresh subjects to draw (``n_subjects * n_units`` samples of ``theta``).
    seed : int, default=0
        Which fresh subjects: different seeds give independent sets.

    Returns
    -------
    TuningPrior
        ``mean`` (n_features + 1,), ``covariance`` (population moments, ``ddof=0``; rank
        at most ``n_latent + 1``), ``noise_variance`` (mean single-trial noise variance) and
        ``n_samples``.

    Raises
    ------
    ParameterError
        If the study's ``nonlinearity`` is not 0, ``n_subjects < 1`` or ``seed < 0``.

    Examples
    --------
    >>> from conform_synthetic import SimulationParams, plan_study, population_prior
    >>> plan = plan_study(SimulationParams(n_units=20, n_features=8, n_latent=2, nonlinearity=0))
    >>> prior = population_prior(plan, n_subjects=4)
    >>> prior.mean.shape, prior.covariance.shape, prior.n_samples
    ((9,), (9, 9), 80)
    """
    plan = _as_plan(study, "population_prior")
    for name, value, low in (("n_subjects", n_subjects, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ParameterError(param=name, value=value, owner="population_prior",
                                 allowed=f"an int in [{low}, inf)",
                                 fix=f"Pass ${name}={max(low, 1)} or more.")
    latent_map = _latent_map(plan)
    thetas, noise = [], []
    for i in range(int(n_subjects)):
        draws = draw_subject(plan, fresh_subject_rng(plan.params, int(seed), i))
        tuning = _tuning(plan, draws, latent_map, f"fresh-{seed}-{i}")
        thetas.append(np.column_stack([tuning.weights, tuning.intercept]))
        noise.append(tuning.noise_variance)
    theta = np.concatenate(thetas)
    mean = theta.mean(axis=0)
    centred = theta - mean
    cov = centred.T @ centred / theta.shape[0]
    return TuningPrior(mean=mean, covariance=cov, noise_variance=float(np.mean(np.concatenate(noise))),
                       n_samples=int(theta.shape[0]))


def posterior_mean_readout(prior: TuningPrior, X_context: Any, y_context: Any,
                           noise_variance: Any) -> tuple[Float64, Any]:
    """Return each unit's Gaussian posterior mean of ``(w, b)`` given context examples.

    The model: ``theta = (w, b) ~ N(prior.mean, prior.covariance)`` and
    ``y = X w + b + e`` with ``e ~ N(0, noise_variance I)``, independently per unit. The
    posterior mean, the best linear estimator of ``theta`` from the context whatever the
    prior's shape, is

    ``mu + Σ Aᵀ (A Σ Aᵀ + σ² I)⁻¹ (y − A mu)`` with ``A = [X, 1]``,

    computed as ``mu + L (BᵀB + σ² I)⁻¹ Bᵀ (y − A mu)`` with ``Σ = L Lᵀ`` (``L`` from the
    eigen-decomposition of ``Σ``, zero directions dropped) and ``B = A L``: one small
    eigen-decomposition of ``BᵀB`` serves every unit and every noise level, and a singular
    (low-rank) prior covariance needs no inverse. Cost ``O(N E² + N E U + E² U)`` for N
    examples, E features and U units.

    Parameters
    ----------
    prior : TuningPrior
        The population prior (:func:`population_prior`).
    X_context : array-like of shape (n_context, n_features)
        Features of the context stimuli (``n_context`` may be 0: the prior mean).
    y_context : array-like of shape (n_context, n_units) or (n_context,)
        Responses to them, e.g. condition means over repeats.
    noise_variance : float or array-like of shape (n_units,)
        Noise variance of each value of ``y_context``, > 0: for the mean of ``r`` repeats,
        the single-trial variance (``LinearTuning.noise_variance`` or
        ``prior.noise_variance``) divided by ``r``.

    Returns
    -------
    weights : ndarray of shape (n_units, n_features), or (n_features,) for 1-D ``y_context``
    intercept : ndarray of shape (n_units,), or float for 1-D ``y_context``
        Predictions for features ``X`` are ``X @ weights.T + intercept``.

    Raises
    ------
    ShapeError
        If the shapes disagree with each other or with the prior, or a value is not finite.
    ParameterError
        If a noise variance is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from conform_synthetic import TuningPrior, posterior_mean_readout
    >>> prior = TuningPrior(mean=np.zeros(3), covariance=np.eye(3), noise_variance=1.0)
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> w, b = posterior_mean_readout(prior, X, np.array([2.0, 2.0]), 1.0)
    >>> w.round(3).tolist(), round(float(b), 3)
    ([0.5, 0.5], 1.0)
    """
    X = np.asarray(X_context, dtype=np.float64)
    y = np.asarray(y_context, dtype=np.float64)
    one = y.ndim == 1
    Y = y[:, None] if one else y
    n_features = prior.n_features
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ShapeError(
            f"X_context must have shape (n_context, n_features={n_features}) to match the "
            f"prior; got {X.shape}. Pass the features the prior was built on.")
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ShapeError(
            f"y_context must have one row per context stimulus ({X.shape[0]}), shape "
            f"(n_context,) or (n_context, n_units); got {y.shape}. Align it with X_context.")
    for name, arr in (("X_context", X), ("y_context", Y)):
        if not np.all(np.isfinite(arr)):
            raise ShapeError(f"{name} contains NaN or inf. Drop those stimuli (or units) first.")
    n_units = Y.shape[1]
    s2 = np.asarray(noise_variance, dtype=np.float64)
    if s2.ndim > 1 or (s2.ndim == 1 and s2.size != n_units):
        raise ShapeError(
            f"noise_variance must be one number or one per unit ({n_units}); got shape "
            f"{s2.shape}. Pass a float, or an array of shape (n_units,).")
    if not (np.all(np.isfinite(s2)) and np.all(s2 > 0)):
        raise ParameterError(
            param="noise_variance", value=noise_variance, owner="posterior_mean_readout",
            allowed="positive finite number(s)",
            fix="Pass the noise variance of each context value (single-trial variance / "
                "repeats); with noise-free responses, use a small positive value.")
    s2 = np.broadcast_to(s2, (n_units,))

    mu, cov = prior.mean, prior.covariance
    A = np.column_stack([X, np.ones(X.shape[0])])
    eig, vec = np.linalg.eigh(cov)
    top = max(float(eig[-1]), 0.0)
    keep = eig > top * cov.shape[0] * np.finfo(np.float64).eps
    L = vec[:, keep] * np.sqrt(eig[keep])  # (E+1, r): Σ = L Lᵀ up to rounding
    B = A @ L  # (N, r)
    gam, P = np.linalg.eigh(B.T @ B)
    gam = np.clip(gam, 0.0, None)
    resid = Y - (A @ mu)[:, None]  # (N, U)
    coords = P.T @ (B.T @ resid)  # (r, U)
    coords /= gam[:, None] + s2[None, :]
    theta = mu[:, None] + (L @ P) @ coords  # (E+1, U)
    weights, intercept = np.ascontiguousarray(theta[:-1].T), theta[-1].copy()
    if one:
        return weights[0], intercept[0]
    return weights, intercept
