"""ClipFeatures: local weights only, untrained on request, L2-normalised, cached by checksum."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conform_core.data import StimulusSet
from conform_core.exceptions import ConformWarning, DataFileError, ParameterError
from conform_core.plugins import default_registry

_CLIP_MISSING = [m for m in ("torch", "open_clip") if importlib.util.find_spec(m) is None]
needs_clip = pytest.mark.skipif(
    bool(_CLIP_MISSING), reason=f"needs {' and '.join(_CLIP_MISSING) or 'clip'}, from the [clip] "
                                "extra (pip install 'conform-fmri[clip]')")

TINY = {"embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                       "patch_size": 8},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A tiny ViT config and eight generated images."""
    root = tmp_path_factory.mktemp("clip")
    cfg = root / "conform-tiny-vit.json"
    cfg.write_text(json.dumps(TINY))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        path = root / f"im{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return {"config": str(cfg), "paths": paths, "root": root}


def _clip(**kwargs):
    return default_registry().get("features", "clip")(**kwargs)


def _stimuli(paths: list[str]) -> StimulusSet:
    return StimulusSet(ids=[f"s{i}" for i in range(len(paths))], sources=paths)


def _untrained(tiny, cache: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConformWarning)
        return _clip(model=tiny["config"], allow_untrained=True, cache_dir=str(cache),
                     batch_size=3, device="cpu", **kwargs).fit()


def test_registered_as_features_clip():
    cls = _clip().__class__
    assert cls.__name__ == "ClipFeatures" and cls.kind == "features"


@needs_clip
def test_embeddings_are_unit_float32_and_follow_order(tiny, tmp_path):
    est = _untrained(tiny, tmp_path)
    out = est.transform(_stimuli(tiny["paths"]))
    assert out.dtype == np.float32 and out.shape == (8, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    perm = [3, 1, 7, 0]
    again = est.transform(_stimuli([tiny["paths"][i] for i in perm]))
    np.testing.assert_allclose(again, out[perm], atol=1e-6)


@needs_clip
def test_second_run_embeds_nothing(tiny, tmp_path):
    est = _untrained(tiny, tmp_path)
    first = est.transform(_stimuli(tiny["paths"]))
    assert est.n_computed_ == 8
    fresh = _untrained(tiny, tmp_path)            # a new instance finds the cache
    second = fresh.transform(_stimuli(tiny["paths"]))
    assert fresh.n_computed_ == 0
    np.testing.assert_array_equal(first, second)


@needs_clip
def test_untrained_model_is_deterministic(tiny, tmp_path):
    a = _untrained(tiny, tmp_path / "a").transform(_stimuli(tiny["paths"][:3]))
    b = _untrained(tiny, tmp_path / "b").transform(_stimuli(tiny["paths"][:3]))
    np.testing.assert_allclose(a, b, atol=1e-5)


@needs_clip
def test_untrained_warns_that_embeddings_are_meaningless(tiny, tmp_path):
    with pytest.warns(ConformWarning, match="meaningless"):
        _clip(model=tiny["config"], allow_untrained=True, cache_dir=str(tmp_path)).fit()


def test_no_weights_is_an_error_naming_the_fix():
    with pytest.raises(ParameterError, match="needs weights=PATH.*never downloads"):
        _clip(model="ViT-B-32").fit()


def test_missing_weights_file_is_refused(tmp_path):
    with pytest.raises(DataFileError, match="no such file.*'openai' are refused"):
        _clip(model="ViT-B-32", weights="openai").fit()


def test_hf_hub_models_are_refused():
    with pytest.raises(ParameterError, match="never downloads"):
        _clip(model="hf-hub:laion/whatever").fit()


@needs_clip
def test_unknown_model_suggests_a_name():
    with pytest.raises(ParameterError, match="Did you mean 'ViT-B-32'"):
        _clip(model="ViT-B-23", allow_untrained=True).fit()


@needs_clip
def test_local_checkpoint_is_loaded(tiny, tmp_path):
    """A checkpoint saved from one model gives the same embeddings when loaded as weights."""
    import open_clip
    import torch

    est = _untrained(tiny, tmp_path / "c1")
    reference = est.transform(_stimuli(tiny["paths"][:2]))
    open_clip.add_model_config(Path(tiny["config"]))
    torch.manual_seed(0)
    model = open_clip.create_model("conform-tiny-vit", pretrained_text=False)
    ckpt = tmp_path / "tiny.pt"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    loaded = _clip(model=tiny["config"], weights=str(ckpt), cache_dir=str(tmp_path / "c2"),
                   device="cpu").fit()
    assert len(loaded.weights_sha256_) == 64
    # the feature space a BraInCoRL model records: model name and weights checksum
    assert loaded.feature_space_ == f"clip:conform-tiny-vit:{loaded.weights_sha256_}"
    np.testing.assert_allclose(loaded.transform(_stimuli(tiny["paths"][:2])), reference, atol=1e-5)
    assert loaded.cache_key_ != est.cache_key_


@needs_clip
def test_corrupt_image_names_the_file(tiny, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataFileError, match="bad.png"):
        _untrained(tiny, tmp_path).transform(_stimuli([str(bad)]))


@needs_clip
def test_stimuli_without_files_are_refused(tiny, tmp_path):
    with pytest.raises(DataFileError, match="no source path"):
        _untrained(tiny, tmp_path).transform(StimulusSet(ids=["a"]))
