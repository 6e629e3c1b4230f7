"""The five kinds of component, as abstract base classes."""

from __future__ import annotations

from .aligner import Aligner
from .base import Component, check_is_fitted
from .dataset import Dataset
from .denoiser import Denoiser
from .encoder import Encoder
from .features import Features

KIND_BASES: dict[str, type[Component]] = {
    "dataset": Dataset,
    "denoiser": Denoiser,
    "aligner": Aligner,
    "encoder": Encoder,
    "features": Features,
}
"""The base class of each kind of component, by kind name."""

__all__ = [
    "Aligner",
    "Component",
    "Dataset",
    "Denoiser",
    "Encoder",
    "Features",
    "KIND_BASES",
    "check_is_fitted",
]
