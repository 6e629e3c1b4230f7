"""BraInCoRL checkpoints: a folder with the weights, their configuration and a model card.

A checkpoint folder holds:

``model.safetensors``
    The network's state dict under the official parameter names. Its safetensors header
    metadata carries the whole configuration (``conform_braincorl`` key, JSON), so the weights
    file alone says what it is; it is written to a temporary file and renamed, so a run
    killed while saving leaves the previous file intact.
``config.json``
    The same configuration, for people and tools: model sizes, ``feature_space`` (e.g.
    ``clip:ViT-B-32:<weights sha256>``), ``embed_dim``, the stimuli excluded from training,
    the training data and the validation curve.
``model_card.md``
    What the model is, what it was trained on, and how to use it.

:func:`load_checkpoint` reads a folder (or its ``model.safetensors``); it refuses a file that
is not a conform BraInCoRL checkpoint, is truncated, or whose tensors do not have the shapes
its configuration says. :func:`load_official_checkpoint` loads a state dict saved by the
official implementation (``.pth``/``.ckpt``) a user already has.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conform_core.exceptions import DataFileError, ShapeError
from conform_core.io import atomic_path, write_json, write_text

from ._torch import torch
from .network import BraInCoRLConfig, BraInCoRLNetwork, preset_config

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "load_checkpoint",
    "load_official_checkpoint",
    "save_checkpoint",
    "weights_path",
    "check_feature_space",
    "read_description",
    "UNKNOWN_FEATURE_SPACE",
]

#: Name and version written into every checkpoint.
CHECKPOINT_FORMAT = {"name": "conform-braincorl", "version": 1}
WEIGHTS_FILE, CONFIG_FILE, CARD_FILE = "model.safetensors", "config.json", "model_card.md"
_META_KEY = "conform_braincorl"
#: The feature space of features whose origin is not known (checked by dimension only).
UNKNOWN_FEATURE_SPACE = ""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network (in eval mode) and what it was trained on.

    Attributes
    ----------
    network : BraInCoRLNetwork
    feature_space : str
        Id of the embedding space the model reads (``""``: unknown, checked by dimension only).
    info : dict
        The rest of the configuration: ``excluded_stimuli``, ``training``, ``validation``...
    path : Path or None
        Where it was read from.
    """

    network: BraInCoRLNetwork
    feature_space: str = UNKNOWN_FEATURE_SPACE
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def config(self) -> BraInCoRLConfig:
        """The network's sizes."""
        return self.network.config

    @property
    def embed_dim(self) -> int:
        """Length of the embeddings the model reads."""
        return self.network.config.embed_dim

    def describe(self) -> dict[str, Any]:
        """Return the JSON-ready configuration written to ``config.json``."""
        return {"format": CHECKPOINT_FORMAT, "model": self.config.as_dict(),
                "feature_space": self.feature_space, "embed_dim": self.embed_dim,
                **self.info}


def save_checkpoint(checkpoint: Checkpoint, folder: str | os.PathLike[str],
                    card: str | None = None) -> Path:
    """Write ``checkpoint`` to ``folder`` (created if needed); return the weights file's path.

    The weights file is complete before it replaces an older one; ``config.json`` and the
    model card are written after it (each atomically).
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    described = checkpoint.describe()
    state = {k: v.detach().to("cpu").contiguous()
             for k, v in checkpoint.network.state_dict().items()}
    weights = folder / WEIGHTS_FILE
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={_META_KEY: json.dumps(described)})
    write_json(folder / CONFIG_FILE, described)
    if card is not None:
        write_text(folder / CARD_FILE, card)
    return weights


def weights_path(path: str | os.PathLike[str]) -> Path:
    """Return the weights file of a checkpoint folder (or the file itself), which must exist."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise DataFileError(
            f"No BraInCoRL checkpoint at {str(path)!r}. Pass the folder written by `conform "
            f"braincorl train` (it holds {WEIGHTS_FILE}), or convert official weights with "
            "`conform braincorl import-official`.")
    return path


def load_checkpoint(path: str | os.PathLike[str], *, device: str | Any = "cpu") -> Checkpoint:
    """Read a checkpoint folder (or its ``model.safetensors``); the network is in eval mode.

    Raises
    ------
    DataFileError
        If the file is missing, truncated or corrupt, not a conform BraInCoRL checkpoint,
        or its tensors do not match its configuration.
    """
    from safetensors.torch import load_file

    weights = weights_path(path)
    described = read_description(weights)
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise DataFileError(_unreadable(weights, exc)) from None
    version = described.get("format", {}).get("version")
    if version != CHECKPOINT_FORMAT["version"]:
        raise DataFileError(
            f"{str(weights)!r} has checkpoint format version {version!r}; this conform reads "
            f"version {CHECKPOINT_FORMAT['version']}. Upgrade conform-fmri.")
    config = BraInCoRLConfig.from_dict(described.pop("model"))
    network = _network_from_state(config, state, str(weights))
    info = {k: v for k, v in described.items() if k not in ("format", "feature_space",
                                                           "embed_dim")}
    return Checkpoint(network=network.to(device).eval(),
                      feature_space=str(described.get("feature_space", "")), info=info,
                      path=weights.parent)


def _network_from_state(config: BraInCoRLConfig, state: dict[str, Any], source: str
                        ) -> BraInCoRLNetwork:
    """Build a network of ``config`` and load ``state``, naming any key or shape mismatch."""
    network = BraInCoRLNetwork(config)
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]!r})")
        if wrong:
            k = wrong[0]
            detail.append(f"{len(wrong)} with another shape (e.g. {k!r}: {got[k]} in the file, "
                          f"{expected[k]} for this model)")
        raise DataFileError(
            f"The weights in {source!r} do not fit a BraInCoRL network of embed_dim="
            f"{config.embed_dim}, internal_emb_dim={config.internal_emb_dim}, "
            f"num_tsfm_layers={config.num_tsfm_layers}: tensors {'; '.join(detail)}. Pick the "
            "preset the weights were trained with (clip: 512-d features, dino: 768, siglip: "
            "1152).")
    network.load_state_dict(state)
    return network


def load_official_checkpoint(path: str | os.PathLike[str], preset: str = "clip", *,
                             feature_space: str = UNKNOWN_FEATURE_SPACE,
                             **sizes: Any) -> Checkpoint:
    """Load weights saved by the official BraInCoRL code (a plain state-dict load).

    Accepts a ``torch.save``'d state dict, or a dict holding one under ``state_dict`` /
    ``model_state_dict`` (Lightning checkpoints), with or without a ``model.`` prefix on the
    keys. Nothing is downloaded: ``path`` is a file you already have.

    Parameters
    ----------
    path : path
        The ``.pth`` / ``.ckpt`` file.
    preset : {"clip", "dino", "siglip"}, default="clip"
        The published configuration the weights belong to.
    feature_space : str, default=""
        Id of the embeddings these weights expect, e.g. ``clip:ViT-B-32:<weights sha256>``
        (recorded so the model is never applied to another backbone's features).
    **sizes
        Any size of :class:`BraInCoRLConfig` that differs from the preset.

    Raises
    ------
    DataFileError
        For a file that cannot be read, or tensors whose names or shapes differ from the preset.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"No file {str(path)!r}. Pass the path of the official .pth file "
                            "you downloaded (conform never downloads weights).")
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataFileError(f"Cannot read {str(path)!r} as a torch state dict: {exc}. Check that "
                            "the download is complete.") from None
    for key in ("state_dict", "model_state_dict"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    if not isinstance(raw, dict):
        raise DataFileError(f"{str(path)!r} holds a {type(raw).__name__}, not a state dict.")
    state = {}
    for key, value in raw.items():
        for prefix in ("model.", "module."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = value
    config = preset_config(preset, **sizes)
    network = _network_from_state(config, state, str(path))
    return Checkpoint(network=network.eval(), feature_space=feature_space,
                      info={"source": {"official": str(path.name), "preset": preset}},
                      path=path.parent)


def _unreadable(weights: Path, exc: Exception) -> str:
    return (f"Cannot read the BraInCoRL checkpoint {str(weights)!r}: {exc}. The file is "
            "truncated or corrupt; use another copy, or retrain (`conform braincorl train "
            "SPEC --out DIR --resume` continues from the last good training state).")


def read_description(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return a checkpoint's configuration from its weights file's header, loading no tensor.

    Raises
    ------
    DataFileError
        As :func:`load_checkpoint`, for a missing, unreadable or foreign file.
    """
    from safetensors import safe_open

    weights = weights_path(path)
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise DataFileError(_unreadable(weights, exc)) from None
    if _META_KEY not in metadata:
        raise DataFileError(
            f"{str(weights)!r} is a safetensors file but not a conform BraInCoRL checkpoint (its "
            "header has no configuration). Official weights load with "
            "`conform braincorl import-official PATH --preset clip --out DIR`.")
    return dict(json.loads(metadata[_META_KEY]))


def check_feature_space(checkpoint: Checkpoint | dict[str, Any], feature_space: str,
                        n_features: int | None, where: str = "the model") -> None:
    """Refuse features from another embedding space or of another dimension.

    Parameters
    ----------
    checkpoint : Checkpoint or dict
        A loaded checkpoint, or its description (:func:`read_description`).
    feature_space : str
        Id of the features given (``""``: unknown, only the dimension is checked).
    n_features : int or None
        Their dimension (None: not known yet).
    where : str
        How to name the model in the message.

    Raises
    ------
    ShapeError
        If ``n_features`` differs from the model's ``embed_dim``, or both feature spaces are
        known and differ.
    """
    if isinstance(checkpoint, Checkpoint):
        embed_dim, expected = checkpoint.embed_dim, checkpoint.feature_space
        if checkpoint.path is not None:
            where = f"the checkpoint {str(checkpoint.path)!r}"
    else:
        embed_dim, expected = int(checkpoint["embed_dim"]), str(checkpoint["feature_space"])
    if n_features is not None and n_features != embed_dim:
        raise ShapeError(
            f"The features have {n_features} dimensions but {where} reads {embed_dim}-d "
            f"embeddings (feature space {expected or 'unrecorded'!r}). Use the features the "
            "model was trained on, or train a model on these features.")
    if feature_space and expected and feature_space != expected:
        raise ShapeError(
            f"The features come from feature space {feature_space!r} but {where} was trained "
            f"on {expected!r}. A model must only read embeddings of the backbone it was "
            "trained with: use those features, or train a model on these.")
