"""The single-trial GLM, batched over units and run by run.

All units share the design, and the single-trial design is block diagonal across runs, so
every solve is a small ``n_r x n_r`` problem per run shared by all units (glmsingle.md 4.5).
Nuisance regressors are removed in the Frisch-Waugh-Lovell form: with ``X^`` the
polynomial-projected trial regressors and ``Q`` an orthonormal basis of the other nuisance
regressors (extra regressors, first K PCs), the projected Gram matrix is
``X^'X^ - (Q'X^)'(Q'X^)`` and the projected cross products are ``d X^ - (d Q)(Q'X^)``, with
``d`` the polynomial-projected data. Nothing of size time x units is formed per model.

R² follows GLMsingle: the prediction uses only the trial regressors with polynomials
projected out, the data only polynomials projected out, no mean subtraction:
``rss = |d|² - 2 β·(d X^) + β' (X^'X^) β``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from ._nuisance import RunNuisance

__all__ = [
    "ChunkData",
    "RunBlock",
    "bhat_all_hrfs",
    "ols_inverse",
    "r2_percent",
    "run_blocks",
    "single_threaded",
]

_CONTROLLER = None


def single_threaded():  # type: ignore[no-untyped-def]
    """Context manager limiting BLAS to one thread (for the many tiny per-run factorizations).

    Multithreaded BLAS on 30-100 sized matrices is slower than one thread, and much slower
    when other processes compete for the cores.
    """
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


@dataclass
class ChunkData:
    """Polynomial-projected data of a block of units, per run (float64).

    Attributes
    ----------
    d : list of ndarray of shape (n_units, T_r)
        Projected data.
    ssq : ndarray of shape (n_units, n_runs)
        Sum of squares of the projected data per run.
    de, dpc : list of ndarray
        Projections of ``d`` on the extra-regressor and PC bases of each run.
    """

    d: list[NDArray[np.float64]]
    ssq: NDArray[np.float64]
    de: list[NDArray[np.float64]]
    dpc: list[NDArray[np.float64]]

    @classmethod
    def prepare(cls, runs: list[NDArray[np.floating]], units: NDArray[np.int64] | slice,
                nuisance: list[RunNuisance]) -> ChunkData:
        d, ssq, de, dpc = [], [], [], []
        for y, nz in zip(runs, nuisance):
            yy = np.array(y[units], np.float64)  # a copy: projected in place below
            yy -= (yy @ nz.poly) @ nz.poly.T
            ssq.append(np.einsum("ij,ij->i", yy, yy))
            de.append(yy @ nz.extra)
            dpc.append(yy @ nz.pcs)
            d.append(yy)
        return cls(d=d, ssq=np.stack(ssq, axis=1), de=de, dpc=dpc)

    def take(self, index: NDArray[np.int64]) -> ChunkData:
        """Return the rows ``index`` of this chunk."""
        return ChunkData(d=[x[index] for x in self.d], ssq=self.ssq[index],
                         de=[x[index] for x in self.de], dpc=[x[index] for x in self.dpc])

    @property
    def n_units(self) -> int:
        return int(self.ssq.shape[0])


def bhat_all_hrfs(chunk: ChunkData, run: int, conv_all: NDArray[np.float64],
                  n_hrfs: int) -> NDArray[np.float64]:
    """Return ``d X`` for every trial of ``run`` and every HRF: (n_units, n_hrfs, n_r).

    ``conv_all`` is the run's convolved design for all HRFs, (T_r, n_hrfs * n_r) with HRF-major
    columns: one GEMM per run and block of units. (``d X = d X^`` because ``d`` is already
    orthogonal to the polynomials.)
    """
    out = chunk.d[run] @ conv_all
    return out.reshape(out.shape[0], n_hrfs, -1)


@dataclass
class RunBlock:
    """Design-side quantities of one run for one HRF (shared by all units fitted with it).

    Attributes
    ----------
    xhat : ndarray of shape (T_r, n_r)
        Polynomial-projected trial regressors.
    ghat : ndarray of shape (n_r, n_r)
        ``xhat' xhat``.
    ea : ndarray of shape (e, n_r)
        Extra-regressor basis times ``xhat``.
    apc : ndarray of shape (n_pcs, n_r)
        PC basis times ``xhat``.
    good : ndarray of shape (n_r,), bool
        Trials whose regressor is not identically zero (others get beta 0).
    """

    xhat: NDArray[np.float64]
    ghat: NDArray[np.float64]
    ea: NDArray[np.float64]
    apc: NDArray[np.float64]
    good: NDArray[np.bool_]

    def gram(self, extras: bool, k: int) -> NDArray[np.float64]:
        """Projected Gram matrix with extra regressors (if ``extras``) and the first k PCs."""
        g = self.ghat.copy()
        if extras and self.ea.shape[0]:
            g -= self.ea.T @ self.ea
        if k:
            g -= self.apc[:k].T @ self.apc[:k]
        return g

    def cross(self, bhat: NDArray[np.float64], de: NDArray[np.float64],
              dpc: NDArray[np.float64], extras: bool, k: int) -> NDArray[np.float64]:
        """Projected cross products (n_units, n_r) for the same nuisance set."""
        b = bhat.copy()
        if extras and self.ea.shape[0]:
            b -= de @ self.ea
        if k:
            b -= dpc[:, :k] @ self.apc[:k]
        return b


def run_blocks(conv: list[NDArray[np.float64]], nuisance: list[RunNuisance]) -> list[RunBlock]:
    """Build the RunBlock of every run from its convolved design (T_r, n_r) for one HRF."""
    blocks = []
    for x, nz in zip(conv, nuisance):
        good = np.any(x != 0, axis=0)
        xhat = x - nz.poly @ (nz.poly.T @ x)
        blocks.append(RunBlock(xhat=xhat, ghat=xhat.T @ xhat, ea=nz.extra.T @ xhat,
                               apc=nz.pcs.T @ xhat, good=good))
    return blocks


def ols_inverse(gram: NDArray[np.float64], good: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Inverse of ``gram`` on the non-zero trials, zero rows/columns elsewhere.

    The official code solves the normal equations; all-zero regressors get a zero weight.
    """
    n = gram.shape[0]
    inv = np.zeros((n, n))
    if not good.any():
        return inv
    sub = gram[np.ix_(good, good)]
    try:
        c = scipy.linalg.cho_factor(sub, check_finite=False)
        isub = scipy.linalg.cho_solve(c, np.eye(sub.shape[0]), check_finite=False)
    except np.linalg.LinAlgError:
        isub = np.linalg.pinv(sub, hermitian=True)
    inv[np.ix_(good, good)] = isub
    return inv


def rss_terms(beta: NDArray[np.float64], bhat: NDArray[np.float64],
              ghat: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return ``-2 β·b^ + β'G^β`` per unit (add |d|² for the residual sum of squares)."""
    return np.einsum("ij,ij->i", beta @ ghat - 2.0 * bhat, beta)


def r2_percent(rss: NDArray[np.float64], ssq: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return ``100 (1 - rss / ssq)``, NaN where ``ssq`` is 0 (GLMsingle's R²)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 * (1.0 - rss / ssq)
    return np.where(ssq == 0, np.nan, out)
