"""Baseline components every comparison needs.

- denoisers: ``trial-average`` (the reference), ``pca`` (rank by cross-validation)
- encoder: ``ridge`` (per-unit regularisation by efficient cross-validation)
- features: ``precomputed`` (the embeddings stored with the stimuli)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from .pca import PCADenoiser
from .precomputed import PrecomputedFeatures
from .ridge import RidgeEncoder
from .trial_average import TrialAverageDenoiser

if TYPE_CHECKING:
    from conform_core import ComponentRegistry

__all__ = [
    "PCADenoiser",
    "PrecomputedFeatures",
    "RidgeEncoder",
    "TrialAverageDenoiser",
    "conform_register",
]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the baseline components."""
    registry.add("denoiser", "trial-average", TrialAverageDenoiser)
    registry.add("denoiser", "pca", PCADenoiser)
    registry.add("encoder", "ridge", RidgeEncoder)
    registry.add("features", "precomputed", PrecomputedFeatures)
