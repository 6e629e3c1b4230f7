"""Cross-subject aligners: map several people's responses into one shared space and back.

- ``identity``: units with the same id are the same place (the anatomical baseline)
- ``procrustes``: orthogonal maps onto an iteratively refined template (optional scaling)
- ``ridge``: ridge maps to and from a k-dimensional template, penalties by cross-validation
- ``srm``: the shared response model, probabilistic (EM) or deterministic
- ``optimal-transport``: entropic transport plans between units and template components

All share one algebra module (centring, orthogonal maps, template iteration); the base class
:class:`conform_core.Aligner` adds piecewise alignment, alignment through an encoder and the
choice of the shared dimension by cross-validation. See docs/align.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from .identity import IdentityAligner
from .optimal_transport import OptimalTransportAligner
from .procrustes import ProcrustesAligner
from .ridge import RidgeAligner
from .srm import SRMAligner

if TYPE_CHECKING:
    from conform_core import ComponentRegistry

__all__ = [
    "IdentityAligner",
    "OptimalTransportAligner",
    "ProcrustesAligner",
    "RidgeAligner",
    "SRMAligner",
    "conform_register",
]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the aligners."""
    registry.add("aligner", "identity", IdentityAligner)
    registry.add("aligner", "procrustes", ProcrustesAligner)
    registry.add("aligner", "ridge", RidgeAligner)
    registry.add("aligner", "srm", SRMAligner)
    registry.add("aligner", "optimal-transport", OptimalTransportAligner)
