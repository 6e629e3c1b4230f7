"""Small linear-algebra helpers shared by GSN and PSN.

Everything here works on float64 N x N matrices. The conventions (sort order, sign
rule, the nearest-PSD recipe, the seeded permutation) are the ones the official
GSN/PSN packages use, because downstream choices (shrinkage level, retained
dimensions) depend on them; see ``shared/docs/psn_gsn.md`` sections 1.2, 1.6, 3.4.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
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


def _potrf_succeeds(matrix: NDArray) -> bool:
    """Return whether LAPACK ``potrf`` factorises the symmetric ``matrix`` (on a copy).

    The blocked LAPACK Cholesky: for float32 about 8x faster than ``numpy.linalg.cholesky``
    at thousands of units (0.07 vs 0.59 s at 2,500), but not the factorisation upstream's
    decisions are made with, so only the float32 path at scale uses it.
    """
    (potrf,) = scipy.linalg.lapack.get_lapack_funcs(("potrf",), (matrix,))
    _, info = potrf(matrix.T, lower=False, overwrite_a=False, clean=False)
    return bool(info == 0)


def nearest_psd(matrix: NDArray[np.float64], ridge: float = 1e-10, *, overwrite: bool = False,
                want_eig: bool = False, eigh_dtype: Any = np.float64) -> Any:
    """Project a symmetric matrix onto the PSD cone (GSN's recipe).

    Symmetrise; return unchanged if a Cholesky succeeds; otherwise clip the
    eigenvalues at zero, rebuild, symmetrise, and add ``ridge * I`` if the rebuilt
    matrix still fails a Cholesky. A 1 x 1 input becomes ``max(0, x)``.

    ``eigh_dtype=np.float32`` eigendecomposes and rebuilds in float32 (LAPACK ``ssyevd``,
    about 3x faster than ``dsyevd`` at thousands of units, half the workspace; see
    :func:`_nearest_psd_low`), after a float32 LAPACK Cholesky check: the result is PSD to float32
    precision (relative error
    ~1e-6) and the returned eigenvectors are float32. GSN uses it only for float32 data at
    scale (:data:`conform_psn._gsn.FLOAT32_EIGH_UNITS`).

    ``overwrite=True`` lets the eigendecomposition and the rebuild reuse ``matrix``'s
    memory (the caller must not use it afterwards), so the clipped path holds the input,
    the eigenvectors and the clipped factor, not four units x units matrices. With
    ``want_eig=True`` it returns ``(result, eig)``: ``eig = (values, vectors)`` is the
    eigendecomposition the result was rebuilt from (values clipped at 0, plus the ridge
    if added), or None when the input was returned unchanged.
    """
    if matrix.shape[0] == 1:
        out = np.maximum((matrix + matrix.T) / 2, 0)
        return (out, None) if want_eig else out
    if np.array_equal(matrix, matrix.T):  # (M + M^T)/2 is M itself, bit for bit
        sym, owned = matrix, overwrite
    else:
        sym, owned = (matrix + matrix.T) / 2, True
    if np.dtype(eigh_dtype) != np.float64:  # the check too: a float32 Cholesky, ~2x faster
        low = sym.astype(eigh_dtype)
        if _potrf_succeeds(low):
            return (sym, None) if want_eig else sym
        return _nearest_psd_low(sym, low, owned, ridge, want_eig)
    if is_positive_definite(sym):
        return (sym, None) if want_eig else sym
    values, vectors = scipy.linalg.eigh(sym, overwrite_a=owned, check_finite=False,
                                        driver="evd")
    keep = values > 0
    scaled = vectors[:, keep] * np.sqrt(values[keep])
    rebuilt = np.matmul(scaled, scaled.T, out=sym if owned else None)  # symmetric (syrk)
    del scaled
    values = np.where(keep, values, 0.0)
    if not is_positive_definite(rebuilt):
        rebuilt[np.diag_indices_from(rebuilt)] += ridge
        values += ridge
    if want_eig:
        return rebuilt, (values, vectors)
    return rebuilt


def _nearest_psd_low(sym: NDArray[np.float64], low: NDArray, owned: bool, ridge: float,
                     want_eig: bool) -> Any:
    """:func:`nearest_psd`'s clipped path, eigendecomposition and rebuild in ``low.dtype``.

    ``low`` is ``sym`` in the lower precision (overwritten). The float64 result is rebuilt
    from its factors (written into ``sym`` when it is ``owned``). A rebuild that clipped
    any eigenvalue is singular, so it gets the ridge without the Cholesky that would find
    so (n^3/3 saved). The returned eigenvectors stay in ``low.dtype`` (for float32, half
    the memory of float64).
    """
    if not want_eig:
        return _clip_negative_part(sym, low, owned, ridge)
    values, vectors = scipy.linalg.eigh(low, overwrite_a=True, check_finite=False,
                                        driver="evd")
    del low
    values = values.astype(np.float64)
    keep = values > 0
    scaled = vectors[:, keep] * np.sqrt(values[keep]).astype(vectors.dtype)
    if not want_eig:
        del vectors
    rebuilt = sym if owned else np.empty_like(sym)
    rebuilt[...] = scaled @ scaled.T  # symmetric (syrk), then widened to float64
    del scaled
    values = np.where(keep, values, 0.0)
    if not keep.all() or not _potrf_succeeds(rebuilt):
        rebuilt[np.diag_indices_from(rebuilt)] += ridge
        values += ridge
    return (rebuilt, (values, vectors)) if want_eig else rebuilt


def _clip_negative_part(sym: NDArray[np.float64], low: NDArray, owned: bool,
                        ridge: float) -> NDArray[np.float64]:
    """``sym`` minus its negative eigen-part, found in ``low.dtype``: ``S - V_ V_^T L_``.

    The same clip as rebuilding from the positive eigenpairs, with only the negative ones
    computed (LAPACK ``syevr`` on a subset): a nearly PSD matrix, such as GSN's noise
    update (4 negative eigenvalues of 4,000), costs ~40 % of a full eigendecomposition.
    """
    values, vectors = scipy.linalg.eigh(low, overwrite_a=True, check_finite=False,
                                        driver="evr", subset_by_value=(-np.inf, 0.0))
    del low
    out = sym if owned else sym.copy()
    if values.size:
        scaled = vectors * np.sqrt(-values).astype(vectors.dtype)
        out += scaled @ scaled.T
        out[np.diag_indices_from(out)] += ridge  # singular once clipped, as nearest_psd finds
    elif not _potrf_succeeds(out):
        out[np.diag_indices_from(out)] += ridge
    return out


def eigh_descending(matrix: NDArray[np.float64],
                    eig: tuple[NDArray, NDArray] | None = None,
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Eigendecompose a symmetric matrix, sorted by descending value, signs fixed.

    Uses ``numpy.linalg.eigh`` (the LAPACK driver PSN uses); columns are sorted with
    ``argsort(values)[::-1]`` and each column is flipped so that its largest-magnitude
    entry is positive. ``eig``: an ascending eigendecomposition of ``matrix`` already at
    hand (e.g. the one :func:`nearest_psd` rebuilt it from); its vectors are re-ordered
    in place.
    """
    values, vectors = np.linalg.eigh(matrix) if eig is None else eig
    order = np.argsort(values)[::-1]
    reverse = np.arange(order.size)[::-1]
    if eig is not None and np.all(np.diff(values) >= 0):
        order = reverse  # ties (the clipped zeros) in any order: only their span matters
    values = values[order]
    if np.array_equal(order, reverse):
        _reverse_columns(vectors)  # in place: no second units x units matrix
    else:
        vectors = vectors[:, order]
    pivot = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[pivot, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1
    vectors *= signs
    return values, vectors


def _reverse_columns(matrix: NDArray[np.float64], block: int = 256) -> None:
    """Reverse the column order of ``matrix`` in place, ``block`` column pairs at a time."""
    n = matrix.shape[1]
    for start in range(0, n // 2, block):
        stop = min(start + block, n // 2)
        left = matrix[:, start:stop].copy()
        matrix[:, start:stop] = matrix[:, n - stop:n - start][:, ::-1]
        matrix[:, n - stop:n - start] = left[:, ::-1]


Rows = Callable[[int, int], NDArray[np.float64]]
"""Rows ``start:stop`` of a matrix that is never formed whole."""


def flat_corr(a: NDArray[np.float64] | Rows, b: NDArray[np.float64] | Rows,
              block: int = 256) -> float:
    """Pearson correlation between two matrices, flattened (``corrcoef`` of ``ravel``).

    Two passes over blocks of ``block`` rows (means, then centred sums), so no
    temporary of the matrices' size is formed; either argument may be a function
    returning rows ``start:stop`` of a matrix that is not stored.
    """
    rows_a = a if callable(a) else (lambda i, j: a[i:j])
    rows_b = b if callable(b) else (lambda i, j: b[i:j])
    n_rows = (b if callable(a) else a).shape[0]
    spans = [(i, min(i + block, n_rows)) for i in range(0, n_rows, block)]
    size = 0
    sum_a = sum_b = 0.0
    for i, j in spans:
        ra, rb = rows_a(i, j), rows_b(i, j)
        sum_a += float(ra.sum())
        sum_b += float(rb.sum())
        size += ra.size
    mean_a, mean_b = sum_a / size, sum_b / size
    sab = saa = sbb = 0.0
    for i, j in spans:
        x = rows_a(i, j) - mean_a
        y = rows_b(i, j) - mean_b
        sab += float(np.vdot(x, y))
        saa += float(np.vdot(x, x))
        sbb += float(np.vdot(y, y))
    denom = np.sqrt(saa * sbb)
    return float(sab / denom) if denom > 0 else float("nan")


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
