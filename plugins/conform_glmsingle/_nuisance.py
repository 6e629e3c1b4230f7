"""Nuisance regressors: polynomial drifts, extra regressors, GLMdenoise PCs.

Every nuisance set is kept as an orthonormal basis, built in the order the regressors enter
the model (polynomials, then extra regressors, then PCs one at a time), so that "the first K
PCs" is always the first K columns of the PC block and projecting out a nuisance set is a
subtraction of rank-one terms (glmsingle.md section 4.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "RunNuisance",
    "default_maxpolydeg",
    "extra_coefficients",
    "extra_projector",
    "noise_pool_pcs",
    "orthonormalize_against",
    "polynomial_basis",
    "round_half_away",
]


def round_half_away(x: float) -> int:
    """Round to the nearest integer, ties away from zero (MATLAB's ``round``)."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def default_maxpolydeg(n_time: int, tr: float) -> int:
    """Return GLMsingle's default polynomial degree: half the run duration in minutes."""
    return round_half_away(n_time * tr / 60.0 / 2.0)


def polynomial_basis(n_time: int, degree: int) -> NDArray[np.float64]:
    """Return the orthonormal polynomial drift basis of one run.

    Parameters
    ----------
    n_time : int
        Number of time points.
    degree : int
        Maximum degree D (degrees 0..D are included).

    Returns
    -------
    ndarray of shape (n_time, degree + 1)
        ``t**d`` on ``t = linspace(-1, 1, n_time)``, Gram-Schmidt orthogonalised in order
        of degree and scaled to unit length.
    """
    t = np.linspace(-1.0, 1.0, n_time)
    basis = np.zeros((n_time, degree + 1))
    for d in range(degree + 1):
        v = t**d
        for _ in range(2):  # twice is enough for orthogonality to machine precision
            v = v - basis[:, :d] @ (basis[:, :d].T @ v)
        norm = np.linalg.norm(v)
        basis[:, d] = v / norm if norm > 0 else 0.0
    return basis


def orthonormalize_against(
    base: NDArray[np.float64], new: NDArray[np.float64], *, sequential: bool
) -> NDArray[np.float64]:
    """Return an orthonormal basis of ``new`` after projecting out ``base``.

    Parameters
    ----------
    base : ndarray of shape (n_time, k)
        Orthonormal columns.
    new : ndarray of shape (n_time, m)
        Regressors to add.
    sequential : bool
        If true, column j of the result spans what column j of ``new`` adds to
        ``base`` and the previous columns (a nested sequence; a column that adds nothing
        becomes zero). If false, the block is treated as a set and directions with
        negligible singular values are dropped (pseudo-inverse semantics).

    Returns
    -------
    ndarray of shape (n_time, m) or (n_time, rank)
    """
    new = np.asarray(new, np.float64)
    if new.size == 0:
        return np.zeros((base.shape[0], 0))
    scale = np.linalg.norm(new, axis=0)
    scale[scale == 0] = 1.0
    x = new / scale
    for _ in range(2):
        x = x - base @ (base.T @ x)
    if not sequential:
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        tol = max(x.shape) * np.finfo(np.float64).eps * max(1.0, s[0] if s.size else 0.0)
        return u[:, s > tol * 1e3]
    out = np.zeros_like(x)
    for j in range(x.shape[1]):
        v = x[:, j]
        for _ in range(2):
            v = v - out[:, :j] @ (out[:, :j].T @ v)
        norm = np.linalg.norm(v)
        out[:, j] = v / norm if norm > 1e-10 else 0.0
    return out


@dataclass
class RunNuisance:
    """Orthonormal nuisance bases of one run.

    Attributes
    ----------
    poly : ndarray of shape (T, D + 1)
        Polynomial drifts.
    extra : ndarray of shape (T, e)
        Extra regressors with the polynomials projected out (rank-filtered).
    pcs : ndarray of shape (T, n_pcs)
        GLMdenoise PCs, each orthogonalised against polynomials, extra regressors and the
        previous PCs (empty before the PCs are known).
    """

    poly: NDArray[np.float64]
    extra: NDArray[np.float64]
    pcs: NDArray[np.float64]

    @classmethod
    def build(cls, n_time: int, degree: int, extra: NDArray[np.floating] | None) -> RunNuisance:
        poly = polynomial_basis(n_time, degree)
        ex = (np.zeros((n_time, 0)) if extra is None or np.size(extra) == 0
              else orthonormalize_against(poly, np.asarray(extra, np.float64).reshape(n_time, -1),
                                          sequential=False))
        return cls(poly=poly, extra=ex, pcs=np.zeros((n_time, 0)))

    def with_pcs(self, pcs: NDArray[np.floating]) -> RunNuisance:
        base = np.concatenate([self.poly, self.extra], axis=1)
        q = orthonormalize_against(base, np.asarray(pcs, np.float64), sequential=True)
        return RunNuisance(poly=self.poly, extra=self.extra, pcs=q)


def noise_pool_pcs(
    pool_data: NDArray[np.floating], poly: NDArray[np.float64], n_pcs: int
) -> NDArray[np.float32]:
    """Return the GLMdenoise PC regressors of one run (glmsingle.md section 5.4).

    Parameters
    ----------
    pool_data : ndarray of shape (n_pool, T)
        Time series of the noise-pool units in this run.
    poly : ndarray of shape (T, D + 1)
        Orthonormal polynomial basis of the run.
    n_pcs : int
        Number of PCs used by the model; ``n_pcs + 1`` columns are returned, as the official
        package does.

    Returns
    -------
    ndarray of shape (T, n_pcs + 1), float32
        Left singular vectors of the polynomial-projected, unit-length pool time series,
        each scaled to standard deviation 1 (ddof 1). Signs are arbitrary.
    """
    y = np.asarray(pool_data, np.float64).T
    y = y - poly @ (poly.T @ y)
    norms = np.linalg.norm(y, axis=0)
    norms[norms == 0] = 1.0
    y = y / norms
    import scipy.linalg
    from threadpoolctl import threadpool_limits

    m = y @ y.T
    n_keep = min(n_pcs + 1, m.shape[0])
    with threadpool_limits(limits=1, user_api="blas"):  # T x T: threads only add overhead
        evals, evecs = scipy.linalg.eigh(m, subset_by_index=[m.shape[0] - n_keep, m.shape[0] - 1])
    order = np.argsort(evals)[::-1]
    u = evecs[:, order]
    # a deterministic sign: largest-magnitude entry positive
    flip = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(u.shape[1])])
    flip[flip == 0] = 1
    u = u * flip
    sd = u.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    return (u / sd).astype(np.float32)


def extra_projector(poly: NDArray[np.float64], extra: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return the map from a residual time series to the extra regressors' coefficients.

    Parameters
    ----------
    poly : ndarray of shape (T, D + 1)
        Polynomial drift basis of the run.
    extra : ndarray of shape (T, k)
        The extra regressors as given (not orthogonalised).

    Returns
    -------
    ndarray of shape (k, T)
        The rows of ``pinv([poly, extra])`` that belong to ``extra``. Applied to the data
        minus the trial part of a fit, they give the extra regressors' coefficients in that
        model: its GLMdenoise PCs enter after the extra regressors, orthogonalised against
        them (:class:`RunNuisance`), so they leave these coefficients unchanged (Frisch-Waugh-
        Lovell; minimum-norm coefficients when extra regressors are collinear).
    """
    ex = np.asarray(extra, np.float64)
    full = np.concatenate([poly, ex], axis=1)
    scale = np.linalg.norm(full, axis=0)
    scale[scale == 0] = 1.0
    pinv = np.linalg.pinv(full / scale) / scale[:, None]
    return pinv[poly.shape[1]: poly.shape[1] + ex.shape[1]]


def extra_coefficients(d: NDArray[np.float64], xhat: NDArray[np.float64],
                       beta: NDArray[np.float64], proj: NDArray[np.float64]) -> NDArray[np.float64]:
    """Extra-regressor coefficients per unit: ``(d - beta xhat') proj'``.

    Parameters
    ----------
    d : ndarray of shape (n_units, T)
        Polynomial-projected data.
    xhat : ndarray of shape (T, n_r)
        Polynomial-projected trial regressors of the model.
    beta : ndarray of shape (n_units, n_r)
        Trial betas of the model (OLS or ridge; the nuisance part is unpenalised).
    proj : ndarray of shape (k, T)
        From :func:`extra_projector`.

    Returns
    -------
    ndarray of shape (n_units, k)
    """
    return d @ proj.T - beta @ (proj @ xhat).T
