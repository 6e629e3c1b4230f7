"""The ``synthetic`` dataset: simulated studies with ground truth, in memory or from disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from .dataset import SyntheticDataset

if TYPE_CHECKING:
    from conform_core import ComponentRegistry

__all__ = ["SyntheticDataset", "conform_register"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``synthetic`` dataset."""
    registry.add("dataset", "synthetic", SyntheticDataset)
