"""The ``braincorl`` encoder: a new person's voxel models from one forward pass per voxel.

``fit(X, Y)`` gives the meta-trained network each voxel's context (the rows of ``X`` with that
voxel's column of ``Y``) and stores the readout it emits: ``coef_`` (units x features) and
``intercept_``. No gradient step is taken. ``predict(X)`` is then a matrix product.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from conform_core.components import Encoder
from conform_core.constraints import Interval, NonEmptyStr, Options, PathLike
from conform_core.exceptions import ConformWarning, ParameterError, ShapeError
from conform_core.io import atomic_path

from ._embeddings import unit_normalize

__all__ = ["BraInCoRLEncoder", "voxels_per_chunk"]

#: Bytes the activations of one chunk of voxels may take when ``chunk_voxels=None``.
_CHUNK_BYTES = 1 << 28


def voxels_per_chunk(config: Any, n_context: int, budget: int = _CHUNK_BYTES) -> int:
    """Voxels whose forward pass fits in ``budget`` bytes of float32 activations.

    Per voxel and layer, the sequence of L = n_context + registers tokens holds about
    ``L (E + 1 + 2 early_hidden + 6 width + 3 tsfm_hidden)`` numbers (input pairs, the input
    MLP, attention projections, the SwiGLU halves) plus ``heads L²`` attention weights;
    without gradients one layer's worth is alive at a time.
    """
    length = n_context + config.num_reg_tok
    numbers = length * (config.embed_dim + 1 + 2 * config.early_hidden_dim
                        + 6 * config.internal_emb_dim + 3 * config.tsfm_hidden_dim)
    numbers += config.num_heads * length * length
    return max(1, budget // (4 * numbers))


@functools.lru_cache(maxsize=2)
def _cached_checkpoint(path: str, mtime_ns: int, size: int) -> Any:
    """One loaded (CPU, eval-mode) checkpoint per file version, shared by the cells of a fit."""
    from .checkpoint import load_checkpoint

    return load_checkpoint(path)


def _load(path: str | os.PathLike[str]) -> Any:
    from .checkpoint import weights_path

    weights = weights_path(path)
    stat = weights.stat()
    return _cached_checkpoint(str(weights.resolve()), stat.st_mtime_ns, stat.st_size)


class BraInCoRLEncoder(Encoder):
    """Infer each voxel's linear readout from its context with a meta-trained BraInCoRL model.

    A person's encoding model is fitted without training: for each voxel, the (image
    embedding, response) pairs given to ``fit`` go through the transformer once and it emits
    that voxel's weights and bias. Features are scaled to unit length first (the model was
    trained on unit-norm embeddings), so ``predict(X)`` is
    ``unit_normalize(X) @ coef_.T + intercept_`` — for unit-norm features exactly
    ``X @ coef_.T + intercept_``.

    Parameters
    ----------
    checkpoint : path
        A folder written by ``conform braincorl train`` (or ``import-official``), or its
        ``model.safetensors``.
    feature_space : str or None, default=None
        Id of the embedding space of the features you pass (e.g.
        ``clip:ViT-B-32:<weights sha256>``). When given, it must equal the checkpoint's; the
        feature dimension is always checked. ``conform fit`` fills it from the features stage.
    nan_policy : {"refuse", "mask"}, default="refuse"
        What to do with NaN responses in ``fit``: ``"refuse"`` raises; ``"mask"`` leaves each
        voxel's NaN images out of its context (a voxel with fewer than 2 finite responses
        gets a NaN readout, listed in ``masked_units_``, with a warning).
    chunk_voxels : int or None, default=None
        Voxels run through the network at once; None sizes chunks from the model's width and
        the context length so that one layer's activations stay near 256 MiB
        (:func:`voxels_per_chunk`). Results do not depend on it.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; on a GPU the forward pass runs in bfloat16.
    threads : int or None, default=1
        torch intra-op threads during ``fit`` (None: torch's default). One thread is fastest
        on small, shared machines.

    Attributes
    ----------
    coef_ : ndarray of shape (n_units, n_features), float32
        Each voxel's readout weights (for unit-norm features).
    intercept_ : ndarray of shape (n_units,), float32
    masked_units_ : ndarray of int
        Units whose readout is NaN (``nan_policy="mask"`` and < 2 finite responses).
    feature_space_ : str
        The checkpoint's feature space.
    n_context_ : int
        Number of context images ``fit`` saw.

    Examples
    --------
    In a ``conform fit`` spec::

        encoder = ["ridge", {plugin = "braincorl", checkpoint = "models/braincorl-clip"}]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "checkpoint": [PathLike("any")],
        "feature_space": [str, None],
        "nan_policy": [Options(("refuse", "mask"))],
        "chunk_voxels": [Interval(int, 1, None), None],
        "device": [NonEmptyStr()],
        "threads": [Interval(int, 1, None), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "checkpoint": "Pass $checkpoint=DIR, a folder written by `conform braincorl train`.",
        "chunk_voxels": "Use None to size chunks by memory.",
    }

    def __init__(self, checkpoint: str | os.PathLike[str] | None = None,
                 feature_space: str | None = None, nan_policy: str = "refuse",
                 chunk_voxels: int | None = None, device: str = "cpu",
                 threads: int | None = 1) -> None:
        self.checkpoint = checkpoint
        self.feature_space = feature_space
        self.nan_policy = nan_policy
        self.chunk_voxels = chunk_voxels
        self.device = device
        self.threads = threads

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        return tags

    def _check_params_extra(self) -> None:
        if self.checkpoint is None:
            raise ParameterError(param="checkpoint", value=None, owner=self,
                                 allowed="the folder of a trained model",
                                 fix=self._parameter_fixes["checkpoint"])

    def check_features(self, feature_space: str, n_features: int | None) -> None:
        """Refuse features of another dimension or embedding space than the checkpoint's.

        Reads only the checkpoint's header (no weights), so ``conform fit --check`` stays
        quick. ``feature_space`` (this encoder's parameter) wins over the one given when set.

        Raises
        ------
        ShapeError
            Naming both feature spaces (or dimensions) and the fix.
        DataFileError
            For a missing or unreadable checkpoint.
        """
        from .checkpoint import check_feature_space, read_description

        self.check_params()
        check_feature_space(read_description(self.checkpoint), self.feature_space or feature_space,
                            n_features, where=f"the checkpoint {str(self.checkpoint)!r}")

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, Y: Any) -> BraInCoRLEncoder:
        """Infer every voxel's readout from the context ``X`` (images x features), ``Y``.

        Raises
        ------
        ShapeError
            For fewer than 2 context images, NaN features, features of another dimension or
            feature space than the checkpoint's, NaN responses with ``nan_policy="refuse"``.
        DataFileError
            For a missing, truncated or corrupt checkpoint.
        """
        self.check_params()
        n = len(X) if hasattr(X, "__len__") else None
        if n is not None and n < 2:
            raise ShapeError(
                f"BraInCoRL needs at least 2 context images to infer a voxel's model; got {n}. "
                "Give fit the features and responses of 2 or more stimuli (tens to hundreds "
                "work best).")
        self._nan_mask = None
        values = None if Y is None else np.asarray(Y)
        missing = (np.isnan(values).reshape(len(values), -1)
                   if values is not None and values.dtype.kind == "f" and values.ndim in (1, 2)
                   else None)
        if missing is not None and missing.any() and self.nan_policy == "mask":
            self._nan_mask = missing
            Y = np.where(np.isnan(values), 0.0, values).astype(values.dtype, copy=False)
        elif missing is not None and missing.any():
            bad = np.flatnonzero(missing.any(axis=0))
            raise ShapeError(
                f"Y has NaN responses in unit(s) {bad[:5].tolist()} (of {bad.size}). Pass "
                "nan_policy='mask' to leave each voxel's missing images out of its context, or "
                "drop those units.")
        return super().fit(X, Y)  # type: ignore[return-value]

    def _fit(self, X: NDArray[np.floating], Y: NDArray[np.floating]) -> BraInCoRLEncoder:
        from ._torch import resolve_device, torch, torch_threads
        from .checkpoint import check_feature_space, load_checkpoint

        device = resolve_device(self.device)
        checkpoint = (_load(self.checkpoint) if device.type == "cpu"
                      else load_checkpoint(self.checkpoint, device=device))
        check_feature_space(checkpoint, self.feature_space or "", X.shape[1])
        Xn = unit_normalize(np.asarray(X, dtype=np.float32))
        Yf = np.asarray(Y, dtype=np.float32)
        n, v = Yf.shape
        mask = self._nan_mask
        readout = np.full((v, X.shape[1] + 1), np.nan, dtype=np.float32)
        groups: list[tuple[NDArray[np.bool_], NDArray[np.intp]]]
        if mask is None:
            groups = [(np.ones(n, dtype=bool), np.arange(v))]
        else:  # voxels that miss the same images share one context
            patterns, inverse = np.unique(~mask.T, axis=0, return_inverse=True)
            groups = [(patterns[g], np.flatnonzero(inverse.ravel() == g))
                      for g in range(len(patterns))]
        chunk = self.chunk_voxels or voxels_per_chunk(checkpoint.config, n)
        network = checkpoint.network
        with torch_threads(self.threads), torch.inference_mode():
            for keep, units in groups:
                if keep.sum() < 2:
                    continue
                context_x = torch.from_numpy(Xn[keep]).to(device)
                for start in range(0, units.size, chunk):
                    idx = units[start:start + chunk]
                    context_y = torch.from_numpy(
                        np.ascontiguousarray(Yf[np.ix_(keep, idx)].T)).to(device)
                    with torch.autocast(device.type, dtype=torch.bfloat16,
                                        enabled=device.type == "cuda"):
                        out = network(context_x.expand(idx.size, -1, -1), context_y)
                    readout[idx] = out.float().cpu().numpy()
        masked = np.flatnonzero(np.isnan(readout).any(axis=1))
        if masked.size:
            warnings.warn(
                f"{masked.size} unit(s) (e.g. {masked[:5].tolist()}) have fewer than 2 finite "
                "responses in the context; their readout is NaN (masked_units_).",
                ConformWarning, stacklevel=3)
        self.coef_ = readout[:, :-1]
        self.intercept_ = readout[:, -1]
        self.masked_units_ = masked
        self.feature_space_ = checkpoint.feature_space
        self.n_context_ = n
        return self

    def _predict(self, X: NDArray[np.floating]) -> NDArray[np.floating]:
        Xn = unit_normalize(X)
        out = Xn @ self.coef_.T.astype(X.dtype, copy=False)
        out += self.intercept_.astype(X.dtype, copy=False)
        return out

    # ------------------------------------------------------------------ export
    def export_readout(self, path: str | os.PathLike[str],
                       unit_ids: Any = None) -> Path:
        """Write the readout (weights and bias per unit) for interpretation.

        ``.npy``: an array of shape (n_units, n_features + 1), bias last. ``.parquet`` or
        ``.csv``: one row per unit, columns ``unit``, ``w0`` ... ``w{E-1}``, ``intercept``.
        Project it onto other embeddings (e.g. CLIP *text* embeddings of category names,
        unit-normalised) with ``predict`` to map each voxel's preferred concepts.

        Parameters
        ----------
        path : path
            Destination; the suffix picks the format. Written atomically.
        unit_ids : sequence of str, optional
            Names of the units (default ``0 .. n_units-1``).
        """
        from conform_core.components.base import check_is_fitted

        check_is_fitted(self, ["coef_"])
        path = Path(path)
        table = np.concatenate([self.coef_, self.intercept_[:, None]], axis=1)
        suffix = path.suffix.lower()
        if suffix not in (".npy", ".parquet", ".csv"):
            raise ParameterError(param="path", value=str(path), owner=self,
                                 allowed="a file name ending in .npy, .parquet or .csv",
                                 fix="Pick one of those suffixes.")
        with atomic_path(path) as tmp:
            if suffix == ".npy":
                with open(tmp, "wb") as handle:
                    np.save(handle, table)
            else:
                import pandas as pd

                ids = (np.arange(len(table)).astype(str) if unit_ids is None
                       else np.asarray(unit_ids, dtype=str))
                if ids.shape != (len(table),):
                    raise ShapeError(f"unit_ids has {ids.size} entries for {len(table)} units.")
                frame = pd.DataFrame(table[:, :-1], columns=[f"w{i}" for i in
                                                             range(table.shape[1] - 1)])
                frame.insert(0, "unit", ids)
                frame["intercept"] = table[:, -1]
                if suffix == ".csv":
                    frame.to_csv(tmp, index=False)
                else:
                    frame.to_parquet(tmp, index=False)
        return path

