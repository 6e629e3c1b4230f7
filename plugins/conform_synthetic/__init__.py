"""The ``synthetic`` dataset: simulated studies with ground truth, in memory or from disk."""

from __future__ import annotations

from typing import Any

from conform_core.hookspecs import hookimpl

from .dataset import SyntheticDataset

__all__ = ["SyntheticDataset", "conform_register"]


@hookimpl
def conform_register(registry: Any) -> None:
    """Register the ``synthetic`` dataset."""
    registry.add("dataset", "synthetic", SyntheticDataset)
