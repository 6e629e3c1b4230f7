"""Conform's ``auto`` preset: choose a PSN denoiser by cross-validation on the training trials.

Not an official PSN preset (:func:`conform_psn.psn` keeps those, for parity). The candidates
are the official presets of the current API and a family of rank-limited Wiener filters
built from GSN's covariances, plus the per-unit mean (rank 0). Every candidate is scored by
K-fold cross-validation over **conditions**: it is fitted on the training folds (GSN and PSN
as usual), and on each held-out condition it denoises the average of all trials but one,
which is compared with the left-out trial. The left-out trial's noise is independent of the
fit and of the input, so the expected squared error is the error to the true signal plus
the noise variance: the score ranks candidates as their error to the truth does (for
averages of one trial fewer than the data has).

The Wiener family works in GSN's noise-whitened space: with ``cNb = L L^T`` and the
eigendecomposition ``L^-1 cSb L^-T = U diag(lam) U^T``, the filter for averages of ``n``
trials keeping ``k`` dimensions is ``L U_k diag(f) U_k^T L^-1``, with weights
``f = g lam / (g lam + 1/n)`` (``g`` shrinks the estimated signal eigenvalues) or the
spiked-covariance correction of each eigenvalue and eigenvector (:func:`_shrinkers`).
``compare`` is not a default candidate (it is ``standard`` or the difference basis at the
same criterion, never the best official preset on issue 13's grid, and the slowest).

Each candidate's output is also shrunk toward the unit means by the factor ``beta`` in
[0, 1] that minimises its cross-validated error; ``beta = 0`` is the mean itself, so no
candidate scores worse than the mean. The mean is returned outright (and flagged) when the
best candidate's gain over the mean is within ``z_threshold`` standard errors of zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from conform_core.constraints import Interval, Options, SequenceOf
from conform_core.exceptions import ShapeError

from ._gsn import perform_gsn
from ._psn import psn
from ._validation import check_constant_units, check_data

__all__ = ["AUTO", "AUTO_PRESETS", "AUTO_CONSTRAINTS", "AUTO_FIXES", "AutoFit", "fit_auto"]

AUTO = "auto"
"""The preset name (conform's, not an official PSN preset)."""

AUTO_PRESETS: tuple[str, ...] = ("standard", "conservative", "aggressive", "compare", "wiener")
DEFAULT_PRESETS: tuple[str, ...] = ("standard", "conservative", "aggressive", "wiener")
"""Official presets (current API) among the candidates of ``auto``."""

_GAINS = (1.0, 0.5, 0.25)
_EIGEN_KEYS = ("cSb", "cNb", "eigvecs_signal", "eigvals_signal", "eigvecs_difference",
               "eigvals_difference")
"""Shrinkage factors ``g`` of the signal eigenvalues in the Wiener family."""

MEAN = "mean"
"""Name of the rank-0 candidate (each unit's training mean)."""

AUTO_CONSTRAINTS: dict[str, list[Any]] = {
    "n_folds": [Interval(int, 2, None)],
    "k_max": [Interval(int, 1, None)],
    "z_threshold": [Interval(float, 0, None)],
    "presets": [SequenceOf(Options(AUTO_PRESETS))],
}
"""The options of preset ``auto`` (``PSNDenoiser(preset="auto", options={...})``)."""

AUTO_FIXES: dict[str, str] = {
    "presets": f"Name official presets of the current API: {', '.join(AUTO_PRESETS)}; or "
               "pass an empty list to choose only among the Wiener filters and the mean.",
}

_MIN_CONDITIONS = 6


@dataclass
class AutoFit:
    """What :func:`fit_auto` chose and why.

    Attributes
    ----------
    denoiser : ndarray of shape (n_units, n_units)
        Applied transposed, as PSN's: ``x_hat = denoiser.T @ (x - unit_means) + unit_means``.
    unit_means : ndarray of shape (n_units,)
    chosen : str
        ``"mean"``, an official preset, or ``"wiener-k<K>-g<G>"``.
    cv_scores : dict of str to float
        Cross-validated error of every candidate, in NMSE units: 1 + (its held-out-trial
        error - the mean's) / the estimated signal variance, after its own ``beta``.
    shrinkage : float
        ``1 - beta`` of the chosen candidate (0: none; 1: the mean).
    returns_mean : bool
        True when the result is the per-unit mean (no signal found, or too weak to use).
    best_threshold : int or float
        Dimensions kept (K; for the official ``wiener``, its effective dimensions).
    gsn_result : dict
        GSN on all the training data (``cSb``, ``cNb``).
    details : dict
        ``betas`` (per candidate), ``gain_se`` (standard error of the chosen candidate's
        gain), ``n_folds``, ``n_trials``.
    """

    denoiser: NDArray[np.float64]
    unit_means: NDArray[np.float64]
    chosen: str
    cv_scores: dict[str, float]
    shrinkage: float
    returns_mean: bool
    best_threshold: int | float
    gsn_result: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- pieces

def _folds(n_cond: int, n_folds: int) -> list[NDArray[np.intp]]:
    perm = np.random.RandomState(0).permutation(n_cond)
    return [np.sort(perm[i::n_folds]) for i in range(n_folds)]


def _holdout_pairs(data: NDArray[np.float64], cond: NDArray[np.intp], means: NDArray[np.float64]
                   ) -> tuple[NDArray, NDArray, NDArray, NDArray[np.intp]]:
    """Leave-one-trial-out pairs on the conditions ``cond``.

    Returns the inputs (average of the other trials minus ``means``), the targets (the
    left-out trial minus ``means``), the mask of valid entries (units x pairs), and the
    condition of each pair. NaN entries are 0 and masked.
    """
    x = data[:, cond]  # (N, c, T)
    ok = ~np.isnan(x)
    x0 = np.where(ok, x, 0.0)
    total, count = x0.sum(axis=2), ok.sum(axis=2)
    inputs, targets, masks, owners = [], [], [], []
    for t in range(x.shape[2]):
        rest = count - ok[:, :, t]
        valid = ok[:, :, t] & (rest > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = (total - x0[:, :, t]) / rest
        inputs.append(np.where(rest > 0, avg - means[:, None], 0.0))
        targets.append(np.where(valid, x0[:, :, t] - means[:, None], 0.0))
        masks.append(valid)
        owners.append(np.arange(cond.size))
    return (np.concatenate(inputs, axis=1), np.concatenate(targets, axis=1),
            np.concatenate(masks, axis=1), np.concatenate(owners))


def _whitened_eig(c_sb: NDArray[np.float64], c_nb: NDArray[np.float64]
                  ) -> tuple[NDArray, NDArray, NDArray]:
    """Return ``(lam, B, A)``: GSN's signal covariance in the noise-whitened space.

    ``lam`` are its eigenvalues (descending, clipped at 0), ``B = L U`` and
    ``A = U^T L^-1`` with ``cNb = L L^T``, so that
    ``cSb (cSb + cNb / n)^-1 = B diag(lam / (lam + 1/n)) A``. One generalized symmetric
    eigendecomposition ``cSb V = cNb V diag(lam)``, ``V^T cNb V = I`` gives them all:
    ``V = L^-T U``, so ``A = V^T`` and ``B = cNb V`` (no explicit inverse, no whitened
    matrix).
    """
    n = c_nb.shape[0]
    jitter = 1e-10 * max(float(np.trace(c_nb)) / n, 1e-300)  # as PSN's Wiener filter
    noise = c_nb + jitter * np.eye(n)
    try:
        lam, v = scipy.linalg.eigh(c_sb, noise, check_finite=False)
    except np.linalg.LinAlgError:  # not positive definite: whiten by the clipped spectrum
        values, vectors = np.linalg.eigh(noise)
        root = np.sqrt(np.maximum(values, 1e-8 * max(float(values.max()), 1e-300)))
        chol, inv = vectors * root, (vectors / root).T
        whitened = inv @ c_sb @ inv.T
        lam, u = np.linalg.eigh((whitened + whitened.T) / 2)
        lam, u = np.maximum(lam[::-1], 0.0), u[:, ::-1]
        return lam, chol @ u, u.T @ inv
    lam, v = np.maximum(lam[::-1], 0.0), v[:, ::-1]
    return lam, noise @ v, np.ascontiguousarray(v.T)


def _shrinkers(lam: NDArray, n_fit: float, n_avg: float, n_units: int, n_cond: int
               ) -> dict[str, NDArray[np.float64]]:
    """Weights of each kept dimension, per shrinkage rule, for averages of ``n_avg`` trials.

    ``g<G>``: Wiener weights ``G lam / (G lam + 1/n_avg)``. ``bbp``: the spiked-covariance
    correction (Baik-Ben Arous-Peche): the whitened trial-average eigenvalue
    ``l = n_fit lam + 1`` (in units of the noise of an ``n_fit`` average) comes from a
    population spike ``t`` with ``l = (1 + t)(1 + gamma / t)``, ``gamma = n_units /
    (n_cond - 1)``, and its eigenvector has squared cosine ``c2 = (1 - gamma / t^2) /
    (1 + gamma / t)`` with the true one; the weight is ``t c2 / (t c2 + n_fit / n_avg)``
    (0 below the detection edge ``(1 + sqrt(gamma))^2``).
    """
    out = {f"g{g:g}": g * lam / (g * lam + 1.0 / n_avg) for g in _GAINS}
    gamma = n_units / max(n_cond - 1, 1)
    ell = n_fit * lam + 1.0
    b = ell - 1.0 - gamma
    disc = b * b - 4 * gamma
    ok = (ell > (1 + np.sqrt(gamma)) ** 2) & (disc > 0)
    t = np.where(ok, (b + np.sqrt(np.maximum(disc, 0))) / 2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = np.where(ok, (1 - gamma / t**2) / (1 + gamma / t), 0.0)
    c2 = np.clip(c2, 0.0, 1.0)
    out["bbp"] = t * c2 / (t * c2 + n_fit / n_avg)
    return out


def _wiener_family(b: NDArray, a: NDArray, weights: NDArray, k: int) -> NDArray[np.float64]:
    """Return the rank-``k`` filter matrix ``W`` (applied as ``W @ deviation``)."""
    return (b[:, :k] * weights[:k]) @ a[:k]


class _Scores:
    """Per-unit sums over held-out pairs, per candidate: ``sum r p`` and ``sum p p``."""

    def __init__(self, n_units: int, n_cond: int) -> None:
        self.cross: dict[str, NDArray] = {}
        self.power: dict[str, NDArray] = {}
        self.by_cond: dict[str, tuple[NDArray, NDArray]] = {}
        self.n_units, self.n_cond = n_units, n_cond

    def add(self, name: str, cross: NDArray, power: NDArray, cond_cross: NDArray,
            cond_power: NDArray, cond: NDArray[np.intp]) -> None:
        if name not in self.cross:
            self.cross[name] = np.zeros(self.n_units)
            self.power[name] = np.zeros(self.n_units)
            self.by_cond[name] = (np.zeros(self.n_cond), np.zeros(self.n_cond))
        self.cross[name] += cross
        self.power[name] += power
        cc, cp = self.by_cond[name]
        cc[cond] += cond_cross
        cp[cond] += cond_power


def _score_matrix(scores: _Scores, name: str, filt: NDArray, inputs: NDArray, targets: NDArray,
                  mask: NDArray, weights: NDArray, owners: NDArray[np.intp],
                  cond: NDArray[np.intp]) -> None:
    """Score the linear filter ``filt`` (prediction ``filt @ inputs``)."""
    _add_prediction(scores, name, np.where(mask, filt @ inputs, 0.0), targets, weights, owners,
                    cond)


def _add_prediction(scores: _Scores, name: str, pred: NDArray, targets: NDArray,
                    weights: NDArray, owners: NDArray[np.intp], cond: NDArray[np.intp]) -> None:
    rp, pp = targets * pred, pred * pred
    w = weights[:, None]
    per_cond_rp = np.bincount(owners, weights=(w * rp).sum(axis=0), minlength=cond.size)
    per_cond_pp = np.bincount(owners, weights=(w * pp).sum(axis=0), minlength=cond.size)
    scores.add(name, rp.sum(axis=1), pp.sum(axis=1), per_cond_rp, per_cond_pp, cond)


def _score_family(scores: _Scores, shrinkers: dict[str, NDArray], b: NDArray, a: NDArray,
                  inputs: NDArray, targets: NDArray, mask: NDArray, weights: NDArray,
                  owners: NDArray[np.intp], cond: NDArray[np.intp], k_max: int) -> None:
    """Score every rank 1..k_max and shrinker of the Wiener family in one pass per shrinker.

    ``pred_k = sum_{j<k} f_j b_j z_j^T`` with ``z = A inputs``, so the per-unit sums of
    ``r * pred_k`` and ``pred_k ** 2`` are cumulative sums over ``j``. Pairs with a
    missing unit (NaN data) break that shortcut, so then every rank is scored explicitly.
    """
    z = a[:k_max] @ inputs  # (K, M)
    if not mask.all():  # missing trials: accumulate each rank's prediction, masked
        for rule, f in shrinkers.items():
            pred = np.zeros_like(targets)
            for k in range(1, k_max + 1):
                pred += np.outer(b[:, k - 1] * f[k - 1], z[k - 1])
                _add_prediction(scores, _family_name(k, rule), np.where(mask, pred, 0.0),
                                targets, weights, owners, cond)
        return
    zc = z.T
    rz = targets @ zc  # (N, K): sum_m r_um z_jm
    gram = z @ zc
    upper = np.triu(gram, 1)
    onehot = np.zeros((cond.size, owners.size))
    onehot[owners, np.arange(owners.size)] = 1.0
    wr = weights[:, None] * targets
    for rule, f in shrinkers.items():
        p = b[:, :k_max] * f[:k_max]  # (N, K)
        cross = np.cumsum(p * rz, axis=1)
        power = np.cumsum(2 * p * (p @ upper) + p * p * np.diag(gram), axis=1)
        cond_cross = onehot @ np.cumsum((wr.T @ p) * zc, axis=1)  # (C, K)
        wp = (p * weights[:, None]).T @ p  # sum_u w_u p_ui p_uj
        inc = 2 * zc * (zc @ np.triu(wp, 1)) + zc * zc * np.diag(wp)
        cond_power = onehot @ np.cumsum(inc, axis=1)
        for k in range(1, k_max + 1):
            scores.add(_family_name(k, rule), cross[:, k - 1], power[:, k - 1],
                       cond_cross[:, k - 1], cond_power[:, k - 1], cond)


def _family_name(k: int, rule: str) -> str:
    return f"wiener-k{k}-{rule}"


def _parse_family(name: str) -> tuple[int, str]:
    k, rule = name[len("wiener-k"):].split("-", 1)
    return int(k), rule


# ----------------------------------------------------------------------------- public

def fit_auto(data: NDArray[np.floating], *, n_folds: int = 5, k_max: int = 50,
             z_threshold: float = 1.0, presets: tuple[str, ...] = DEFAULT_PRESETS,
             unit_weights: NDArray[np.float64] | None = None,
             fold_data: Callable[[NDArray[np.intp]], NDArray[np.float64]] | None = None
             ) -> AutoFit:
    """Choose and fit a denoiser by cross-validation over conditions (the ``auto`` preset).

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        Training responses (NaN marks a missing trial); at least 2 trials.
    n_folds : int, default=5
        Folds over conditions.
    k_max : int, default=50
        Largest rank of the Wiener family.
    z_threshold : float, default=1.0
        The mean is returned unless the best candidate's cross-validated gain over the
        mean exceeds this many standard errors (over held-out conditions).
    presets : tuple of str, default=("standard", "conservative", "aggressive", "wiener")
        Official presets among the candidates (any of :data:`AUTO_PRESETS`).
    unit_weights : ndarray of shape (n_units,) or None, default=None
        Weight of each unit's squared error in the score. None: the inverse variance of
        its trial averages, so every unit counts alike. The low-rank mode passes ones:
        its "units" are orthonormal subspace coordinates, whose unweighted squared error
        is the units' own (an inverse-variance weight per coordinate would let the
        residual directions, selected for their noise, swamp the score).
    fold_data : callable or None, default=None
        ``fold_data(train)`` returns the data (the shape of ``data``) as each fold should
        see it, given the fold's training conditions. The low-rank mode projects onto a
        subspace found on those conditions alone: one found on all of them holds the
        held-out conditions' noise, and the scores would favour keeping it.

    Returns
    -------
    AutoFit
    """
    checked, layout = check_data(data, who="PSNDenoiser(preset='auto')", min_conditions=2)
    check_constant_units(checked, layout, who="PSNDenoiser(preset='auto')")
    x = np.asarray(checked, dtype=np.float64)
    n_units, n_cond, n_trials = x.shape
    if n_cond < _MIN_CONDITIONS:
        raise ShapeError(
            f"PSNDenoiser(preset='auto') cross-validates over conditions and needs at least "
            f"{_MIN_CONDITIONS}; got {n_cond}. Use an official preset (e.g. preset='wiener').")
    valid = ~np.isnan(x).any(axis=0)
    n_avg = float(valid.sum(axis=1).mean())
    avg = np.nanmean(x, axis=2)
    means = avg.mean(axis=1)
    # unit weights: 1 / variance of the trial averages (well estimated at any SNR)
    var_avg = avg.var(axis=1, ddof=1)
    weights = (1.0 / np.maximum(var_avg, 1e-12 * max(float(var_avg.max()), 1e-300))
               if unit_weights is None else np.asarray(unit_weights, dtype=np.float64))
    counts = (~np.isnan(x)).sum(axis=2)
    scatter = np.nansum((x - avg[:, :, None]) ** 2, axis=2)
    noise_var = scatter.sum(axis=1) / np.maximum((counts - 1).clip(0).sum(axis=1), 1)
    signal_var = var_avg - noise_var / n_avg
    signal_total = float((weights * signal_var).sum())

    folds = _folds(n_cond, max(2, min(n_folds, n_cond // 3)))
    scores = _Scores(n_units, n_cond)
    k_cap = max(1, min(k_max, n_units, n_cond - max(len(f) for f in folds) - 1))
    for held in folds:
        train = np.setdiff1d(np.arange(n_cond), held)
        xs = x if fold_data is None else np.asarray(fold_data(train), dtype=np.float64)
        xf = xs[:, train]
        f_means = np.nanmean(xf, axis=2).mean(axis=1)
        inputs, targets, mask, owners = _holdout_pairs(xs, held, f_means)
        if not mask.any():
            continue
        n_in = max(n_avg - 1.0, 1.0)
        gsn = perform_gsn(xf, {"returns": list(_EIGEN_KEYS if set(presets) - {"wiener"}
                                               else _EIGEN_KEYS[:2])})
        c_sb = np.asarray(gsn["cSb"], dtype=np.float64)
        c_nb = np.asarray(gsn["cNb"], dtype=np.float64)
        scores.add(MEAN, np.zeros(n_units), np.zeros(n_units), np.zeros(held.size),
                   np.zeros(held.size), held)
        lam, b, a = _whitened_eig(c_sb, c_nb)
        for preset in presets:
            if preset == "wiener":  # PSN's Wiener filter, for averages of n_in trials
                filt = _wiener_family(b, a, lam / (lam + 1.0 / n_in), lam.size)
            else:  # the fold's eigenbases are cached in its GSN result
                filt = np.asarray(psn(xf, preset, gsn_result=gsn,
                                      skip_split_half=True)["denoiser"]).T
            _score_matrix(scores, preset, filt, inputs, targets, mask, weights, owners, held)
        shrinkers = _shrinkers(lam[:k_cap], n_avg, n_in, n_units, train.size)
        _score_family(scores, shrinkers, b, a, inputs, targets, mask, weights, owners, held,
                      k_cap)

    # choose: each candidate with its own beta (shrinkage toward the mean)
    cv_scores: dict[str, float] = {}
    betas: dict[str, float] = {}
    gains: dict[str, float] = {}
    scale = signal_total if signal_total > 0 else float("nan")
    for name in scores.cross:
        cross = float((weights * scores.cross[name]).sum())
        power = float((weights * scores.power[name]).sum())
        beta = float(np.clip(cross / power, 0.0, 1.0)) if power > 0 else 0.0
        gain = 2 * beta * cross - beta**2 * power  # weighted error of the mean minus this
        betas[name], gains[name] = beta, gain
    n_obs = _n_pairs_per_unit(x)
    for name, gain in gains.items():
        cv_scores[name] = 1.0 - gain / n_obs / scale if scale == scale else 1.0
    best = max(gains, key=lambda k: (gains[k], k == MEAN))
    cc, cp = scores.by_cond[best]
    beta = betas[best]
    per_cond = 2 * beta * cc - beta**2 * cp
    se = float(np.sqrt(n_cond) * per_cond.std(ddof=1)) if n_cond > 1 else float("inf")
    returns_mean = (best == MEAN or not np.isfinite(scale) or gains[best] <= z_threshold * se)

    gsn_full = perform_gsn(x, {"returns": ["cSb", "cNb"]})  # the official presets refit it
    if returns_mean:
        chosen, beta = MEAN, 0.0
        denoiser = np.zeros((n_units, n_units))
        best_threshold: int | float = 0
    elif best.startswith("wiener-k"):
        k, rule = _parse_family(best)
        lam, b, a = _whitened_eig(np.asarray(gsn_full["cSb"], dtype=np.float64),
                                  np.asarray(gsn_full["cNb"], dtype=np.float64))
        f = _shrinkers(lam, n_avg, n_avg, n_units, n_cond)[rule]
        denoiser = beta * _wiener_family(b, a, f, k).T
        chosen, best_threshold = best, k
    else:
        res = psn(x, best, gsn_result=gsn_full, skip_split_half=True)
        denoiser = beta * np.asarray(res["denoiser"], dtype=np.float64)
        chosen, best_threshold = best, res["best_threshold"]
    return AutoFit(
        denoiser=denoiser, unit_means=means, chosen=chosen, cv_scores=cv_scores,
        shrinkage=1.0 - beta, returns_mean=returns_mean, best_threshold=best_threshold,
        gsn_result=gsn_full,
        details={"betas": betas, "gain_se": se, "n_folds": len(folds), "n_trials": n_avg,
                 "best_candidate": best},
    )


def _n_pairs_per_unit(x: NDArray[np.float64]) -> float:
    ok = ~np.isnan(x)
    count = ok.sum(axis=2)
    return float(np.where(count > 1, count, 0).sum(axis=1).mean())
