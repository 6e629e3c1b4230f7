"""Shrinkage toward the diagonal, with the level chosen by held-out likelihood.

GSN shrinks a covariance ``S`` toward its diagonal, ``S_a = a*S + (1-a)*diag(S)``,
and picks ``a`` on a grid (``linspace(0, 1, 51)``) by the mean Gaussian negative
log-likelihood of held-out points (``shared/docs/psn_gsn.md`` section 1.3).

The official code factorises each of the 51 shrunken matrices (51 Cholesky
factorisations plus triangular solves). Here one symmetric eigendecomposition of the
correlation matrix ``R = D^-1/2 S D^-1/2`` serves every level, because
``S_a = D^1/2 (a R + (1-a) I) D^1/2`` has eigenvalues ``a*lambda + 1 - a`` in the
same eigenvectors. Then

- ``log det S_a = sum log d + sum log(a*lambda + 1 - a)`` and
- ``x^T S_a^-1 x = sum_j y_j^2 / (a*lambda_j + 1 - a)`` with ``y = U^T D^-1/2 x``,

so each extra level costs O(N) instead of O(N^3). A level whose matrix is not
positive definite gets NaN, as a failed Cholesky does in the official code. When two
levels are within 1e-9 (relative) of the best value, they are re-scored with the
official Cholesky recipe so that near-ties resolve as they do there.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import solve_triangular

from conform_core.exceptions import ConformWarning

__all__ = ["default_levels", "shrink", "choose_shrinkage"]

_LOG_2PI = float(np.log(2 * np.pi))
# Levels whose matrix has a smallest eigenvalue below this (relative to the largest)
# are treated as singular (a Cholesky would fail or be meaningless).
_PD_TOL = 1e-13
_TIE_RTOL = 1e-9


def default_levels(want_shrinkage: bool = True) -> NDArray[np.float64]:
    """Return GSN's shrinkage grid: ``linspace(0, 1, 51)``, or ``[1.0]`` without shrinkage."""
    return np.linspace(0, 1, 51) if want_shrinkage else np.array([1.0])


def shrink(cov: NDArray[np.float64], level: float) -> NDArray[np.float64]:
    """Return ``level * cov`` with the diagonal of ``cov`` kept (GSN's shrinkage).

    For a 1 x 1 matrix the official code scales the variance itself; that quirk is kept.
    """
    out = cov * level
    if cov.shape[0] > 1:
        out[np.diag_indices_from(out)] = np.diag(cov)
    return out


def _nll_cholesky(cov: NDArray[np.float64], points: NDArray[np.float64], n_points: int,
                  level: float) -> float:
    """Mean held-out NLL at one level, exactly as the official loop computes it."""
    try:
        chol = np.linalg.cholesky(shrink(cov, level))
    except np.linalg.LinAlgError:
        return float("nan")
    y = solve_triangular(chol, points, lower=True, check_finite=False)
    n = cov.shape[0]
    logdet_half = float(np.log(np.diag(chol)).sum())
    return 0.5 * float(np.einsum("ij,ij->", y, y)) / n_points + logdet_half + 0.5 * n * _LOG_2PI


def _nll_eigen(cov: NDArray[np.float64], points: NDArray[np.float64], n_points: int,
               levels: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Mean held-out NLL at every level from one eigendecomposition (None if not applicable)."""
    diag = np.diag(cov).copy()
    if cov.shape[0] < 2 or not np.all(diag > 0) or not np.all(np.isfinite(diag)):
        return None
    scale = 1.0 / np.sqrt(diag)
    corr = cov * scale[:, None] * scale[None, :]
    corr[np.diag_indices_from(corr)] = 1.0
    lam, vectors = np.linalg.eigh(corr)
    y = vectors.T @ (points * scale[:, None])
    energy = np.einsum("ij,ij->i", y, y)  # per eigen-direction sum of squares
    spectrum = levels[:, None] * lam[None, :] + (1.0 - levels[:, None])  # (S, N)
    n = cov.shape[0]
    ok = spectrum.min(axis=1) > _PD_TOL * np.maximum(spectrum.max(axis=1), 1.0)
    nll = np.full(levels.shape[0], np.nan)
    spec = spectrum[ok]
    quad = (energy[None, :] / spec).sum(axis=1)
    logdet_half = 0.5 * (np.log(diag).sum() + np.log(spec).sum(axis=1))
    nll[ok] = 0.5 * quad / n_points + logdet_half + 0.5 * n * _LOG_2PI
    return nll


def choose_shrinkage(cov: NDArray[np.float64], points: NDArray[np.float64], n_points: int,
                     levels: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """Pick the shrinkage level with the smallest mean held-out NLL.

    Parameters
    ----------
    cov : ndarray of shape (n_units, n_units)
        Training covariance (float64).
    points : ndarray of shape (n_units, n_columns)
        Held-out points as columns, already centred. Columns may be an orthonormal
        re-expression of the points (e.g. within-condition contrasts): only the
        scatter ``points @ points.T`` matters.
    n_points : int
        Number of held-out points the mean is taken over.
    levels : ndarray of shape (n_levels,)
        The shrinkage grid.

    Returns
    -------
    level : float
        The chosen level (the first minimiser; the first level if all are NaN, with a
        warning, as in the official code).
    nll : ndarray of shape (n_levels,)
        Mean NLL per level (NaN where the shrunken matrix is not positive definite).
    """
    nll = _nll_eigen(cov, points, n_points, levels)
    if nll is None:
        nll = np.array([_nll_cholesky(cov, points, n_points, a) for a in levels])
    elif np.any(np.isfinite(nll)):
        best = np.nanmin(nll)
        close = np.flatnonzero(np.abs(nll - best) <= _TIE_RTOL * max(abs(best), 1.0))
        if close.size > 1:  # near-tie: re-score with the official recipe
            for i in close:
                nll[i] = _nll_cholesky(cov, points, n_points, levels[i])
    if not np.any(np.isfinite(nll)):
        warnings.warn("All shrunken covariance matrices were singular; using the first "
                      "shrinkage level, as GSN does.", ConformWarning, stacklevel=3)
        return float(levels[0]), nll
    return float(levels[int(np.nanargmin(nll))]), nll
