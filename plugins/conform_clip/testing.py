"""A tiny untrained open_clip model for tests: what the contract kit checks.

No weights of a real model exist offline, so the contract kit checks ``clip`` with a
randomly initialised one-layer ViT (:data:`TINY_CONFIG`), built by :func:`tiny_untrained`
from a model-config file it writes. Its embeddings are meaningless but deterministic.
Nothing here imports torch; fitting the instance does (``pip install 'conform-fmri[clip]'``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .features import ClipFeatures

__all__ = ["TINY_CONFIG", "tiny_untrained"]

TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1},
}
"""A tiny open_clip model config (16-dimensional embeddings of 32x32 images)."""


def tiny_untrained(folder: str | os.PathLike[str]) -> ClipFeatures:
    """``ClipFeatures`` with an untrained tiny ViT whose config and cache live in ``folder``.

    Parameters
    ----------
    folder : path
        An existing folder; ``conform-tiny-vit.json`` is written there and the embedding
        cache goes there too.

    Returns
    -------
    ClipFeatures
        ``model`` is the config file, ``allow_untrained=True``, ``cache_dir=folder``.
    """
    config = Path(folder) / "conform-tiny-vit.json"
    config.write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    return ClipFeatures(model=str(config), allow_untrained=True, cache_dir=str(folder))
