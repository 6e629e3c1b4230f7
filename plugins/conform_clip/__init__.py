"""conform_clip: image features from open_clip, as the ``features`` component ``clip``.

Weights come only from local checkpoint files; nothing is ever downloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from ._features import ClipFeatures

if TYPE_CHECKING:
    from conform_core import ComponentRegistry

__all__ = ["ClipFeatures", "conform_register"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register :class:`ClipFeatures` as the ``features`` component ``clip``."""
    registry.add("features", "clip", ClipFeatures)
