"""The noise-free part of the simulation: stimulus features, shared tuning, subject mixing.

Model (all float32)::

    F   (n_stimuli, n_features)   clustered unit-norm vectors (stand-ins for CLIP embeddings)
    Z   (n_stimuli, n_latent)     z-scored F @ W, partly rectified (``nonlinearity``)
    M_s (n_latent, n_units)       sqrt(1 - d**2) * M + d * E_s, d = individual_differences
    S_s (n_stim_s, n_units)       Z[stimuli of s] @ M_s, scaled per unit to sd
                                  ``signal_sd`` over the subject's stimuli, plus an offset
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._params import SimulationParams

__all__ = ["StudyTuning", "make_tuning", "subject_mixing", "subject_signal", "unit_scales"]


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
    """

    features: NDArray[np.float32]
    categories: NDArray[np.str_]
    latent: NDArray[np.float32]
    mixing: NDArray[np.float32]
    projection: NDArray[np.float32]


def _standardize(x: NDArray[np.floating]) -> NDArray[np.floating]:
    x = x - x.mean(axis=0, keepdims=True)
    sd = x.std(axis=0, keepdims=True)
    return (x / np.where(sd > 0, sd, 1)).astype(np.float32)


def make_tuning(params: SimulationParams, rng: np.random.Generator) -> StudyTuning:
    """Draw stimulus features, the shared latent tuning and the shared mixing."""
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
    categories = np.array([f"cat-{c:02d}" for c in category])
    return StudyTuning(features=features.astype(np.float32), categories=categories,
                       latent=latent, mixing=mixing, projection=weights)


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


def subject_mixing(tuning: StudyTuning, params: SimulationParams,
                   rng: np.random.Generator) -> NDArray[np.float32]:
    """Draw one subject's mixing ``M_s``, shape (n_latent, n_units), float32."""
    d = np.float32(params.individual_differences)
    own = rng.standard_normal(tuning.mixing.shape, dtype=np.float32)
    own /= np.linalg.norm(own, axis=0, keepdims=True)
    return np.sqrt(1 - d * d) * tuning.mixing + d * own


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
