"""Fractional ridge regression (Rokem & Kay 2020) for many units and fractions at once.

GLMsingle calls ``fracridge`` once per fraction on the stacked single-trial design. Its
eigen-decomposition does not depend on the fraction, and the design is block diagonal across
runs, so we decompose each run's Gram matrix once, keep the rotated OLS coefficients, and
obtain every fraction for every unit by a vectorised version of fracridge's interpolation
(glmsingle.md section 4.8):

1. ``G_r = W_r diag(λ_r) W_r'`` per run; the singular values of the design are ``sqrt(λ)``
   over all runs; rotated OLS coefficients ``c = (b W) / λ`` (zero where ``sqrt(λ) < 1e-10``).
2. α grid: 0 and ``10**k`` for ``k = floor(log10(0.01 λ_min)), ... < ceil(log10(1e4 λ_max))``
   in steps of 0.2.
3. Length ratio ``ρ(α) = |diag(λ/(λ+α)) c| / |c|`` on the grid, per unit.
4. For each fraction ``f``: α from linear interpolation of ``log(1+α)`` against ρ
   (``numpy.interp`` semantics), then ``β = W diag(λ/(λ+α)) c``.

References
----------
Rokem, A., & Kay, K. (2020). Fractional ridge regression: a fast, interpretable
reparameterization of ridge regression. GigaScience, 9(12). https://doi.org/10.1093/gigascience/giaa133
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["RidgePath", "alpha_grid", "vector_interp"]

_BIG_BIAS = 10e3
_SMALL_BIAS = 10e-3
_BIAS_STEP = 0.2
_TOL = 1e-10


def alpha_grid(lam_min: float, lam_max: float) -> NDArray[np.float64]:
    """Return fracridge's α grid for squared singular values in ``[lam_min, lam_max]``."""
    val1 = _BIG_BIAS * lam_max
    val2 = _SMALL_BIAS * lam_min
    val2 = _SMALL_BIAS if val2 == 0 else val2
    exps = np.arange(np.floor(np.log10(val2)), np.ceil(np.log10(val1)), _BIAS_STEP)
    return np.concatenate([[0.0], 10.0**exps])


def vector_interp(x: NDArray[np.float64], xp: NDArray[np.float64],
                  fp: NDArray[np.float64]) -> NDArray[np.float64]:
    """``numpy.interp`` applied column by column.

    Parameters
    ----------
    x : ndarray of shape (n_x,)
        Points to evaluate (the same for every column).
    xp : ndarray of shape (n_grid, n_cols)
        Increasing abscissae per column.
    fp : ndarray of shape (n_grid,)
        Ordinates (shared by all columns).

    Returns
    -------
    ndarray of shape (n_x, n_cols)
    """
    n_grid = xp.shape[0]
    out = np.empty((x.shape[0], xp.shape[1]))
    for i, xi in enumerate(x):
        j = np.sum(xp <= xi, axis=0) - 1  # searchsorted(side="right") - 1, per column
        lo = np.clip(j, 0, n_grid - 2)
        cols = np.arange(xp.shape[1])
        x0, x1 = xp[lo, cols], xp[lo + 1, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            val = fp[lo] + (xi - x0) * (fp[lo + 1] - fp[lo]) / (x1 - x0)
        val = np.where(j < 0, fp[0], val)
        val = np.where(j >= n_grid - 1, fp[-1], val)
        out[i] = val
    return out


@dataclass
class RidgePath:
    """Eigen-decomposed block-diagonal ridge problem for a set of units.

    Attributes
    ----------
    lam : list of ndarray of shape (m_r,)
        Eigenvalues of each run's Gram matrix (on its non-zero trials).
    w : list of ndarray of shape (n_r, m_r)
        Matching eigenvectors, zero rows for all-zero trials.
    c : list of ndarray of shape (n_units, m_r)
        Rotated OLS coefficients.
    grid : ndarray of shape (n_grid,)
        α grid.
    """

    lam: list[NDArray[np.float64]]
    w: list[NDArray[np.float64]]
    c: list[NDArray[np.float64]]
    grid: NDArray[np.float64]

    @classmethod
    def decompose(cls, grams: list[NDArray[np.float64]],
                  goods: list[NDArray[np.bool_]]) -> RidgePath:
        """Eigen-decompose each run's Gram matrix (no units yet: ``c`` is empty)."""
        lam, w = [], []
        for g, good in zip(grams, goods):
            sub = g[np.ix_(good, good)]
            ev, vec = np.linalg.eigh(sub)
            ev, vec = ev[::-1], vec[:, ::-1]  # descending, like an SVD
            full = np.zeros((g.shape[0], ev.shape[0]))
            full[good] = vec
            lam.append(ev)
            w.append(full)
        allev = np.concatenate(lam)
        grid = alpha_grid(max(float(allev.min()), 0.0), float(allev.max()))
        return cls(lam=lam, w=w, c=[], grid=grid)

    def with_cross(self, cross: list[NDArray[np.float64]]) -> RidgePath:
        """Return the path for units with these per-run cross products (n_units, n_r)."""
        c = []
        for ev, full, b in zip(self.lam, self.w, cross):
            bad = np.sqrt(np.maximum(ev, 0.0)) < _TOL
            with np.errstate(divide="ignore", invalid="ignore"):
                coef = (b @ full) / ev
            coef[:, bad] = 0.0
            c.append(coef)
        return RidgePath(lam=self.lam, w=self.w, c=c, grid=self.grid)

    @classmethod
    def build(cls, grams: list[NDArray[np.float64]], cross: list[NDArray[np.float64]],
              goods: list[NDArray[np.bool_]]) -> RidgePath:
        """Decompose each run's Gram matrix and rotate its cross products."""
        return cls.decompose(grams, goods).with_cross(cross)

    def alphas(self, fracs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the α of every fraction for every unit: (n_fracs, n_units)."""
        lam = np.concatenate(self.lam)
        c2 = np.concatenate(self.c, axis=1) ** 2  # (n_units, m)
        scale = (lam[None, :] / (lam[None, :] + self.grid[:, None])) ** 2  # (n_grid, m)
        newlen = np.sqrt(scale @ c2.T)  # (n_grid, n_units)
        with np.errstate(divide="ignore", invalid="ignore"):
            newlen = newlen / newlen[0]
        out = np.exp(vector_interp(np.asarray(fracs, np.float64), newlen[::-1],
                                   np.log1p(self.grid)[::-1])) - 1.0
        return np.where(np.isfinite(out), out, 0.0)

    def betas(self, alpha: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        """Return per-run betas (n_units, n_r) for one α per unit."""
        out = []
        for lam, w, c in zip(self.lam, self.w, self.c):
            shrink = lam[None, :] / (lam[None, :] + alpha[:, None])
            out.append((c * shrink) @ w.T)
        return out
