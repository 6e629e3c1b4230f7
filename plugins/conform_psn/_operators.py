"""Denoisers too large to hold as a dense units x units matrix, as linear operators.

The exact PSN denoiser is a dense ``(n_units, n_units)`` matrix ``D``, applied as
``D.T @ deviation``. At whole-cortex scale (91,282 grayordinates) that matrix alone would
take 62 GiB, so the low-rank and piecewise modes return a
:class:`scipy.sparse.linalg.LinearOperator` of the same shape instead: ``D.T @ X`` and
``D @ X`` work as they do for the matrix (for 1-D and 2-D ``X``), in memory proportional
to what the denoiser really holds (``n_units x rank`` factors, or one block per parcel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator

__all__ = ["lowrank_operator", "block_operator", "as_dense", "operator_nbytes"]


def _as_2d(x: NDArray) -> tuple[NDArray, bool]:
    x = np.asarray(x)
    return (x[:, None], True) if x.ndim == 1 else (x, False)


def lowrank_operator(left: NDArray[np.floating], right: NDArray[np.floating]) -> LinearOperator:
    """Return ``D = left @ right.T`` (both ``(n_units, k)``) as an operator.

    ``D.T @ X`` is ``right @ (left.T @ X)``: O(n_units k) memory and time per column.
    """
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    if left.shape != right.shape or left.ndim != 2:
        raise ValueError(f"left and right must have one shape (n_units, k); got {left.shape} "
                         f"and {right.shape}.")
    n = left.shape[0]

    def matmat(x: NDArray) -> NDArray:
        return left @ (right.T @ x)

    def rmatmat(x: NDArray) -> NDArray:
        return right @ (left.T @ x)

    op = LinearOperator((n, n), matvec=matmat, rmatvec=rmatmat, matmat=matmat,
                        rmatmat=rmatmat, dtype=np.float64)
    op.factors = (left, right)  # type: ignore[attr-defined]
    return op


Part = tuple[NDArray[np.intp], NDArray[np.float64], Any]
"""One parcel: its units (indices into the full unit axis), the weight of its output for
each of them, and its denoiser (a square matrix or an operator on those units)."""


def block_operator(n_units: int, parts: Sequence[Part]) -> LinearOperator:
    """Return the piecewise denoiser ``D`` with ``D.T @ X = sum_p P_p^T W_p D_p^T P_p X``.

    ``P_p`` selects parcel ``p``'s units and ``W_p`` weights its outputs (weights of one
    unit over the parcels containing it sum to 1, so overlapping neighbourhoods blend).
    """
    parts = [(np.asarray(i, dtype=np.intp), np.asarray(w, dtype=np.float64), d)
             for i, w, d in parts]

    def rmatmat(x: NDArray) -> NDArray:
        x2, flat = _as_2d(x)
        out = np.zeros((n_units, x2.shape[1]))
        for idx, w, d in parts:
            out[idx] += w[:, None] * (d.T @ x2[idx])
        return out[:, 0] if flat else out

    def matmat(x: NDArray) -> NDArray:
        x2, flat = _as_2d(x)
        out = np.zeros((n_units, x2.shape[1]))
        for idx, w, d in parts:
            out[idx] += d @ (w[:, None] * x2[idx])
        return out[:, 0] if flat else out

    op = LinearOperator((n_units, n_units), matvec=matmat, rmatvec=rmatmat, matmat=matmat,
                        rmatmat=rmatmat, dtype=np.float64)
    op.parts = parts  # type: ignore[attr-defined]
    return op


def operator_nbytes(denoiser: Any) -> int:
    """Bytes held by a denoiser: a dense matrix, a low-rank or a block operator."""
    if isinstance(denoiser, np.ndarray):
        return int(denoiser.nbytes)
    if hasattr(denoiser, "factors"):
        return int(sum(f.nbytes for f in denoiser.factors))
    if hasattr(denoiser, "parts"):
        return int(sum(i.nbytes + w.nbytes + operator_nbytes(d) for i, w, d in denoiser.parts))
    return 0


def as_dense(denoiser: Any) -> NDArray[np.float64]:
    """Return the denoiser as a dense matrix (for tests and small unit counts only)."""
    if isinstance(denoiser, np.ndarray):
        return denoiser
    return np.asarray(denoiser @ np.eye(denoiser.shape[1]))
