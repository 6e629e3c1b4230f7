"""Diagnostics of a PSN fit: split-half reliability and the recovery trade-off.

The official ``recovery_tradeoff`` computes split-half curves for up to 257 values
of K on every call, which dominates its runtime. Here the record holds the analytic
curves of the chosen basis, the chosen operating point and the trial-average point;
the split-half r is computed for those two points only (skipped with
``skip_split_half``). None of this affects the denoiser.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._linalg import trial_mean
from ._thresholds import recovery_curve, signal_curve

__all__ = ["row_corr", "split_half_r", "recovery_tradeoff", "svnv", "svnv_from_basis"]


def row_corr(x: NDArray, y: NDArray) -> NDArray[np.float64]:
    """Per-row Pearson r, using the columns where both rows are finite (NaN if undefined)."""
    if np.isfinite(x).all() and np.isfinite(y).all():  # the same arithmetic, no masking
        with np.errstate(invalid="ignore", divide="ignore"):
            count = np.intp(x.shape[1])  # an intp divisor, as below (float32 -> float64)
            xc = x - x.sum(1, keepdims=True) / count
            yc = y - y.sum(1, keepdims=True) / count
            den = np.sqrt((xc**2).sum(1) * (yc**2).sum(1))
            r = (xc * yc).sum(1) / den
        if x.shape[1] < 2:
            r[:] = np.nan
        r[~(den > 0)] = np.nan
        return r
    mask = np.isfinite(x) & np.isfinite(y)
    count = mask.sum(axis=1)
    xm = np.where(mask, x, 0.0)
    ym = np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = np.where(mask, xm - xm.sum(1, keepdims=True) / count[:, None], 0.0)
        yc = np.where(mask, ym - ym.sum(1, keepdims=True) / count[:, None], 0.0)
        den = np.sqrt((xc**2).sum(1) * (yc**2).sum(1))
        r = (xc * yc).sum(1) / den
    r[(count < 2) | ~(den > 0)] = np.nan
    return r


def split_half_r(data: NDArray, filt: Any, unit_means: NDArray) -> float:
    """Median over units of the symmetrised split-half r of filter ``filt``.

    Trials 0, 2, 4, ... and 1, 3, 5, ... are averaged (ignoring NaN); each half's
    average is correlated, per unit, with the other half's denoised average
    ``filt @ (avg - mean) + mean`` (``filt=None``: the identity, i.e. no denoising).
    """
    halves = []
    for start in (0, 1):
        part = data[:, :, start::2]
        half = trial_mean(part)  # equals nanmean when there is no NaN
        if np.isnan(half).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN
                half = np.nanmean(part, axis=2)
        halves.append(half)
    um = unit_means[:, None]
    # NaN columns stay NaN, as upstream
    den = halves if filt is None else [filt @ (h - um) + um for h in halves]
    both = 0.5 * (row_corr(halves[0], den[1]) + row_corr(den[0], halves[1]))
    return float(np.nanmedian(both)) if np.any(np.isfinite(both)) else float("nan")


def recovery_tradeoff(*, c_sb: NDArray, s: NDArray | None, n: NDArray | None, t: float,
                      k: Any, svnv_after: NDArray, basis_name: str | None,
                      data: NDArray | None, filt: Any, unit_means: NDArray
                      ) -> dict[str, Any]:
    """Build the ``recovery_tradeoff`` record of a PSN result.

    Parameters
    ----------
    c_sb : ndarray of shape (n_units, n_units)
        GSN signal covariance.
    s, n : ndarray of shape (n_dims,) or None
        Per-dimension signal/noise variances in the global order (None for Wiener).
    t : float
        Trial-count divisor.
    k : int, ndarray or float
        The chosen threshold (global, hybrid or Wiener).
    svnv_after : ndarray of shape (n_units, 2)
        Retained signal and noise variance per unit.
    basis_name : str or None
        Name of the basis, recorded with the chosen point.
    data : ndarray or None
        The trials, for split-half r (None skips it).
    filt : ndarray of shape (n_units, n_units) or LinearOperator
        The applied filter (``denoiser.T``; for a global threshold its low-rank factor
        form, :func:`conform_psn._operators.lowrank_operator`).
    unit_means : ndarray of shape (n_units,)
        Unit means.
    """
    total = float(np.trace(c_sb))
    out: dict[str, Any] = {"analytic": None, "trial_average": None, "chosen": None}
    if s is not None:
        sig = signal_curve(s)
        rec = recovery_curve(s, n, t)
        scale = sig[-1] if sig[-1] > 0 else 1.0
        out["analytic"] = {"sv_frac": sig / scale, "recovery": rec / scale}
    shr = None
    shr_ta = None
    if data is not None:
        shr = split_half_r(data, filt, unit_means)
        shr_ta = split_half_r(data, None, unit_means)
    out["trial_average"] = {"sv_frac": 1.0, "split_half_r": shr_ta}
    k_arr = np.atleast_1d(np.asarray(k))
    if k_arr.size == 1 and np.issubdtype(k_arr.dtype, np.integer):
        label = f"K={int(k_arr[0])}"
        recovery = float(recovery_curve(s, n, t)[int(k_arr[0])]) if s is not None else None
    elif k_arr.size == 1:
        label, recovery = f"K={float(k_arr[0]):.1f}", None
    else:
        label, recovery = f"K\u2248{float(k_arr.mean()):.1f}", None
    out["chosen"] = {
        "sv_frac": float(svnv_after[:, 0].sum() / total) if total > 0 else None,
        "split_half_r": shr, "label": label, "recovery": recovery, "basis": basis_name,
    }
    return out


def svnv(weights: NDArray, s: NDArray, n: NDArray, t: float, k: Any
         ) -> tuple[NDArray, NDArray]:
    """Per-unit ``[signal, noise/t]`` summed over all dims (before) and the kept dims (after).

    ``weights`` is ``basis**2`` (n_units, n_dims); ``k`` is an int or one K per unit.
    """
    return svnv_from_basis(weights, s, n, t, k, squared=True)


def svnv_from_basis(basis: NDArray, s: NDArray, n: NDArray, t: float, k: Any, *,
                    squared: bool = False, block: int = 1024) -> tuple[NDArray, NDArray]:
    """:func:`svnv` from the basis itself: ``basis**2`` is formed ``block`` rows at a time.

    ``squared=True``: ``basis`` already holds the weights.
    """
    n_units = basis.shape[0]
    before, after = np.empty((n_units, 2)), np.empty((n_units, 2))
    k_arr = np.broadcast_to(np.asarray(k, dtype=int), (n_units,))
    for i in range(0, n_units, block):
        weights = basis[i:i + block] if squared else basis[i:i + block] ** 2
        before[i:i + block] = np.column_stack([weights @ s, (weights @ n) / t])
        kk = k_arr[i:i + block]
        if np.all(kk == kk[0]):
            k0 = int(kk[0])
            after[i:i + block] = np.column_stack([weights[:, :k0] @ s[:k0],
                                                  (weights[:, :k0] @ n[:k0]) / t])
            continue
        zero = np.zeros((weights.shape[0], 1))
        cs = np.concatenate([zero, np.cumsum(weights * s, axis=1)], 1)
        cn = np.concatenate([zero, np.cumsum(weights * n, axis=1)], 1)
        rows = np.arange(weights.shape[0])
        after[i:i + block] = np.column_stack([cs[rows, kk], cn[rows, kk] / t])
    return before, after
