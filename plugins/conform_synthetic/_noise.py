"""Structured trial noise: low-rank, spatially correlated along a unit grid, and independent.

Each part has unit variance per unit in expectation, so the mixture
``sqrt(f_lr) * lowrank + sqrt(f_sp) * spatial + sqrt(1 - f_lr - f_sp) * independent``
has unit variance too and the caller scales it by each unit's noise sd. No units x units
matrix is ever formed: the spatial part is white noise smoothed with a separable Gaussian
on a padded grid (cost linear in the number of units), then cropped.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

__all__ = ["grid_positions", "grid_shape", "NoiseModel"]

_CHUNK = 512  # trials smoothed at a time (bounds memory for large studies)


def grid_shape(n_units: int) -> tuple[int, int]:
    """Lay ``n_units`` on a 2-D grid ``(rows, cols)`` with ``rows * cols == n_units``.

    The most square exact factorisation is chosen (a prime count gives a 1-D line), so the
    grid holds every unit and nothing else; units fill it in C order.
    """
    best = 1
    for rows in range(1, int(math.isqrt(n_units)) + 1):
        if n_units % rows == 0:
            best = rows
    return best, n_units // best


def grid_positions(n_units: int) -> NDArray[np.float64]:
    """Return the (row, column) position of each unit on the grid of :func:`grid_shape`.

    Shape (n_units, 2), float64, in grid steps; unit ``u`` is at ``divmod(u, cols)``.
    """
    cols = grid_shape(n_units)[1]
    rows, columns = np.divmod(np.arange(n_units), cols)
    return np.column_stack([rows, columns]).astype(np.float64)


class NoiseModel:
    """Draw noise for one subject.

    Parameters
    ----------
    n_units : int
    noise_sd : ndarray of shape (n_units,)
        Noise sd of each unit.
    rank : int
        Number of shared noise sources of the low-rank part.
    length_scale : float
        Gaussian smoothing sd, in grid steps, of the spatial part (0: white).
    lowrank_fraction, spatial_fraction : float
        Share of the noise variance in each structured part; the rest is independent.
    rng : numpy.random.Generator
        Draws the fixed loadings now and the noise on each call.
    """

    def __init__(self, n_units: int, noise_sd: NDArray[np.float32], rank: int,
                 length_scale: float, lowrank_fraction: float, spatial_fraction: float,
                 rng: np.random.Generator) -> None:
        self.n_units = n_units
        self.noise_sd = np.asarray(noise_sd, dtype=np.float32)
        self.grid = grid_shape(n_units)
        self.length_scale = float(length_scale)
        self.weights = tuple(np.float32(math.sqrt(max(w, 0.0))) for w in (
            lowrank_fraction, spatial_fraction, 1.0 - lowrank_fraction - spatial_fraction))
        self.rng = rng
        if rank > 0:
            loadings = rng.standard_normal((rank, n_units), dtype=np.float32)
            self.loadings = loadings / np.linalg.norm(loadings, axis=0, keepdims=True)
        else:
            self.loadings = np.zeros((0, n_units), np.float32)
        sigma = [self.length_scale if size > 1 else 0.0 for size in self.grid]
        self.sigma = (0.0, *sigma)
        self.pad = tuple(int(math.ceil(4 * s)) for s in sigma)
        self.gain = np.float32(1.0 / math.sqrt(self._kernel_energy()))

    def _kernel_energy(self) -> float:
        """Variance of smoothed unit white noise (sum of squared kernel weights)."""
        if self.length_scale == 0:
            return 1.0
        shape = tuple(2 * p + 1 for p in self.pad)
        delta = np.zeros((1, *shape))
        delta[(0, *self.pad)] = 1.0
        kernel = gaussian_filter(delta, sigma=self.sigma, mode="constant", truncate=4.0)
        return float((kernel**2).sum())

    def spatial(self, n_trials: int) -> NDArray[np.float32]:
        """Spatially smooth noise of unit variance, shape (n_trials, n_units)."""
        if self.length_scale == 0:
            return self.rng.standard_normal((n_trials, self.n_units), dtype=np.float32)
        rows, cols = self.grid
        (pr, pc) = self.pad
        out = np.empty((n_trials, self.n_units), np.float32)
        for start in range(0, n_trials, _CHUNK):
            stop = min(start + _CHUNK, n_trials)
            white = self.rng.standard_normal((stop - start, rows + 2 * pr, cols + 2 * pc),
                                             dtype=np.float32)
            smooth = gaussian_filter(white, sigma=self.sigma, mode="constant", truncate=4.0)
            out[start:stop] = smooth[:, pr:pr + rows, pc:pc + cols].reshape(stop - start, -1)
        out *= self.gain
        return out

    def covariance(self) -> NDArray[np.float64]:
        """Return the single-trial noise covariance (n_units, n_units) that :meth:`draw` samples.

        ``diag(sd) (w_ind² I + w_lr² LᵀL + w_sp² g² KKᵀ) diag(sd)``, with ``L`` the unit-norm
        loadings, ``K`` the Gaussian smoothing of padded white noise cropped to the grid and
        ``g`` its gain: the covariance an oracle (a Wiener filter knowing the truth) uses.
        """
        w_lr, w_sp, w_ind = (float(w) for w in self.weights)
        n = self.n_units
        cov = w_ind**2 * np.eye(n)
        if w_lr > 0 and self.loadings.shape[0]:
            loadings = self.loadings.astype(np.float64)
            cov += w_lr**2 * (loadings.T @ loadings)
        if w_sp > 0:
            if self.length_scale == 0:
                cov += w_sp**2 * np.eye(n)
            else:
                rows, cols = self.grid
                pr, pc = self.pad
                padded = (rows + 2 * pr, cols + 2 * pc)
                deltas = np.eye(padded[0] * padded[1]).reshape(-1, *padded)
                smooth = gaussian_filter(deltas, sigma=self.sigma, mode="constant", truncate=4.0)
                kernel = smooth[:, pr:pr + rows, pc:pc + cols].reshape(len(deltas), n).T
                kernel *= float(self.gain)
                cov += w_sp**2 * (kernel @ kernel.T)
        sd = self.noise_sd.astype(np.float64)
        return cov * sd[:, None] * sd[None, :]

    def draw(self, n_trials: int) -> NDArray[np.float32]:
        """Return noise of shape (n_trials, n_units), unit sd scaled by ``noise_sd``."""
        w_lr, w_sp, w_ind = self.weights
        noise = w_ind * self.rng.standard_normal((n_trials, self.n_units), dtype=np.float32)
        if w_lr > 0 and self.loadings.shape[0]:
            sources = self.rng.standard_normal((n_trials, self.loadings.shape[0]), dtype=np.float32)
            noise += w_lr * (sources @ self.loadings)
        if w_sp > 0:
            noise += w_sp * self.spatial(n_trials)
        noise *= self.noise_sd[None, :]
        return noise
