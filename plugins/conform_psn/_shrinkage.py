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

so each extra level costs O(N) instead of O(N^3).

Positive definiteness is decided as the official code decides it: a level counts when
``numpy.linalg.cholesky`` of its shrunken matrix succeeds. The eigenvalues settle every
level whose smallest (scaled) eigenvalue is comfortably above the point where rounding
could make a Cholesky fail; the few levels near singular (typically only 1.0, when some
units are near-copies of others or there are fewer points than units) are scored by a
Cholesky of the matrix the official numpy path factorises, formed by the caller with
the official operations in the input's dtype (``reference``), so that the same LAPACK
routine runs on the bit-identical matrix. When two levels are within 1e-9 (relative) of
the best value, they are re-scored the same way so that near-ties resolve as they do
there.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import solve_triangular

from conform_core.exceptions import ConformWarning

__all__ = ["default_levels", "shrink", "choose_shrinkage", "Reference"]

Reference = Callable[[], tuple[NDArray[np.floating], NDArray[np.floating]]]
"""Returns the official training covariance and held-out points (rows), as upstream forms them."""

_LOG_2PI = float(np.log(2 * np.pi))
_EPS = float(np.finfo(np.float64).eps)
# A level is settled by the eigenvalues only when its smallest eigenvalue (of the
# unit-diagonal matrix a*R + (1-a)*I) exceeds this fraction of its largest. Cholesky
# is guaranteed to succeed when 20 n^1.5 u kappa < 1 (Higham, Accuracy and Stability of
# Numerical Algorithms, Thm 10.7; u = eps/2); we require 10x that margin. The floor 1e-7
# keeps the eigen-path NLL error (about kappa * eps, so <= 2e-9 relative) at the size of
# the near-tie window below. The term 4 * n_terms * n * eps bounds how far our training
# matrix (another summation order) can be from the official one.
_SETTLED_MIN = 1e-7
_TIE_RTOL = 1e-9
# With n_units - rank >= 32 exact zero eigenvalues (fewer training points than units), a
# Cholesky of the unshrunk matrix succeeds only if rounding leaves a 32 x 32 Schur
# complement of noise positive definite. Measured on float64 Gram matrices (N = 60,
# 2000 draws each): success 51% at nullity 1, 18% at 2, 4.6% at 3, 1.2% at 4, 0.25% at
# 5, none at 6 or 8 (N = 200 alike); each extra zero eigenvalue divides the rate by 4 or
# more, so at 32 it is below 1e-20. Such a level is NaN without forming the official
# matrix (an einsum costing about two eigendecompositions).
_NULLITY_SKIP = 32
# The thin SVD of n x r columns beats an n x n eigendecomposition (measured, 1 thread)
# up to about r = 0.7 n.
_THIN_MAX = 0.7


def default_levels(want_shrinkage: bool = True) -> NDArray[np.float64]:
    """Return GSN's shrinkage grid: ``linspace(0, 1, 51)``, or ``[1.0]`` without shrinkage."""
    return np.linspace(0, 1, 51) if want_shrinkage else np.array([1.0])


def shrink(cov: NDArray[np.float64], level: float, out: NDArray[np.float64] | None = None
           ) -> NDArray[np.float64]:
    """Return ``level * cov`` with the diagonal of ``cov`` kept (GSN's shrinkage).

    For a 1 x 1 matrix the official code scales the variance itself; that quirk is kept.
    ``out=cov`` shrinks in place (no second units x units matrix).
    """
    diag = np.diag(cov).copy()
    out = np.multiply(cov, level, out=out)
    if cov.shape[0] > 1:
        out[np.diag_indices_from(out)] = diag
    return out


def _nll_cholesky(cov: NDArray[np.floating], rows: NDArray[np.floating], level: float) -> float:
    """Mean held-out NLL at one level, computed the way the official numpy loop computes it.

    ``cov`` and ``rows`` (held-out points as rows) in the official dtype: the shrunken
    matrix is ``cov * float64(level)`` with the diagonal restored, which NumPy promotes
    to float64 for float32 ``cov``, exactly as upstream's ``c * shrinklevels[p]``. NaN
    when ``numpy.linalg.cholesky`` raises (the official positive-definiteness test).
    """
    n = cov.shape[0]
    shrunk = cov * np.float64(level)
    if n > 1:
        np.fill_diagonal(shrunk, np.diag(cov))
    try:
        chol = np.linalg.cholesky(shrunk)
    except np.linalg.LinAlgError:
        return float("nan")
    y = solve_triangular(chol, rows.T, lower=True)
    log_pdf = -0.5 * (y**2).sum(axis=0) - np.log(np.diag(chol)).sum() - 0.5 * n * _LOG_2PI
    return float(-np.mean(log_pdf))


def _nll_eigen(cov: NDArray[np.float64] | None, points: NDArray[np.float64], n_points: int,
               levels: NDArray[np.float64], columns: NDArray[np.floating] | None = None,
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Mean held-out NLL at every level from one eigendecomposition (None if not applicable).

    Also returns, per level, the smallest over the largest eigenvalue of the
    unit-diagonal shrunken matrix ``a*R + (1-a)*I`` (how close to singular it is).

    With ``columns`` (``cov = columns @ columns.T``) of fewer columns than units, the
    correlation matrix has rank r < n: its nonzero eigenpairs come from a thin SVD of
    the scaled columns (O(n r^2) instead of O(n^3)), the other n - r eigenvalues are 0,
    and the held-out energy in that null space is ``|y|^2 - |U^T y|^2``.
    """
    if columns is not None:
        diag = np.einsum("ij,ij->i", columns, columns, dtype=np.float64)
    else:
        diag = np.diag(cov).copy()
    n = diag.shape[0]
    if n < 2 or not np.all(diag > 0) or not np.all(np.isfinite(diag)):
        return None
    scale = 1.0 / np.sqrt(diag)
    scaled_points = points * scale[:, None]
    if columns is not None and columns.shape[1] <= _THIN_MAX * n:
        u, sv, _ = np.linalg.svd(columns * scale[:, None].astype(columns.dtype),
                                 full_matrices=False)
        u = np.asarray(u, dtype=np.float64)
        lam = np.concatenate([np.zeros(n - sv.size), np.asarray(sv, np.float64)[::-1] ** 2])
        y = u.T @ scaled_points
        del u
        energy_range = np.einsum("ij,ij->i", y, y)[::-1]
        total = float(np.einsum("ij,ij->", scaled_points, scaled_points))
        null = max(total - float(energy_range.sum()), 0.0)
        n_null = n - sv.size
        # the n_null zero eigenvalues share the null-space energy (only its sum matters)
        energy = np.concatenate([np.full(n_null, null / max(n_null, 1)), energy_range])
    else:
        if cov is None:
            cov = np.asarray(columns @ columns.T, dtype=np.float64)
        corr = cov * scale[:, None] * scale[None, :]
        corr[np.diag_indices_from(corr)] = 1.0
        lam, vectors = np.linalg.eigh(corr)
        del corr
        y = vectors.T @ scaled_points
        del vectors
        energy = np.einsum("ij,ij->i", y, y)  # per eigen-direction sum of squares
    spectrum = levels[:, None] * lam[None, :] + (1.0 - levels[:, None])  # (S, N)
    rel_min = spectrum.min(axis=1) / np.maximum(spectrum.max(axis=1), 1.0)
    ok = rel_min > 0
    nll = np.full(levels.shape[0], np.nan)
    spec = spectrum[ok]
    quad = (energy[None, :] / spec).sum(axis=1)
    logdet_half = 0.5 * (np.log(diag).sum() + np.log(spec).sum(axis=1))
    nll[ok] = 0.5 * quad / n_points + logdet_half + 0.5 * n * _LOG_2PI
    return nll, rel_min


def _settled_threshold(n_units: int, n_terms: int = 0) -> float:
    """Smallest relative eigenvalue at which the eigenvalues alone settle a level.

    Above it a Cholesky of the official matrix cannot fail and the eigen-path NLL agrees
    with the Cholesky one to about 1e-9 (see ``_SETTLED_MIN``); ``n_terms`` is the number
    of products summed into each covariance entry.
    """
    return max(_SETTLED_MIN, 200 * n_units**1.5 * _EPS / 2, 4 * n_terms * n_units * _EPS)


def choose_shrinkage(cov: NDArray[np.float64] | None, points: NDArray[np.float64],
                     n_points: int, levels: NDArray[np.float64], *,
                     reference: Reference | None = None, max_rank: int | None = None,
                     n_terms: int = 0, columns: NDArray[np.floating] | None = None,
                     ) -> tuple[float, NDArray[np.float64]]:
    """Pick the shrinkage level with the smallest mean held-out NLL.

    Parameters
    ----------
    cov : ndarray of shape (n_units, n_units) or None
        Training covariance (float64); None when ``columns`` is given.
    points : ndarray of shape (n_units, n_columns)
        Held-out points as columns, already centred. Columns may be an orthonormal
        re-expression of the points (e.g. within-condition contrasts): only the
        scatter ``points @ points.T`` matters.
    n_points : int
        Number of held-out points the mean is taken over.
    levels : ndarray of shape (n_levels,)
        The shrinkage grid.
    reference : callable or None
        Returns ``(cov, rows)``: the training covariance and the held-out points (as
        rows) formed with the official operations in the official dtype. Levels the
        eigenvalues cannot settle (and near-ties) are scored by a Cholesky of this
        matrix, so that they pass or fail exactly as upstream. It is called at most
        once, and only when needed. None: use ``cov`` and ``points``.
    max_rank : int or None
        An upper bound on the rank of ``cov`` from its construction (the number of
        training points, less one per mean removed). With ``n_units - max_rank >= 32``
        the unshrunk level is not positive definite in practice (see ``_NULLITY_SKIP``)
        and gets NaN without a Cholesky.
    n_terms : int
        Products summed into each entry of ``cov`` (sets the settling threshold).
    columns : ndarray of shape (n_units, r) or None
        Training columns with ``cov = columns @ columns.T``. With r < n_units the
        eigenvalues come from their thin SVD and ``cov`` is never formed (unless a level
        needs a Cholesky and there is no ``reference``).

    Returns
    -------
    level : float
        The chosen level (the first minimiser; the first level if all are NaN, with a
        warning, as in the official code).
    nll : ndarray of shape (n_levels,)
        Mean NLL per level (NaN where the shrunken matrix is not positive definite,
        i.e. where the official Cholesky fails).
    """
    cache: list[tuple[NDArray[np.floating], NDArray[np.floating]]] = []

    def score(i: int) -> float:
        if not cache:
            full = cov if cov is not None else np.asarray(columns @ columns.T, np.float64)
            cache.append(reference() if reference is not None
                         else (full, _as_rows(points, n_points)))
        return _nll_cholesky(*cache[0], float(levels[i]))

    n = points.shape[0]
    eig = _nll_eigen(cov, points, n_points, levels, columns)
    if eig is None:
        nll = np.array([score(i) for i in range(levels.shape[0])])
    else:
        nll, rel_min = eig
        nullity = n - max_rank if max_rank is not None else 0
        for i in np.flatnonzero(rel_min <= _settled_threshold(n, n_terms)):
            if levels[i] == 1.0 and nullity >= _NULLITY_SKIP:
                nll[i] = np.nan
            else:
                nll[i] = score(int(i))
        if np.any(np.isfinite(nll)):
            best = np.nanmin(nll)
            close = np.flatnonzero(np.abs(nll - best) <= _TIE_RTOL * max(abs(best), 1.0))
            if close.size > 1:  # near-tie: re-score with the official recipe
                for i in close:
                    nll[i] = score(int(i))
    if not np.any(np.isfinite(nll)):
        warnings.warn("All shrunken covariance matrices were singular; using the first "
                      "shrinkage level, as GSN does.", ConformWarning, stacklevel=3)
        return float(levels[0]), nll
    return float(levels[int(np.nanargmin(nll))]), nll


def _as_rows(points: NDArray[np.float64], n_points: int) -> NDArray[np.float64]:
    """Held-out points as rows, rescaled so that the row mean matches ``n_points``.

    Without a reference the points may be contrasts (fewer columns than points); only
    their scatter matters, so scaling by ``sqrt(n_cols / n_points)`` makes the mean over
    rows equal the official mean over ``n_points`` points.
    """
    n_cols = points.shape[1]
    if n_cols == n_points or n_cols == 0:
        return points.T
    return points.T * np.sqrt(n_cols / n_points)
