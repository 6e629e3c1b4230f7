"""Low-rank GSN and PSN: ``psn(data, covariance="lowrank", rank=None)``.

Full-rank GSN holds units x units covariances and PSN eigendecomposes them, which stops at
a few thousand units. Here both covariances are modelled as low rank plus diagonal:

    cSb ~= Q cSb_q Q^T + diag(cSb_diag),    cNb ~= Q cNb_q Q^T + diag(cNb_diag),

with ``Q`` (n_units x q, orthonormal) spanning the leading directions of the centred trial
means and of the within-condition residuals (:mod:`._subspace`). The trials are projected
onto ``Q`` and the ordinary GSN and PSN (``_gsn_core``, ``_psn._run``) run on the q projected
"units"; their denoiser ``D_q`` is lifted to the units together with the diagonal of the
model: ``D^T = Q D_q^T Q^T + W (I - Q Q^T)``, where ``W`` holds each unit's Wiener weight
``cSb_diag / (cSb_diag + cNb_diag / T)`` for its part outside the subspace
(:func:`lift_denoiser`; a :class:`~scipy.sparse.linalg.LinearOperator`, low rank plus
diagonal). The denoised data are ``D^T (x - mean) + mean`` as usual.

Why the diagonal: dropping the part outside the subspace (``W = 0``, i.e. replacing it by
the unit's mean) loses any signal private to a unit. On a power-law signal with 20 %
unit-private variance at SNR 2 (2,000 units x 1,000 conditions x 3 trials) that made the
error to the truth 0.60 (NMSE) against 0.064 for full-rank Wiener and 0.084 for the trial
average; with ``W`` it is 0.064. Where the subspace holds all the signal, ``W`` is ~0.

Per-unit quantities stay exact: ``ncsnr`` is GSN's (the shrinkage keeps the diagonal, so
it needs only per-unit variances), and the diagonal remainders are what ``Q`` leaves of
GSN's raw diagonals (clipped at 0). Memory and time are O(units x conditions x trials x q);
no units x units array is formed (unless q reaches n_units, when ``Q`` is the identity and
the result is full-rank PSN's).

Hybrid (per-unit) thresholds and custom basis matrices are refused in this mode
(:func:`._options.resolve_options` says so); ``compare`` and ``recovery_tradeoff`` are
computed on the projected data (their split-half r is a median over subspace directions,
not units).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator

from conform_core.exceptions import ParameterError

from . import _psn
from ._diagnostics import svnv
from ._gsn import _gsn_core
from ._gsn import _resolve_options as _gsn_options
from ._operators import lowrank_operator
from ._subspace import (
    NOISE_RANK,
    SIGNAL_RANK,
    UnitStats,
    _blocks,
    project_trials,
    split_rank,
    subspace,
    unit_stats,
)
from ._validation import TrialLayout

__all__ = ["DEFAULT_RANK", "fit_subspace", "project_trials", "lowrank_gsn", "psn_lowrank",
           "diagonal_weights", "lift_denoiser", "lowrank_diag_operator"]

DEFAULT_RANK = SIGNAL_RANK + NOISE_RANK
"""Default subspace size q (``rank=None``): 75 directions of the trial means (at most
C - 1) and 25 of the residuals; see :func:`._subspace.split_rank`. Chosen on the ground
truth (2,000 units x 1,000 conditions x 3 trials; simulator and power-law signals, SNR 0.3
to 2): q = 100 was best or within 3 % of the best of q in {50, 100, 200, 400} for the
wiener and aggressive presets; larger q was worse (more directions whose projected GSN
signal is noise) and slower."""

_LOWRANK_KEYS = ("basis", "cSb_q", "cNb_q")


def fit_subspace(data: NDArray, layout: TrialLayout, rank: int | None = None,
                 random_state: int = 0) -> NDArray[np.float64]:
    """Orthonormal ``Q`` (n_units, q) of the leading signal and noise directions.

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        Validated responses (NaN marks a missing trial).
    layout : TrialLayout
        Its complete trials.
    rank : int or None, default=None
        q, the number of directions (None: :data:`DEFAULT_RANK`); split 3:1 between the
        centred trial means and the within-condition residuals, capped by their ranks and
        by n_units (:func:`._subspace.split_rank`).
    random_state : int, default=0
        Seed of the randomized range finder.

    Returns
    -------
    ndarray of shape (n_units, q)
        Orthonormal columns (the identity when q reaches n_units).
    """
    stats = unit_stats(data, layout)
    n_signal, n_noise = split_rank(rank, layout, data.shape[0])
    return subspace(data, layout, stats, n_signal, n_noise, random_state)


def _rowdiag(basis: NDArray, matrix: NDArray) -> NDArray[np.float64]:
    """``diag(basis @ matrix @ basis.T)`` without forming it."""
    return np.einsum("ij,ij->i", basis @ matrix, basis)


def _remainder(diagonal: NDArray, basis: NDArray, matrix: NDArray) -> NDArray[np.float64]:
    """Return what ``Q matrix Q^T`` leaves of ``diagonal``, >= 0 (0 when Q spans all)."""
    if basis.shape[1] >= basis.shape[0]:
        return np.zeros(basis.shape[0])
    return np.maximum(diagonal - _rowdiag(basis, matrix), 0)


def _lowrank_gsn(data: NDArray, layout: TrialLayout, rank: int | None,
                 gsn_options: dict[str, Any] | None, random_state: int = 0
                 ) -> tuple[dict[str, Any], NDArray[np.float64], UnitStats]:
    stats = unit_stats(data, layout)
    n_signal, n_noise = split_rank(rank, layout, data.shape[0])
    basis = subspace(data, layout, stats, n_signal, n_noise, random_state)
    projected = project_trials(data, basis)
    opt = dict(gsn_options or {})
    opt.setdefault("wantverbose", False)
    opt.setdefault("wantshrinkage", True)
    result, (c_sb, c_nb) = _gsn_core(projected, layout, _gsn_options(opt))
    dtype = data.dtype
    out = {
        "mnN": np.zeros((1, data.shape[0]), dtype=dtype),
        "mnS": stats.data_mean[None, :].astype(dtype),
        "ncsnr": stats.ncsnr.astype(dtype),
        "shrinklevelN": result["shrinklevelN"], "shrinklevelD": result["shrinklevelD"],
        "numiters": result["numiters"],
        "basis": basis, "cSb_q": c_sb, "cNb_q": c_nb,
        "cSb_diag": _remainder(np.maximum(stats.signal_var, 0), basis, c_sb),
        "cNb_diag": _remainder(stats.noise_var, basis, c_nb),
        "rank": int(basis.shape[1]), "n_signal_directions": n_signal,
        "n_noise_directions": n_noise,
    }
    for key in ("eigvecs_signal", "eigvals_signal", "eigvecs_difference", "eigvals_difference"):
        if key in result:  # in subspace coordinates, as PSN on the projection uses them
            out[f"{key}_q"] = result[key]
    return out, projected, stats


def lowrank_gsn(data: NDArray, layout: TrialLayout, rank: int | None = None,
                gsn_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """GSN with signal and noise covariances low rank plus diagonal.

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        Validated responses (NaN marks a missing trial).
    layout : TrialLayout
        Its complete trials.
    rank : int or None, default=None
        Subspace size q (see :func:`fit_subspace`).
    gsn_options : dict or None
        :func:`perform_gsn` options for the GSN fit on the projected trials.

    Returns
    -------
    dict
        ``mnN`` (1, n_units) zeros, ``mnS`` (1, n_units), ``ncsnr`` (n_units,) exactly as
        full-rank GSN; ``shrinklevelN``, ``shrinklevelD``, ``numiters`` of the GSN fit in
        the subspace; ``basis`` Q (n_units, q); ``cSb_q``, ``cNb_q`` (q, q);
        ``cSb_diag``, ``cNb_diag`` (n_units,) >= 0, the diagonals of GSN's raw signal and
        noise covariances not explained by Q, so ``cSb ~= Q cSb_q Q^T + diag(cSb_diag)``
        (same for cNb); ``rank`` (q) and how many directions came from the means
        (``n_signal_directions``) and the residuals (``n_noise_directions``).
    """
    return _lowrank_gsn(data, layout, rank, gsn_options)[0]


def _cached(cache: Any, n_units: int) -> dict[str, Any]:
    """Return a previous low-rank ``gsn_result`` (dict or ``.npz`` path), checked."""
    if isinstance(cache, (str, os.PathLike)):
        with np.load(os.fspath(cache), allow_pickle=False) as npz:
            cache = {k: np.asarray(npz[k]) for k in npz.files}
    if not all(k in cache for k in _LOWRANK_KEYS) or np.shape(cache["basis"])[0] != n_units:
        raise ParameterError(
            "psn(covariance='lowrank') reuses only a low-rank gsn_result (keys 'basis', "
            f"'cSb_q', 'cNb_q') fitted on these {n_units} units.", param="gsn_result",
            value=cache, owner="psn",
            fix="Pass result['gsn_result'] of a previous psn(..., covariance='lowrank') on the "
                "same units, or leave $gsn_result unset.")
    return cache


def diagonal_weights(gsn: dict[str, Any], n_trials: float) -> NDArray[np.float64]:
    """Per-unit Wiener weights of the part of each unit outside the subspace.

    ``w_u = cSb_diag_u / (cSb_diag_u + cNb_diag_u / n_trials)`` (0 where both are 0): the
    diagonal of the low-rank-plus-diagonal model, applied unit by unit.
    """
    sig, noise = np.asarray(gsn["cSb_diag"]), np.asarray(gsn["cNb_diag"]) / n_trials
    total = sig + noise
    return np.divide(sig, total, out=np.zeros_like(total), where=total > 0)


def lowrank_diag_operator(left: NDArray, right: NDArray, diag: NDArray) -> LinearOperator:
    """Return ``D = left @ right.T + diag(diag)`` as an (n_units, n_units) operator.

    Built on :func:`._operators.lowrank_operator`; ``factors`` holds all three arrays (so
    :func:`._operators.operator_nbytes` counts them) and ``diag`` the diagonal.
    """
    low = lowrank_operator(left, right)
    diag = np.asarray(diag, dtype=np.float64)
    if not np.any(diag):
        return low

    def _scale(x: NDArray) -> NDArray:
        return diag[:, None] * x if np.ndim(x) == 2 else diag * x

    def matmat(x: NDArray) -> NDArray:
        return low @ x + _scale(x)

    def rmatmat(x: NDArray) -> NDArray:
        return low.T @ x + _scale(x)

    op = LinearOperator(low.shape, matvec=matmat, rmatvec=rmatmat, matmat=matmat,
                        rmatmat=rmatmat, dtype=np.float64)
    op.factors = (*low.factors, diag)  # type: ignore[attr-defined]
    op.diag = diag  # type: ignore[attr-defined]
    return op


def lift_denoiser(gsn: dict[str, Any], denoiser_q: NDArray, n_trials: float
                  ) -> LinearOperator:
    """Lift a subspace denoiser ``D_q`` (q, q) to the units: ``D^T = Q D_q^T Q^T + W (I - Q Q^T)``.

    ``W`` is :func:`diagonal_weights`: each unit's part outside the subspace is shrunk by
    its own Wiener weight instead of being dropped. Returned as
    ``D = Q (Q D_q^T - W Q)^T + W`` (:func:`lowrank_diag_operator`).

    Parameters
    ----------
    gsn : dict
        :func:`lowrank_gsn`'s result (``basis``, ``cSb_diag``, ``cNb_diag``).
    denoiser_q : ndarray of shape (q, q)
        The denoiser fitted on the projected trials (applied transposed, as PSN's).
    n_trials : float
        Trials per average (``TrialLayout.n_trials_avg``).
    """
    basis = np.asarray(gsn["basis"], dtype=np.float64)
    weight = diagonal_weights(gsn, n_trials)
    filt = basis @ np.asarray(denoiser_q, dtype=np.float64).T
    return lowrank_diag_operator(basis, filt - weight[:, None] * basis, weight)


def _lift(q: NDArray[np.float64], x: NDArray | None) -> NDArray | None:
    return None if x is None else q @ x


def psn_lowrank(data: NDArray, layout: TrialLayout, preset: str | None,
                opt_used: dict[str, Any], rank: int | None = None) -> dict[str, Any]:
    """Run PSN with low-rank covariances (``psn(..., covariance="lowrank")``).

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions, n_trials)
        Validated responses (:func:`._validation.check_data`, constant units rejected).
    layout : TrialLayout
        Its complete trials.
    preset : str or None
        The preset of the call (recorded only: ``opt_used`` already holds its options).
    opt_used : dict
        Resolved options (:func:`._options.resolve_options`).
    rank : int or None, default=None
        Subspace size q (:data:`DEFAULT_RANK` when None).

    Returns
    -------
    dict
        :func:`psn`'s keys. ``denoiser`` is an (n_units, n_units) ``LinearOperator``
        ``Q D_q Q^T`` (apply as ``denoiser.T @ (x - unit_means) + unit_means``);
        ``denoiseddata``, ``residuals``, ``unit_means``, ``svnv_before``/``svnv_after``
        are per unit; ``fullbasis``, ``signalsubspace``, ``basis_viz`` have n_units rows;
        per-dimension keys (``signalvar``, ``noisevar``, ``objective``,
        ``basis_eigenvalues``) and ``recovery_tradeoff`` are those of the subspace fit;
        ``gsn_result`` is :func:`lowrank_gsn`'s dict (reusable as ``gsn_result``);
        ``rank`` is q.
    """
    n_units = data.shape[0]
    if opt_used.get("gsn_result") is not None:
        gsn = _cached(opt_used["gsn_result"], n_units)
        basis = np.asarray(gsn["basis"], dtype=np.float64)
        stats, projected = unit_stats(data, layout), project_trials(data, basis)
    else:
        gsn, projected, stats = _lowrank_gsn(data, layout, rank, opt_used.get("gsn_args"))
        basis = gsn["basis"]
    sub_cache = {"cSb": gsn["cSb_q"], "cNb": gsn["cNb_q"]}
    sub_cache.update({k[:-2]: v for k, v in gsn.items()
                      if k.startswith("eigv") and k.endswith("_q")})
    sub = _psn._run(projected, layout, dict(opt_used, gsn_result=sub_cache))
    return _lift_results(sub, data, basis, stats, gsn, opt_used, layout)


def _lift_results(sub: dict[str, Any], data: NDArray, basis: NDArray[np.float64],
                  stats: UnitStats, gsn: dict[str, Any], opt: dict[str, Any],
                  layout: TrialLayout) -> dict[str, Any]:
    """Turn the subspace fit's results into results over the original units."""
    d_q = np.asarray(sub["denoiser"], dtype=np.float64)
    filt_q = d_q.T
    means = stats.unit_means
    t = layout.n_trials_avg
    weight = diagonal_weights(gsn, t)
    denoised = stats.trial_avg  # overwritten in place: D^T (avg - mean) + mean
    coords = basis.T @ denoised - np.outer(basis.T @ means, np.ones(denoised.shape[1]))
    applied = filt_q @ coords
    for blk in _blocks(data.shape[0], denoised.shape[1]):
        inside = basis[blk] @ coords
        denoised[blk] = (basis[blk] @ applied + weight[blk, None] * (
            denoised[blk] - means[blk, None] - inside) + means[blk, None])
    out = dict(sub)
    out["denoiser"] = lift_denoiser(gsn, d_q, t)
    out["denoiseddata"] = denoised.astype(data.dtype, copy=False)
    residuals = np.empty_like(data)
    for blk in _blocks(data.shape[0], data.shape[1] * data.shape[2]):
        residuals[blk] = data[blk] - out["denoiseddata"][blk, :, None]
    out.update(residuals=residuals, unit_means=means, gsn_result=gsn, input_data=data,
               opt_used=opt, rank=int(basis.shape[1]))
    for key in ("fullbasis", "basis_viz"):
        out[key] = _lift(basis, sub.get(key))
    kept = _lift(basis, sub.get("signalsubspace"))
    out["signalsubspace"] = kept
    out["dimreduce"] = None if kept is None else sub["signalsubspace"].T @ coords
    c_sb, c_nb = gsn["cSb_q"], gsn["cNb_q"]
    if "wiener_matrix" in sub:
        out["wiener_matrix"] = lowrank_diag_operator(basis @ filt_q - weight[:, None] * basis,
                                                     basis, weight)
        before = np.column_stack([_rowdiag(basis, c_sb), _rowdiag(basis, c_nb) / t])
        after = np.column_stack([_rowdiag(basis, filt_q @ c_sb @ d_q),
                                 _rowdiag(basis, filt_q @ c_nb @ d_q) / t])
    else:
        lifted = out["fullbasis"]
        before, after = svnv(lifted * lifted, sub["signalvar"], sub["noisevar"], t,
                             sub["best_threshold"])
    rest = np.column_stack([gsn["cSb_diag"], gsn["cNb_diag"] / t])
    out["svnv_before"] = before + rest
    out["svnv_after"] = after + weight[:, None] ** 2 * rest
    diag = out.get("diagnostics")
    if isinstance(diag, dict) and "eigvecs_by_basis" in diag:
        diag["eigvecs_by_basis"] = {b: basis @ v for b, v in diag["eigvecs_by_basis"].items()}
    return out
