"""Run-wise FIR diagnostic (glmsingle.md section 5.0; ``RUNWISEFIR.npy``): no effect on estimates.

All conditions are collapsed into one onset vector and each run is fitted separately with a
finite impulse response model of ``floor(firdelay / tr) + 1`` lags (OLS, polynomial drift and
extra regressors as nuisance). Per run: the FIR R² (with polynomials, not extra regressors,
removed from data and fit, as in the official code) and time courses (percent signal change of
that run's mean when ``wantpercentbold``). Summary: per run, the median time course of the
units whose run-averaged FIR R² exceeds its ``firpct`` percentile, and their mean over runs.

``quirks="official"`` reproduces the official Python package, which fits each run alone and
therefore uses run 0's polynomial degree and run 0's extra regressors for every run (when run
0's extra regressors have another length than run ``r``, run ``r``'s own are used: the
official package crashes there); ``"fixed"`` uses each run's own.

With event tables (onsets in seconds, :mod:`._timing`) the FIR model puts each trial at the
volume nearest its onset (a diagnostic: the estimates use the exact onsets).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._nuisance import RunNuisance

__all__ = ["runwise_fir"]


def _fir_design(onsets: NDArray[np.int64], n_time: int, n_lags: int) -> NDArray[np.float64]:
    x = np.zeros((n_time, n_lags))
    for lag in range(n_lags):
        idx = onsets + lag
        np.add.at(x[:, lag], idx[idx < n_time], 1.0)
    return x


def runwise_fir(runs: list[NDArray[np.float32]], onsets: list[NDArray[np.int64]], tr: float,
                maxpolydeg: list[int], extras: list[NDArray[np.float64] | None], *,
                firdelay: float = 30.0, firpct: float = 99.0, wantpercentbold: bool = True,
                quirks: str = "official", block: int = 4096) -> dict[str, NDArray[np.float64]]:
    """Fit the diagnostic run-wise FIR model.

    Parameters
    ----------
    runs : list of ndarray of shape (n_units, T_r)
    onsets : list of ndarray of int
        Trial onsets (TR indices) of each run, all conditions together.
    tr : float
    maxpolydeg : list of int
        Polynomial degree per run.
    extras : list of (ndarray of shape (T_r, k)) or None
        Extra regressors per run (validated; None for none).
    firdelay, firpct, wantpercentbold, quirks
        As in GLMsingle (``firdelay`` seconds of FIR, ``firpct`` percentile for the summary).
    block : int
        Units per block (bounds memory at ~``8 * block * T_r`` bytes).

    Returns
    -------
    dict
        ``firR2`` (runs x units), ``firtcs`` (runs x units x lags), ``firavg``
        (runs x lags) and ``firgrandavg`` (lags,), as in the official ``RUNWISEFIR.npy``
        (unit axes flattened).
    """
    n_lags = int(np.floor(firdelay / tr)) + 1
    n_units = runs[0].shape[0]
    r2 = np.full((len(runs), n_units), np.nan)
    tcs = np.zeros((len(runs), n_units, n_lags))
    for r, y in enumerate(runs):
        n_time = y.shape[1]
        src = 0 if quirks == "official" else r
        ex = extras[src]
        if ex is not None and ex.shape[0] != n_time:
            ex = extras[r]
        poly_only = RunNuisance.build(n_time, maxpolydeg[src], None).poly
        nz = RunNuisance.build(n_time, maxpolydeg[src], ex)
        q = np.concatenate([nz.poly, nz.extra], axis=1)
        x = _fir_design(onsets[r], n_time, n_lags)
        xc = x - q @ (q.T @ x)
        good = np.abs(xc).sum(axis=0) > 0  # an all-zero regressor gets weight 0 (official)
        gram = xc[:, good].T @ xc[:, good]
        for start in range(0, n_units, block):
            sl = slice(start, min(start + block, n_units))
            yb = np.asarray(y[sl], np.float64).T  # T x units
            beta = np.zeros((n_lags, yb.shape[1]))
            beta[good] = np.linalg.solve(gram, xc[:, good].T @ yb)  # xc ⟂ q: no need to project y
            fit = x @ beta
            fit -= poly_only @ (poly_only.T @ fit)
            yp = yb - poly_only @ (poly_only.T @ yb)
            ssq = (yp * yp).sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2[r, sl] = np.where(ssq == 0, np.nan,
                                     100.0 * (1.0 - ((fit - yp) ** 2).sum(axis=0) / ssq))
                if wantpercentbold:
                    beta = beta * (100.0 / np.abs(yb.mean(axis=0)))
            tcs[r, sl] = beta.T
    mean_r2 = r2.mean(axis=0)
    finite = np.isfinite(mean_r2)
    thresh = np.percentile(mean_r2[finite], firpct) if finite.any() else np.inf
    top = np.flatnonzero(np.where(finite, mean_r2, -np.inf) > thresh)
    firavg = (np.median(tcs[:, top, :], axis=1) if top.size
              else np.full((len(runs), n_lags), np.nan))
    return {"firR2": r2, "firtcs": tcs, "firavg": firavg, "firgrandavg": firavg.mean(axis=0)}
