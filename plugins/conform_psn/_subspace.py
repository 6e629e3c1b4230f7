"""The subspace of low-rank GSN/PSN, and the per-unit statistics that stay exact.

Low-rank PSN (``psn(data, covariance="lowrank")``, :mod:`._lowrank`) works in an
orthonormal subspace ``Q`` (n_units x q) that holds the leading directions of the
centred trial means (where the signal lives) and of the within-condition residuals
(where the shared noise lives). Both are found by a randomized range finder (Halko,
Martinsson & Tropp 2011, algorithm 4.4: Gaussian test matrix, ``n_iter`` power
iterations with re-orthonormalisation, then an SVD of the small projected matrix).

Unlike :func:`sklearn.utils.extmath.randomized_svd`, the range finder here takes the
matrix as two products (``A @ X`` and ``A.T @ Y``), so the residual matrix is never
formed: ``A @ X`` is the raw trials (units x conditions*trials, in the data's dtype, one
block of units at a time) times a test matrix centred within each condition. Memory is
O(units x rank) beyond the data and one units x conditions array; time is a few passes of
O(units x conditions x trials x rank).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from conform_core.data import mean_over_trials

from ._linalg import deterministic_randperm
from ._validation import TrialLayout

__all__ = ["SIGNAL_RANK", "NOISE_RANK", "N_ITER", "UnitStats", "unit_stats", "split_rank",
           "subspace", "project_trials"]

SIGNAL_RANK = 75
"""Default number of directions taken from the centred trial means (capped at C - 1)."""
NOISE_RANK = 25
"""Default number of directions taken from the within-condition residuals."""
N_ITER = 2
"""Power iterations of the range finder (each is two passes over the data)."""
_OVERSAMPLE = 10
_BLOCK_WORDS = 1 << 22  # values per block of units: 32 MB in float64


def _blocks(n_units: int, row_words: int) -> Iterator[slice]:
    step = max(1, _BLOCK_WORDS // max(row_words, 1))
    for start in range(0, n_units, step):
        yield slice(start, min(start + step, n_units))


@dataclass
class UnitStats:
    """Per-unit quantities computed exactly in one pass over the data.

    Attributes
    ----------
    trial_avg : ndarray of shape (n_units, n_conditions)
        Trial means in float64 (per-unit ``nanmean``, as full-rank PSN).
    unit_means : ndarray of shape (n_units,)
        ``trial_avg.mean(axis=1)``.
    noise_var : ndarray of shape (n_units,)
        GSN's ``diag(cN)``: mean over conditions (with 2 or more complete trials) of the
        within-condition variance (ddof=1); shrinkage keeps the diagonal.
    data_var : ndarray of shape (n_units,)
        GSN's ``diag(cD)``: variance over conditions (ddof=1) of the trial means (with
        missing trials, of means over ``min(counts)`` trials chosen as GSN chooses them).
    data_mean : ndarray of shape (n_units,)
        GSN's ``mnS``: the mean of those trial means.
    n_signal_trials : int
        GSN's divisor for ``cS = cD - cN / n`` (T, or ``min(counts)`` with missing trials).
    """

    trial_avg: NDArray[np.float64]
    unit_means: NDArray[np.float64]
    noise_var: NDArray[np.float64]
    data_var: NDArray[np.float64]
    data_mean: NDArray[np.float64]
    n_signal_trials: int

    @property
    def signal_var(self) -> NDArray[np.float64]:
        """GSN's raw ``diag(cS) = diag(cD) - diag(cN) / n`` (may be negative)."""
        return self.data_var - self.noise_var / self.n_signal_trials

    @property
    def ncsnr(self) -> NDArray[np.float64]:
        """GSN's ncsnr: ``sqrt(max(cS_uu, 0)) / sqrt(cN_uu)`` (0 where the noise is 0)."""
        sd_n = np.sqrt(np.maximum(self.noise_var, 0))
        sd_s = np.sqrt(np.maximum(self.signal_var, 0))
        return np.divide(sd_s, sd_n, out=np.zeros_like(sd_s), where=sd_n != 0)


def unit_stats(data: NDArray[np.floating], layout: TrialLayout) -> UnitStats:
    """Compute :class:`UnitStats` block by block (float64 copies of one block at a time)."""
    n_units, n_cond, n_trials = data.shape
    valid, counts = layout.valid, layout.counts
    multi = counts >= 2
    weights = np.where(multi, 1.0 / np.maximum(counts - 1, 1), 0.0) / int(multi.sum())
    picks = []  # GSN's truncation: min(counts) seeded-random complete trials per condition
    n_min = int(counts.min())
    if layout.has_nans:
        for count in np.unique(counts):
            conds = np.flatnonzero(counts == count)
            trials = np.nonzero(valid[conds])[1].reshape(conds.size, count)
            picks.append((conds, trials[:, deterministic_randperm(int(count))[:n_min]]))
    trial_avg = np.empty((n_units, n_cond))
    noise_var, data_var, data_mean = (np.empty(n_units) for _ in range(3))
    for blk in _blocks(n_units, n_cond * n_trials):
        x = np.asarray(data[blk], dtype=np.float64)
        if layout.has_nans:
            trial_avg[blk] = mean_over_trials(x)
            x0 = np.where(valid, x, 0.0)
            cond_mean = x0.sum(axis=2) / counts
            resid = np.where(valid, x0 - cond_mean[:, :, None], 0.0)
            means = np.empty_like(cond_mean)
            for conds, chosen in picks:
                means[:, conds] = x[:, conds[:, None], chosen].mean(axis=2)
        else:
            means = trial_avg[blk] = x.mean(axis=2)
            resid = x - means[:, :, None]
        noise_var[blk] = np.einsum("uct,uct->uc", resid, resid) @ weights
        data_var[blk] = means.var(axis=1, ddof=1)
        data_mean[blk] = means.mean(axis=1)
    return UnitStats(trial_avg, trial_avg.mean(axis=1), noise_var, data_var, data_mean,
                     n_min if layout.has_nans else n_trials)


def split_rank(rank: int | None, layout: TrialLayout, n_units: int) -> tuple[int, int]:
    """Directions from the trial means and from the residuals, for a total ``rank``.

    ``rank=None``: ``SIGNAL_RANK`` + ``NOISE_RANK``. A given rank is split 3:1 between
    them. The signal part is capped at ``C - 1`` (the rank of the centred means) and the
    noise part at the residuals' rank (``sum(counts - 1)``); what one cannot use goes to
    the other, and the total never exceeds ``n_units``.
    """
    cap_s = int(layout.valid.shape[0]) - 1
    cap_n = int(np.maximum(layout.counts - 1, 0).sum())
    total = SIGNAL_RANK + NOISE_RANK if rank is None else int(rank)
    total = min(total, n_units, cap_s + cap_n)
    n_signal = min(total - total // 4, cap_s) if rank is not None else min(SIGNAL_RANK, cap_s)
    n_noise = min(total - n_signal, cap_n)
    n_signal = min(total - n_noise, cap_s)
    return n_signal, n_noise


class _Residuals:
    """Within-condition residuals ``R`` (units x conditions*trials) as two products.

    ``R = X0 P``: ``X0`` the trials with missing ones zeroed, ``P`` (symmetric) centres
    each condition's test vectors on its complete trials, zeroes missing trials and weights
    condition ``c`` by ``1/sqrt(counts_c - 1)`` (so ``R R^T`` is ``C`` times GSN's cN).
    """

    def __init__(self, data: NDArray[np.floating], layout: TrialLayout) -> None:
        self.data, self.layout = data, layout
        counts = layout.counts
        self.scale = np.where(counts >= 2, 1.0 / np.sqrt(np.maximum(counts - 1, 1)), 0.0)
        self.width = data.shape[1] * data.shape[2]

    def _p(self, x: NDArray) -> NDArray:
        n_cond, n_trials = self.layout.valid.shape
        x = x.reshape(n_cond, n_trials, -1)
        if self.layout.has_nans:
            mask = self.layout.valid[:, :, None]
            x = x * mask
            x = (x - x.sum(axis=1, keepdims=True) / self.layout.counts[:, None, None]) * mask
        else:
            x = x - x.mean(axis=1, keepdims=True)
        return (x * self.scale[:, None, None]).reshape(self.width, -1)

    def _rows(self, blk: slice) -> NDArray:
        x = self.data[blk].reshape(-1, self.width)
        if self.layout.has_nans:
            x = np.where(self.layout.valid.ravel(), x, 0).astype(self.data.dtype, copy=False)
        return x

    def matmat(self, x: NDArray) -> NDArray[np.float64]:
        px = self._p(x).astype(self.data.dtype)
        out = np.empty((self.data.shape[0], x.shape[1]))
        for blk in _blocks(self.data.shape[0], self.width):
            out[blk] = self._rows(blk) @ px
        return out

    def rmatmat(self, y: NDArray) -> NDArray[np.float64]:
        acc = np.zeros((self.width, y.shape[1]))
        yd = y.astype(self.data.dtype)
        for blk in _blocks(self.data.shape[0], self.width):
            acc += self._rows(blk).T @ yd[blk]
        return self._p(acc)


def _orth(x: NDArray) -> NDArray[np.float64]:
    return np.linalg.qr(x)[0]


def _leading(matmat: Callable[[NDArray], NDArray], rmatmat: Callable[[NDArray], NDArray],
             shape: tuple[int, int], rank: int, rng: np.random.Generator, n_iter: int
             ) -> NDArray[np.float64]:
    """Leading ``rank`` left singular vectors of the operator (randomized range finder)."""
    k = min(rank + _OVERSAMPLE, *shape)
    q = _orth(matmat(rng.standard_normal((shape[1], k))))
    for _ in range(n_iter):
        q = _orth(matmat(_orth(rmatmat(q))))
    u = np.linalg.svd(rmatmat(q).T, full_matrices=False)[0]  # svd of Q^T A (k x n_cols)
    return q @ u[:, :rank]


def subspace(data: NDArray[np.floating], layout: TrialLayout, stats: UnitStats,
             n_signal: int, n_noise: int, random_state: int = 0,
             n_iter: int = N_ITER) -> NDArray[np.float64]:
    """Orthonormal basis of the leading directions of the centred means and the residuals.

    Returns the identity when ``n_signal + n_noise`` reaches the number of units (then
    low-rank GSN is GSN on the original units).
    """
    n_units = data.shape[0]
    if n_signal + n_noise >= n_units:
        return np.eye(n_units)
    rng = np.random.default_rng(random_state)
    avg, mu = stats.trial_avg, stats.unit_means
    parts = []
    if n_signal > 0:
        parts.append(_leading(
            lambda x: avg @ x - np.outer(mu, x.sum(axis=0)),
            lambda y: avg.T @ y - (mu @ y)[None, :],
            avg.shape, n_signal, rng, n_iter))
    if n_noise > 0:
        resid = _Residuals(data, layout)
        parts.append(_leading(resid.matmat, resid.rmatmat, (n_units, resid.width), n_noise,
                              rng, n_iter))
    return _orth(np.hstack(parts))


def project_trials(data: NDArray[np.floating], basis: NDArray[np.floating]
                   ) -> NDArray[np.float64]:
    """Project every trial onto ``basis``: ``(q, C, T)`` with ``[:, c, t] = basis.T @ x_ct``.

    A trial that is NaN in any unit (a missing trial) is NaN in every projected row, so
    the projected data has the same complete trials as ``data``.
    """
    n_units, n_cond, n_trials = data.shape
    basis = np.asarray(basis)
    width = n_cond * n_trials
    missing = np.zeros(width, dtype=bool)
    out = np.zeros((basis.shape[1], width))
    for blk in _blocks(n_units, width):
        x = data[blk].reshape(-1, width)
        nan = np.isnan(x)
        if nan.any():
            missing |= nan.any(axis=0)
            x = np.where(nan, 0, x).astype(data.dtype, copy=False)
        out += basis[blk].T.astype(data.dtype) @ x
    out[:, missing] = np.nan
    return out.reshape(-1, n_cond, n_trials)
