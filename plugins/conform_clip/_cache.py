"""On-disk embedding cache: one ``.npy`` per (model key, image SHA-256)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from conform_core.io import save_npy

__all__ = ["EmbeddingCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$CONFORM_CACHE_DIR/clip``, else ``$XDG_CACHE_HOME/conform/clip`` or ``~/.cache/...``."""
    if os.environ.get("CONFORM_CACHE_DIR"):
        return Path(os.environ["CONFORM_CACHE_DIR"]) / "clip"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conform" / "clip"


class EmbeddingCache:
    """Embeddings stored as ``<root>/<model_key>/<sha[:2]>/<sha>.npy`` (written atomically).

    Parameters
    ----------
    root : path-like
        Cache folder.
    model_key : str
        Identifies the model configuration and weights; different keys never mix.
    """

    def __init__(self, root: str | os.PathLike[str], model_key: str) -> None:
        self.folder = Path(root) / model_key

    def _path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / f"{sha256}.npy"

    def get(self, sha256: str) -> NDArray[np.float32] | None:
        """Return the cached embedding of the file with this checksum, or None."""
        path = self._path(sha256)
        if not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError):   # a damaged entry is recomputed
            return None
        return value.astype(np.float32, copy=False) if value.ndim == 1 else None

    def put(self, sha256: str, embedding: NDArray[np.float32]) -> None:
        """Store one embedding."""
        save_npy(self._path(sha256), np.asarray(embedding, dtype=np.float32))
