"""conform_clip: image features from open_clip, as the ``features`` component ``clip``.

Weights come only from local checkpoint files; nothing is ever downloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from .features import ClipFeatures

if TYPE_CHECKING:
    from conform_core import ComponentRegistry
    from conform_core.testing import ContractInstances

__all__ = ["ClipFeatures", "conform_contract_instances", "conform_register"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register :class:`ClipFeatures` as the ``features`` component ``clip``."""
    registry.add("features", "clip", ClipFeatures)


@hookimpl
def conform_contract_instances(instances: ContractInstances) -> None:
    """Give the contract kit a tiny untrained ViT to check ``clip`` with (:mod:`.testing`).

    Without torch or open_clip, the checks that need them are skipped with the install command.
    """
    from .testing import tiny_untrained

    instances.add(ClipFeatures, tiny_untrained, id="tiny-untrained",
                  requires=("torch", "open_clip"),
                  hint="pip install 'conform-fmri[clip]'")
