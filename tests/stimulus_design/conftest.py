"""Small pools for the stimulus-design tests: embeddings on disk and a folder of images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

TINY_VIT = {"embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                           "patch_size": 8},
            "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1,
                         "layers": 1}}


def clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors from a few anisotropic clusters (a stand-in for CLIP embeddings)."""
    rng = np.random.default_rng(seed)
    scale = np.arange(1, d + 1) ** -0.7
    centres = rng.standard_normal((20, d)) * scale * 3
    x = centres[rng.integers(0, 20, n)] + rng.standard_normal((n, d)) * scale
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.fixture
def pool_files(tmp_path: Path) -> dict[str, Path]:
    """3,000 clustered 32-d embeddings as emb.npy + ids.txt, with a category/exclude table."""
    return write_pool(tmp_path)


def write_pool(tmp_path: Path) -> dict[str, Path]:
    """Write the test pool files into ``tmp_path``."""
    x = clustered(3000)
    np.save(tmp_path / "emb.npy", x)
    ids = [f"img{i:05d}" for i in range(x.shape[0])]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    rows = ["id,category,exclude"] + [f"{s},{'animal' if i % 3 else 'scene'},{int(i < 10)}"
                                      for i, s in enumerate(ids)]
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    return {"emb": tmp_path / "emb.npy", "ids": tmp_path / "ids.txt",
            "meta": tmp_path / "meta.csv", "root": tmp_path}


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """60 generated images (one corrupt, one duplicate) and a tiny open_clip config."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    folder = root / "pool"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(60):
        base = rng.integers(0, 255, 3)
        pixels = np.clip(base + rng.normal(0, 60, (24, 24, 3)), 0, 255).astype(np.uint8)
        where = folder / ("sub" if i % 2 else "") / f"im{i:03d}.png"
        Image.fromarray(pixels).save(where)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (folder / "copy_of_im000.png").write_bytes((folder / "im000.png").read_bytes())
    config = root / "conform-tiny-vit.json"
    config.write_text(json.dumps(TINY_VIT))
    return {"folder": folder, "config": config, "cache": root / "cache"}
