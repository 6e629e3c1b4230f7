"""Tiny untrained BraInCoRL models for tests (random weights: shapes and plumbing only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["tiny_untrained_checkpoint", "tiny_untrained_encoder"]


def tiny_untrained_checkpoint(folder: str | Path, embed_dim: int = 5, seed: int = 0,
                              feature_space: str = "") -> Path:
    """Write an untrained ``tiny`` checkpoint for ``embed_dim``-d features; return its folder.

    Its readouts are meaningless (random weights); it exists so tests can exercise loading,
    shapes and the encoder contract without training or downloading anything.
    """
    from ._torch import torch
    from .checkpoint import Checkpoint, save_checkpoint
    from .network import BraInCoRLNetwork, preset_config

    torch.manual_seed(seed)
    network = BraInCoRLNetwork(preset_config("tiny", embed_dim=embed_dim))
    folder = Path(folder)
    save_checkpoint(Checkpoint(network, feature_space=feature_space,
                               info={"note": "untrained, random weights (tests only)"}),
                    folder, card="# Untrained tiny BraInCoRL model (tests only)\n")
    return folder


def tiny_untrained_encoder(folder: Path) -> Any:
    """Return a :class:`BraInCoRLEncoder` over an untrained 5-d tiny model in ``folder``."""
    from .encoder import BraInCoRLEncoder

    return BraInCoRLEncoder(checkpoint=str(tiny_untrained_checkpoint(folder / "tiny")))
