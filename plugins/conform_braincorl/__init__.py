"""conform_braincorl: BraInCoRL, an in-context transformer that infers a new person's voxel models.

Registers the ``encoder`` component ``braincorl`` (:class:`BraInCoRLEncoder`): in
``conform fit``, ``encoder = {plugin = "braincorl", checkpoint = "DIR"}`` fits each voxel of a
person from that person's own (image, response) pairs with one forward pass of a model
meta-trained on other people. ``conform braincorl train`` meta-trains such a model on any
conform dataset; ``conform braincorl import-official`` converts the official weights a user
already has. torch is imported only when a model is built or loaded (``pip install
"conform-fmri[braincorl]"``). See docs/braincorl.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from .encoder import BraInCoRLEncoder

if TYPE_CHECKING:
    import typer

    from conform_core import ComponentRegistry
    from conform_core.testing import ContractInstances

__all__ = ["BraInCoRLEncoder", "conform_contract_instances", "conform_register",
           "conform_register_commands"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register :class:`BraInCoRLEncoder` as the ``encoder`` component ``braincorl``."""
    registry.add("encoder", "braincorl", BraInCoRLEncoder)


@hookimpl
def conform_register_commands(app: typer.Typer) -> None:
    """Add ``conform braincorl train`` and ``conform braincorl import-official``."""
    from .cli import HELP, braincorl_app

    app.add_typer(braincorl_app, name="braincorl", help=HELP)


@hookimpl
def conform_contract_instances(instances: ContractInstances) -> None:
    """Give the contract kit an encoder over a tiny *untrained* model (:mod:`.testing`).

    Without torch or safetensors, the checks that need them are skipped with the install command.
    """
    from .testing import tiny_untrained_encoder

    instances.add(BraInCoRLEncoder, tiny_untrained_encoder, id="tiny-untrained",
                  requires=("torch", "safetensors"),
                  hint="pip install 'conform-fmri[braincorl]'")
