"""ClipFeatures: image embeddings from any open_clip model, from local weights only."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core.components.features import Features
from conform_core.constraints import Boolean, Interval, NonEmptyStr, PathLike
from conform_core.data import StimulusSet
from conform_core.exceptions import ConformWarning, DataFileError, ParameterError
from conform_core.io import sha256_file
from conform_core.optional import require
from conform_core.progress import progress
from conform_core.validation import check_existing_path, suggest

from ._cache import EmbeddingCache, default_cache_dir

__all__ = ["ClipFeatures"]

_MODEL_WHAT = "an open_clip model name, 'local-dir:PATH' or a model-config .json path"

_UNTRAINED_SEED = 0


def _require(module: str) -> Any:
    """Import ``module`` (torch or open_clip), or say how to install the ``clip`` extra."""
    return require(module, purpose="ClipFeatures", extra="clip")


def _known_models() -> list[str] | None:
    """Return open_clip's model names, or None if they cannot be known.

    Does not import open_clip (which imports torch) when it is not loaded yet: the names
    are the stems of its ``model_configs/*.json``.
    """
    module = sys.modules.get("open_clip")
    if module is not None:
        return list(module.list_models())
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    names = sorted(p.stem for p in folder.glob("*.json"))
    return names or None


class ClipFeatures(Features):
    """Image embeddings from an open_clip model (L2-normalised float32, cached on disk).

    Weights come only from a local checkpoint file: conform never downloads anything.
    Embeddings are cached by the image's SHA-256 and a key of model + weights checksum, so
    embedding the same pool again computes nothing.

    Parameters
    ----------
    model : str, default="ViT-B-32"
        Any open_clip model name (``open_clip.list_models()``), a ``local-dir:PATH`` folder
        with an ``open_clip_config.json``, or the path of a model-config ``.json`` file.
    weights : str or None, default=None
        Path of a local open_clip checkpoint (``.pt``, ``.bin`` or ``.safetensors``).
    allow_untrained : bool, default=False
        Without ``weights``, build a randomly initialised model (seeded, deterministic)
        instead of raising. Its embeddings are meaningless; a ConformWarning says so.
    batch_size : int, default=64
        Images per forward pass.
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    cache_dir : str or None, default=None
        Cache folder (default ``$CONFORM_CACHE_DIR/clip`` or ``~/.cache/conform/clip``).

    Attributes
    ----------
    fingerprint_ : str
        SHA-256 of the model name, configuration and weights checksum (see
        :class:`~conform_core.components.Features`).
    feature_space_ : str
        ``clip:<model>:<weights sha256>`` (what models trained on these embeddings record).
    cache_key_ : str
        Key of the model configuration and weights in the cache (``fingerprint_[:24]``).
    n_computed_ : int
        Images embedded (not found in the cache) by the last ``transform``.

    Examples
    --------
    >>> from conform_core.plugins import default_registry   # doctest: +SKIP
    >>> Clip = default_registry().get("features", "clip")   # doctest: +SKIP
    >>> emb = Clip(weights="ViT-B-32.pt").fit_transform(stimuli)  # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "model": [NonEmptyStr(_MODEL_WHAT)],
        "weights": [PathLike("file"), None],
        "allow_untrained": [Boolean()],
        "batch_size": [Interval(int, 1, None)],
        "device": [NonEmptyStr("'auto', 'cpu' or a torch device string such as 'cuda:0'")],
        "cache_dir": [PathLike("dir", must_exist=False), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "model": "Use e.g. $model='ViT-B-32'.",
        "weights": "Pass the path of a local checkpoint; open_clip tags such as 'openai' are "
                   "refused because they download.",
        "batch_size": "Use e.g. 64 (lower it if the device runs out of memory).",
        "cache_dir": "Pass a folder (made if missing), or None for the default cache.",
    }

    def __init__(self, model: str = "ViT-B-32", weights: str | None = None,
                 allow_untrained: bool = False, batch_size: int = 64, device: str = "auto",
                 cache_dir: str | None = None) -> None:
        self.model = model
        self.weights = weights
        self.allow_untrained = allow_untrained
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = cache_dir

    # ------------------------------------------------------------------ checks
    def _check_params_extra(self) -> None:
        """Check the model and the need for weights without loading torch or the model.

        ``model`` (a known open_clip name, read from open_clip's config folder without
        importing it; an existing ``.json`` config; an existing ``local-dir:`` folder; never
        ``hf-hub:``), ``weights`` (required unless ``allow_untrained`` or a ``local-dir:``
        model) and ``cache_dir`` (not a file). Types, ranges and files are declared in
        ``_parameter_constraints``.
        """
        name = self.model
        if name.startswith("hf-hub:"):
            raise ParameterError(
                param="model", value=name, owner=self,
                allowed=f"{_MODEL_WHAT}, not an 'hf-hub:' name (conform never downloads)",
                fix="Use a built-in open_clip name with $weights=PATH, or 'local-dir:PATH' for a "
                    "local model folder.")
        if name.startswith("local-dir:"):
            check_existing_path(name.split(":", 1)[1], name="model", owner=self, kind="dir",
                                fix="'local-dir:PATH' names a folder with an "
                                    "open_clip_config.json and its weights.")
        elif name.endswith(".json"):
            check_existing_path(name, name="model", owner=self,
                                fix="Pass an open_clip model-config .json file.")
        else:
            known = _known_models()
            if known is not None and name not in known:
                raise ParameterError(
                    param="model", value=name, owner=self,
                    allowed=f"{_MODEL_WHAT} ({name!r} is not an open_clip model)",
                    fix=f"{suggest(name, known).strip()} See open_clip.list_models(), or pass a "
                        "model-config .json file.".strip())
        if self.weights is None and not name.startswith("local-dir:") \
                and not self.allow_untrained:
            raise ParameterError(
                f"ClipFeatures(model={ParameterError.quote(repr(name))}) needs $weights=PATH to a "
                "local open_clip checkpoint; conform never downloads weights.",
                param="weights", value=None, owner=self,
                fix="Only for tests, turn on $allow_untrained: the model is then random and its "
                    "embeddings meaningless.")
        if self.cache_dir is not None and Path(self.cache_dir).is_file():
            raise ParameterError(
                param="cache_dir", value=self.cache_dir, owner=self,
                allowed="a folder (made if missing) or None",
                fix="That is a file. Pass a folder, or None for the default cache.")

    def check_stimuli(self, stimuli: StimulusSet) -> None:
        """Check that every stimulus has an image file to embed.

        A stimulus with a SHA-256 may be served from the cache without its file, so only
        stimuli without one must have an existing file; every stimulus needs a source.

        Raises
        ------
        DataFileError
            Naming the first few stimuli without a source path or file, and how many.
        """
        paths = [str(s) for s in stimuli.sources]
        empty = [str(i) for i, p in zip(stimuli.ids, paths) if not p]
        if empty:
            raise DataFileError(
                f"ClipFeatures embeds image files, but {len(empty)} of {stimuli.n_stimuli} "
                f"stimuli have no source path (first: {', '.join(repr(e) for e in empty[:3])}). "
                "Give the dataset its images (e.g. MOSAIC's stimuli_dir=DIR, with --set "
                "dataset.stimuli_dir=DIR), or build the StimulusSet with sources=<image paths>.")
        missing = [p for p, sha in zip(paths, stimuli.sha256) if not sha and not os.path.isfile(p)]
        if missing:
            raise DataFileError(
                f"ClipFeatures embeds image files, but {len(missing)} of {stimuli.n_stimuli} "
                f"stimulus images do not exist (first: "
                f"{', '.join(repr(m) for m in missing[:3])}). Check the stimulus folder (e.g. "
                "--set dataset.stimuli_dir=DIR) or the sources of the StimulusSet.")

    # ------------------------------------------------------------------ set-up
    def _model_name(self) -> str:
        """Return the open_clip name of the (checked) model, registering a .json config."""
        open_clip = _require("open_clip")

        name = str(self.model)
        if name.endswith(".json") and not name.startswith("local-dir:"):
            path = Path(name)
            open_clip.add_model_config(path)
            return path.stem
        return name

    def _config_text(self, name: str) -> str:
        open_clip = _require("open_clip")

        if name.startswith("local-dir:"):
            cfg = Path(name.split(":", 1)[1]) / "open_clip_config.json"
            return cfg.read_text(encoding="utf-8") if cfg.is_file() else name
        return json.dumps(open_clip.get_model_config(name), sort_keys=True)

    def _weights_sha(self) -> str:
        """Checksum of the (checked) weights file, or what stands for it."""
        if self.weights is None:
            if str(self.model).startswith("local-dir:"):
                return "local-dir"
            return f"untrained-seed{_UNTRAINED_SEED}"
        return sha256_file(Path(self.weights))

    def fit(self, stimuli: Any = None) -> ClipFeatures:
        """Check the parameters and work out the cache key (the model is built lazily)."""
        self.check_params()
        name = self._model_name()
        self.weights_sha256_ = self._weights_sha()
        key_text = json.dumps({"model": name, "config": self._config_text(name),
                               "weights": self.weights_sha256_}, sort_keys=True)
        self.fingerprint_ = hashlib.sha256(key_text.encode()).hexdigest()
        self.cache_key_ = self.fingerprint_[:24]
        self.model_name_ = name
        self.feature_space_ = f"clip:{name}:{self.weights_sha256_}"
        if self.weights is None and self.allow_untrained:
            warnings.warn(
                f"ClipFeatures(model={self.model!r}) runs an untrained, randomly initialised "
                "model: its embeddings are meaningless for stimulus selection. Pass "
                "weights=PATH (--weights) to a local checkpoint for real use.",
                ConformWarning, stacklevel=2)
        self.is_ready_ = True
        return self

    def _device(self) -> str:
        torch = _require("torch")

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _build(self) -> tuple[Any, Any, str]:
        open_clip = _require("open_clip")
        torch = _require("torch")
        transform = _require("open_clip.transform")
        PreprocessCfg, image_transform_v2 = transform.PreprocessCfg, transform.image_transform_v2

        device = self._device()
        offline = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_UNTRAINED_SEED)
                model = open_clip.create_model(
                    self.model_name_, pretrained=self.weights, device=device,
                    pretrained_image=False, pretrained_text=False)
        except Exception as exc:
            raise DataFileError(
                f"ClipFeatures could not build {self.model!r} with weights {self.weights!r}: "
                f"{type(exc).__name__}: {exc}. Check that the checkpoint matches the model.") from exc
        finally:
            for k, v in offline.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        model.eval()
        preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
        return model, preprocess, device

    # ------------------------------------------------------------------ embedding
    def _transform(self, stimuli: StimulusSet) -> NDArray[np.float32]:
        if not getattr(self, "is_ready_", False):
            self.fit()
        paths = [str(s) for s in stimuli.sources]
        empty = [i for i, p in zip(stimuli.ids, paths) if not p]
        if empty:
            raise DataFileError(
                f"ClipFeatures embeds image files, but stimuli {list(empty[:3])} have no source "
                "path. Build the StimulusSet with sources=<image paths>.")
        shas = [s or sha256_file(p) for s, p in zip(stimuli.sha256, paths)]
        cache = EmbeddingCache(self.cache_dir or default_cache_dir(), self.cache_key_)
        rows: list[NDArray[np.float32] | None] = [cache.get(s) for s in shas]
        todo = [i for i, r in enumerate(rows) if r is None]
        self.n_computed_ = len(todo)
        if todo:
            for i, vec in zip(todo, self._embed([paths[i] for i in todo])):
                cache.put(shas[i], vec)
                rows[i] = vec
        return np.stack([np.asarray(r, np.float32) for r in rows])

    def _embed(self, paths: list[str]) -> NDArray[np.float32]:
        from PIL import Image

        torch = _require("torch")
        model, preprocess, device = self._build()
        out = []
        with progress(f"Embedding with {self.model}", total=len(paths),
                      log_steps=False) as tick, torch.inference_mode():
            for start in range(0, len(paths), self.batch_size):
                batch = []
                batch_paths = paths[start:start + self.batch_size]
                for path in batch_paths:
                    try:
                        with Image.open(path) as image:
                            batch.append(preprocess(image.convert("RGB")))
                    except Exception as exc:
                        raise DataFileError(
                            f"ClipFeatures cannot read image {path!r} ({type(exc).__name__}: "
                            f"{exc}). Remove or replace the file.") from exc
                feats = model.encode_image(torch.stack(batch).to(device)).float()
                feats = torch.nn.functional.normalize(feats, dim=-1)
                out.append(feats.cpu().numpy().astype(np.float32))
                tick(Path(batch_paths[-1]).name, advance=len(batch))
        return np.concatenate(out)
