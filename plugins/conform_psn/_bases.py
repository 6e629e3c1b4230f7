"""Bases of the current PSN API and the projection of the covariances into them.

A basis is an n_units x D matrix with orthonormal columns plus, when it comes from an
eigendecomposition, its eigenvalues (``shared/docs/psn_gsn.md`` section 3.4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

from ._linalg import eigh_descending

__all__ = ["BASIS_NAMES", "construct_basis", "project", "orthonormalize"]

BASIS_NAMES = ("signal", "difference", "noise", "pca", "random")


def orthonormalize(basis: NDArray[np.float64]) -> NDArray[np.float64]:
    """Normalise columns (a zero column stays zero); QR them if not orthonormal to 1e-10."""
    norms = np.sqrt(np.sum(basis**2, axis=0))
    norms[norms == 0] = 1
    basis = basis / norms
    gram = basis.T @ basis
    if not np.allclose(gram, np.eye(gram.shape[0]), atol=1e-10, rtol=0):
        basis, _ = np.linalg.qr(basis)
    return basis


def check_custom_basis(basis: Any, n_units: int) -> NDArray[np.float64]:
    """Validate a user basis against the data.

    n_units rows, 1..n_units columns, finite and numeric (that it is an ndarray is declared
    in ``_options.PSN_CONSTRAINTS``).
    """
    if basis.ndim != 2 or basis.shape[0] != n_units or not 1 <= basis.shape[1] <= n_units:
        raise ParameterError(
            f"psn: a custom 'basis' must have shape (n_units={n_units}, D) with "
            f"1 <= D <= {n_units}; got shape {basis.shape}. Put basis vectors in columns."
        )
    if basis.dtype.kind not in "fiuc" or not np.all(np.isfinite(basis)):
        raise ParameterError("psn: a custom 'basis' must be numeric and finite; got "
                             f"dtype {basis.dtype} or non-finite entries.")
    return np.real(basis).astype(np.float64, copy=False)


def construct_basis(name_or_matrix: Any, c_sb: NDArray, c_nb: NDArray, *, t: float,
                    trial_avg: NDArray, unit_means: NDArray,
                    eigenvalues: Any = None, eig: Any = None, eigenbasis: bool = False
                    ) -> tuple[NDArray, NDArray | None]:
    """Build the basis and its eigenvalues (None for random and custom bases).

    Parameters
    ----------
    name_or_matrix : str or ndarray of shape (n_units, D)
        One of ``BASIS_NAMES`` or a custom basis.
    c_sb, c_nb : ndarray of shape (n_units, n_units)
        GSN's cSb and cNb (float64).
    t : float
        Trial-count divisor (for the difference basis).
    trial_avg, unit_means : ndarray
        Trial average (n_units, n_conditions) and its row means (for 'pca').
    eigenvalues : array-like or None
        Eigenvalues of a custom basis (length D), enabling eigenvalue ordering.
    eig : tuple of ndarray or None
        The ascending eigendecomposition GSN rebuilt cSb from (``_gsn_core``): the
        'signal' basis reuses it (its vectors, re-ordered in place) instead of a second
        eigendecomposition of cSb. Eigenvectors of a clipped rebuild are those of the
        decomposition that built it; the clipped (zero) directions carry no signal and
        are ordered last, in any order (only their span is defined, as upstream).
    eigenbasis : bool
        ``name_or_matrix`` is an eigenbasis cached in a GSN result: used as it is when its
        columns have unit norm to 1e-12 (an eigendecomposition's vectors are orthonormal
        to rounding), without the O(n^3) orthonormality check of a custom basis.
    """
    n_units = c_sb.shape[0]
    if isinstance(name_or_matrix, str):
        if name_or_matrix == "signal":
            return _swap(eigh_descending(c_sb, eig))
        if name_or_matrix == "difference":
            return _swap(eigh_descending(difference_matrix(c_sb, c_nb, t)))
        if name_or_matrix == "noise":
            return _swap(eigh_descending(c_nb))
        if name_or_matrix == "pca":
            centred = trial_avg - unit_means[:, None]
            centred = centred - centred.mean(axis=1, keepdims=True)
            cov = centred @ centred.T / (centred.shape[1] - 1)
            return _swap(eigh_descending(cov))
        if name_or_matrix == "random":
            q, _ = np.linalg.qr(np.random.RandomState(42).randn(n_units, n_units))
            return q, None
        raise ParameterError(f"psn: unknown basis {name_or_matrix!r}.")
    basis = check_custom_basis(name_or_matrix, n_units)
    norms = np.sqrt(np.einsum("ij,ij->j", basis, basis))
    if not (eigenbasis and np.all(np.abs(norms - 1) <= 1e-12)):
        basis = orthonormalize(basis)
    if eigenvalues is None:
        return basis, None
    values = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    if values.shape[0] != basis.shape[1]:
        raise ParameterError(
            f"psn: 'basis_eigenvalues' has {values.shape[0]} entries but the basis has "
            f"{basis.shape[1]} columns. Pass one eigenvalue per basis column."
        )
    return basis, values


def _swap(pair: tuple[NDArray, NDArray]) -> tuple[NDArray, NDArray]:
    values, vectors = pair
    return vectors, values


def difference_matrix(c_sb: NDArray, c_nb: NDArray, t: float) -> NDArray:
    """Return ``(A + A^T) / 2``, ``A = cSb - cNb / t``, formed with one units x units matrix."""
    diff = c_nb / t
    np.subtract(c_sb, diff, out=diff)
    if not np.array_equal(diff, diff.T):  # exactly symmetric inputs need no averaging
        diff = (diff + diff.T) / 2
    return diff


def project(c_sb: NDArray, c_nb: NDArray, basis: NDArray, clamp: bool = True,
            block: int = 512, signal: NDArray | None = None, dtype: Any = np.float64
            ) -> tuple[NDArray, NDArray]:
    """Per-dimension variances ``max(b^T C b, 0)`` of cSb and cNb along each column.

    Computed ``block`` columns at a time, so the products ``C @ basis`` never exist
    whole (units x block temporaries instead of units x D). ``clamp=False`` keeps
    negative values (the 'compare' ranking). ``signal``: cSb's values when already known
    (the basis is the eigenbasis cSb was rebuilt from: its eigenvalues), which saves one
    units^2 x D product. ``dtype=np.float32`` forms the noise products in float32 (the
    float32 path at scale, where cSb's eigenvectors are float32-accurate anyway).
    """
    n_dims = basis.shape[1]
    s = np.empty(n_dims) if signal is None else np.array(signal, dtype=np.float64)
    n = np.empty(n_dims)
    noise = c_nb if np.dtype(dtype) == np.float64 else c_nb.astype(dtype)
    for i in range(0, n_dims, block):
        part = basis[:, i:i + block]
        if signal is None:
            s[i:i + block] = np.einsum("ij,ij->j", c_sb @ part, part)
        low = part.astype(noise.dtype, copy=False)
        n[i:i + block] = np.einsum("ij,ij->j", noise @ low, low, dtype=np.float64)
    if clamp:
        return np.maximum(s, 0), np.maximum(n, 0)
    return s, n
