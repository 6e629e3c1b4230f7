"""The noise-free part of the simulation: stimulus features, shared tuning, subject mixing.

Model (all float32)::

    F   (n_stimuli, n_features)   clustered unit-norm vectors (stand-ins for CLIP embeddings)
    Z   (n_stimuli, n_latent)     z-scored F @ W, partly rectified (``nonlinearity``)
    M   (n_latent, n_units)       shared mixing, unit-norm columns: independent per unit, or
                                  (tuning_length_scale > 0) a smooth random field T(p) over
                                  the unit sheet evaluated at each unit's grid position p
    M_s (n_latent, n_units)       sqrt(1 - d**2) * M + d * E_s, d = individual_differences;
                                  with misregistration, M is read at p + d_s(p) (T(p + d_s(p)))
    S_s (n_stim_s, n_units)       Z[stimuli of s] @ M_s, scaled per unit to sd
                                  ``signal_sd`` over the subject's stimuli, plus an offset
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._noise import grid_positions, grid_shape
from ._params import SimulationParams

__all__ = ["SmoothField", "StudyTuning", "displacement", "make_tuning", "present_units",
           "subject_mixing", "subject_signal", "unit_scales"]

_CHUNK = 4096  # positions evaluated at a time (bounds the (positions x waves) block)


class SmoothField:
    """A smooth random field on the plane, defined at any continuous position.

    Random Fourier features of a Gaussian kernel: each of the ``n_out`` outputs is
    ``sqrt(2 / J) sum_j a_j cos(w_j . p + b_j)`` with ``w_j ~ N(0, I / length_scale**2)``,
    ``b_j ~ U(0, 2 pi)`` and ``a_j ~ N(0, 1)``: a draw whose covariance approaches
    ``exp(-|p - q|**2 / (2 length_scale**2))`` (unit variance) as ``J`` grows, evaluated
    exactly at displaced (non-grid) positions.

    Parameters
    ----------
    n_out : int
        Number of independent outputs.
    length_scale : float
        Correlation length, in grid steps (> 0).
    rng : numpy.random.Generator
    n_waves : int, default=512
        Number of random waves ``J``.
    """

    def __init__(self, n_out: int, length_scale: float, rng: np.random.Generator,
                 n_waves: int = 512) -> None:
        self.frequencies = rng.standard_normal((n_waves, 2)) / float(length_scale)
        self.phases = rng.uniform(0.0, 2 * math.pi, size=n_waves)
        self.weights = rng.standard_normal((n_waves, n_out)) * math.sqrt(2.0 / n_waves)

    def __call__(self, positions: NDArray[np.floating]) -> NDArray[np.float64]:
        """Return the field at ``positions`` (n, 2): shape (n, n_out), float64."""
        positions = np.asarray(positions, dtype=np.float64)
        out = np.empty((positions.shape[0], self.weights.shape[1]))
        for start in range(0, positions.shape[0], _CHUNK):
            block = positions[start:start + _CHUNK]
            out[start:start + _CHUNK] = np.cos(block @ self.frequencies.T + self.phases) @ self.weights
        return out

    def mixing(self, positions: NDArray[np.floating]) -> NDArray[np.float32]:
        """Return the mixing read at ``positions``: (n_out, n), each column of unit norm."""
        values = self(positions).T
        values /= np.linalg.norm(values, axis=0, keepdims=True)
        return values.astype(np.float32)


@dataclass(frozen=True, eq=False)
class StudyTuning:
    """Study-level draws shared by every subject.

    Attributes
    ----------
    features : ndarray of shape (n_stimuli, n_features), float32
    categories : ndarray of shape (n_stimuli,), dtype str
    latent : ndarray of shape (n_stimuli, n_latent), float32
    mixing : ndarray of shape (n_latent, n_units), float32
        The shared mixing ``M`` (each unit's column has unit norm).
    projection : ndarray of shape (n_features, n_latent), float32
        The feature weights ``W`` of the latent tuning (``Z`` is ``F @ W`` z-scored over the
        study's stimuli, then partly rectified).
    field : SmoothField or None
        With ``tuning_length_scale > 0``, the smooth field ``M`` is read from (at any
        position of the sheet); None when each unit's shared tuning is independent.
    """

    features: NDArray[np.float32]
    categories: NDArray[np.str_]
    latent: NDArray[np.float32]
    mixing: NDArray[np.float32]
    projection: NDArray[np.float32]
    field: SmoothField | None = None


def _standardize(x: NDArray[np.floating]) -> NDArray[np.floating]:
    x = x - x.mean(axis=0, keepdims=True)
    sd = x.std(axis=0, keepdims=True)
    return (x / np.where(sd > 0, sd, 1)).astype(np.float32)


def make_tuning(params: SimulationParams, rng: np.random.Generator,
                field_rng: np.random.Generator | None = None) -> StudyTuning:
    """Draw stimulus features, the shared latent tuning and the shared mixing.

    With ``tuning_length_scale > 0`` the shared mixing is a :class:`SmoothField` drawn from
    ``field_rng`` (required then); ``rng`` is used exactly as without it, so the draws
    that follow from it do not change.
    """
    n, d, k = params.n_stimuli, params.n_features, params.n_latent
    n_categories = int(np.clip(n // 12, 2, 12))
    centers = rng.standard_normal((n_categories, d), dtype=np.float32)
    category = rng.integers(0, n_categories, size=n)
    features = centers[category] + 0.8 * rng.standard_normal((n, d), dtype=np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    weights = rng.standard_normal((d, k), dtype=np.float32) / np.float32(np.sqrt(d))
    linear = _standardize(features @ weights)
    a = np.float32(params.nonlinearity)
    latent = _standardize((1 - a) * linear + a * np.maximum(linear, 0))
    mixing = rng.standard_normal((k, params.n_units), dtype=np.float32)
    mixing /= np.linalg.norm(mixing, axis=0, keepdims=True)
    field = None
    if params.tuning_length_scale > 0:
        if field_rng is None:
            raise ValueError("make_tuning needs field_rng when tuning_length_scale > 0.")
        field = SmoothField(k, params.tuning_length_scale, field_rng)
        mixing = field.mixing(grid_positions(params.n_units))
    categories = np.array([f"cat-{c:02d}" for c in category])
    return StudyTuning(features=features.astype(np.float32), categories=categories,
                       latent=latent, mixing=mixing, projection=weights, field=field)


def displacement(params: SimulationParams, positions: NDArray[np.float64],
                 rng: np.random.Generator) -> NDArray[np.float64]:
    """Draw one subject's smooth displacement of the sheet at ``positions``: shape (n, 2).

    Each component is a :class:`SmoothField` of sd ``misregistration`` grid steps whose
    correlation length is a quarter of the sheet's longer side, at least
    ``tuning_length_scale`` (a smooth shift of whole regions, not a shuffle of units).
    """
    length = max(params.tuning_length_scale, max(grid_shape(params.n_units)) / 4.0, 1.0)
    return params.misregistration * SmoothField(2, length, rng)(positions)


def present_units(params: SimulationParams, rng: np.random.Generator) -> NDArray[np.intp]:
    """Return the sheet indices (sorted) of the units a subject has.

    It misses a share drawn uniformly in ``[0, unit_dropout]`` of the units, chosen at
    random (at least one unit is kept); every unit when ``unit_dropout`` is 0, with no draw.
    """
    n = params.n_units
    if params.unit_dropout == 0:
        return np.arange(n, dtype=np.intp)
    share = rng.uniform(0.0, params.unit_dropout)
    n_drop = min(int(math.floor(share * n + 0.5)), n - 1)
    dropped = rng.choice(n, size=n_drop, replace=False)
    return np.setdiff1d(np.arange(n), dropped).astype(np.intp)


def unit_scales(params: SimulationParams, rng: np.random.Generator
                ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Draw per-unit noise sd, signal sd and response offset of one subject.

    The per-unit SNR is ``snr * exp(z - median(z))`` with ``z ~ N(0, snr_spread**2)``, so its
    median over units is exactly ``snr``.

    Returns
    -------
    noise_sd, signal_sd, offset : ndarray of shape (n_units,), float32
    """
    n = params.n_units
    z = rng.normal(0.0, params.snr_spread, size=n)
    snr_unit = params.snr * np.exp(z - np.median(z))
    noise_sd = np.exp(rng.normal(0.0, 0.25, size=n))
    signal_sd = snr_unit * noise_sd
    offset = rng.normal(1.0, 0.5, size=n) * np.maximum(signal_sd, 0.2)
    return noise_sd.astype(np.float32), signal_sd.astype(np.float32), offset.astype(np.float32)


def subject_mixing(tuning: StudyTuning, params: SimulationParams, rng: np.random.Generator,
                   shared: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """Draw one subject's mixing ``M_s``, shape (n_latent, n_units), float32.

    ``shared`` is the shared mixing this subject's units read (``tuning.mixing`` when
    None; with misregistration, the field read at its displaced positions).
    """
    d = np.float32(params.individual_differences)
    shared = tuning.mixing if shared is None else shared
    own = rng.standard_normal(tuning.mixing.shape, dtype=np.float32)
    own /= np.linalg.norm(own, axis=0, keepdims=True)
    return np.sqrt(1 - d * d) * shared + d * own


def subject_signal(tuning: StudyTuning, stimulus_index: NDArray[np.intp],
                   mixing: NDArray[np.float32], signal_sd: NDArray[np.float32],
                   offset: NDArray[np.float32]) -> NDArray[np.float32]:
    """Return one subject's true responses, shape (n_stimuli_of_subject, n_units), float32.

    ``Z[stimulus_index] @ mixing``, centred and scaled per unit over these stimuli to sd
    ``signal_sd``, plus ``offset``.
    """
    raw = tuning.latent[stimulus_index] @ mixing
    raw -= raw.mean(axis=0, keepdims=True)
    sd = raw.std(axis=0, keepdims=True)
    raw *= signal_sd[None, :] / np.where(sd > 0, sd, 1)
    raw += offset[None, :]
    return raw.astype(np.float32, copy=False)
