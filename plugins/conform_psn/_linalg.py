"""Small linear-algebra helpers shared by GSN and PSN.

Everything here works on float64 N x N matrices. The conventions (sort order, sign
rule, the nearest-PSD recipe, the seeded permutation) are the ones the official
GSN/PSN packages use, because downstream choices (shrinkage level, retained
dimensions) depend on them; see ``shared/docs/psn_gsn.md`` sections 1.2, 1.6, 3.4.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "deterministic_randperm",
    "is_positive_definite",
    "nearest_psd",
    "eigh_descending",
    "flat_corr",
    "helmert_contrasts",
    "trial_mean",
]

_PERM_CACHE: dict[int, NDArray[np.intp]] = {}


def deterministic_randperm(n: int) -> NDArray[np.intp]:
    """Return the seed-42 permutation of ``range(n)`` used by GSN.

    ``argsort`` of ``RandomState(42).random_sample(n)`` (MATLAB's ``randperm`` recipe);
    it depends only on ``n``, so it is cached.
    """
    perm = _PERM_CACHE.get(n)
    if perm is None:
        perm = np.argsort(np.random.RandomState(42).random_sample(n))
        perm.flags.writeable = False
        _PERM_CACHE[n] = perm
    return perm


def is_positive_definite(matrix: NDArray[np.float64]) -> bool:
    """Return whether a Cholesky factorisation of ``matrix`` succeeds."""
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def nearest_psd(matrix: NDArray[np.float64], ridge: float = 1e-10) -> NDArray[np.float64]:
    """Project a symmetric matrix onto the PSD cone (GSN's recipe).

    Symmetrise; return unchanged if a Cholesky succeeds; otherwise clip the
    eigenvalues at zero, rebuild, symmetrise, and add ``ridge * I`` if the rebuilt
    matrix still fails a Cholesky. A 1 x 1 input becomes ``max(0, x)``.
    """
    sym = (matrix + matrix.T) / 2
    if sym.shape[0] == 1:
        return np.maximum(sym, 0)
    if is_positive_definite(sym):
        return sym
    values, vectors = np.linalg.eigh(sym)
    keep = values > 0
    scaled = vectors[:, keep] * np.sqrt(values[keep])
    rebuilt = scaled @ scaled.T  # symmetric by construction (syrk)
    if not is_positive_definite(rebuilt):
        rebuilt[np.diag_indices_from(rebuilt)] += ridge
    return rebuilt


def eigh_descending(matrix: NDArray[np.float64],
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Eigendecompose a symmetric matrix, sorted by descending value, signs fixed.

    Uses ``numpy.linalg.eigh`` (the LAPACK driver PSN uses); columns are sorted with
    ``argsort(values)[::-1]`` and each column is flipped so that its largest-magnitude
    entry is positive.
    """
    values, vectors = np.linalg.eigh(matrix)
    order = np.argsort(values)[::-1]
    values = values[order]
    vectors = vectors[:, order]
    pivot = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[pivot, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1
    vectors *= signs
    return values, vectors


def flat_corr(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Pearson correlation between two arrays, flattened (``corrcoef`` of ``ravel``)."""
    x = a.ravel() - a.mean()
    y = b.ravel() - b.mean()
    denom = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denom) if denom > 0 else float("nan")


def helmert_contrasts(n: int) -> NDArray[np.float64]:
    """Return an n x (n-1) matrix of orthonormal contrasts (columns orthogonal to 1).

    For trials ``x_1..x_n`` (columns of ``X``), ``(X H)(X H)^T`` equals the scatter
    matrix of the trials about their mean, so within-condition covariances need
    n - 1 columns per condition instead of n.
    """
    h = np.zeros((n, n - 1))
    for k in range(1, n):
        h[:k, k - 1] = 1.0
        h[k, k - 1] = -k
        h[:, k - 1] /= np.sqrt(k * (k + 1))
    return h


def trial_mean(data: NDArray[np.floating], dtype: type | None = None) -> NDArray[np.floating]:
    """``data.mean(axis=-1, dtype=dtype)``, bit-for-bit, faster for few trials.

    numpy reduces a short last axis one row at a time (about 20x slower than a
    vectorised add for 2-3 trials). Below 8 trials numpy's pairwise summation is a
    plain left-to-right sum, so adding the trial slices in order and dividing by the
    count gives the identical result; from 8 trials on this defers to ``mean``.
    """
    n = data.shape[-1]
    if n >= 8 or n == 0:
        return data.mean(axis=-1, dtype=dtype)
    acc = np.array(data[..., 0], dtype=dtype if dtype is not None else data.dtype)
    for k in range(1, n):
        acc += data[..., k]
    acc /= n
    return acc
