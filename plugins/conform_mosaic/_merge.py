"""Merge per-subject MOSAIC files into one file (the ``mosaic_ind`` / ``mosaic_chunks`` layouts)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.io import atomic_path

from . import _source as src
from ._spec import N_VERTICES

__all__ = ["write_merged"]


def write_merged(
    files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    destination: str | os.PathLike[str],
    *,
    layout: str = "chunks",
    compression: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write several per-subject files as one merged file.

    Parameters
    ----------
    files : path or sequence of paths
        Per-subject files, or a folder holding them.
    destination : path
        The merged file (e.g. ``mosaic_chunks.hdf5``).
    layout : {"chunks", "ind"}, default="chunks"
        ``"ind"``: one group per subject with an exact copy of its file; ``"chunks"``: per
        subject a float32 2-D ``betas`` (trials x 91282, chunks of 100 rows) in the file's key
        order, ``presented_stimulus_filename``, a ``nan_indices`` group (one dataset per key,
        in order) and the ``noiseceilings`` group. Both add ``source_filename`` and a
        top-level ``nan_indices_all``.
    compression : str or None, default=None
        Filter for the 2-D betas (the released merged file is uncompressed).
    overwrite : bool, default=False
        Replace an existing file.
    """
    if layout not in ("chunks", "ind"):
        raise ParameterError(f"layout must be 'chunks' or 'ind'; got {layout!r}.")
    if isinstance(files, (str, os.PathLike)):
        sources = [s for s in src.discover(files, "subject")]
    else:
        sources = [src.discover(f, "subject")[0] for f in files]
    if not sources:
        raise DataFileError(f"No per-subject MOSAIC files (sub-XX_<CODE>.hdf5) in {files!r}.")
    dest = Path(destination)
    if dest.exists() and not overwrite:
        raise DataFileError(f"{str(dest)!r} already exists. Pass overwrite=True to replace it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp, h5py.File(tmp, "w", track_order=True) as out:
        union: set[int] = set()
        for source in sources:
            with src.open_h5(source.path) as h5:
                group = out.create_group(source.name, track_order=True)
                group.attrs["source_filename"] = source.path.name
                for key, value in h5.attrs.items():
                    group.attrs[key] = value
                if "nan_indices_all" in h5:
                    union.update(
                        np.asarray(h5["nan_indices_all"][()]).astype(np.int64).tolist()
                    )
                if layout == "ind":
                    for name in h5:
                        h5.copy(h5[name], group, name)
                else:
                    _write_chunks(h5, source, group, compression)
        out.create_dataset("nan_indices_all", data=np.array(sorted(union), dtype=np.int64))
    return dest


def _write_chunks(
    h5: h5py.File, source: src.SubjectSource, group: h5py.Group, compression: str | None
) -> None:
    index = src.read_index(h5, source)
    n = len(index.keys)
    rows = max(1, min(100, n))
    betas = group.create_dataset(
        "betas",
        shape=(n, N_VERTICES),
        dtype=np.float32,
        chunks=(rows, N_VERTICES),
        compression=compression,
    )
    buffer = np.empty((rows, N_VERTICES), np.float64)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        for i, key in enumerate(index.keys[start:stop].tolist()):
            h5["betas"][key].read_direct(buffer[i])
        betas[start:stop] = buffer[: stop - start].astype(np.float32)
    group.create_dataset(
        "presented_stimulus_filename",
        data=index.stimulus_ids.astype(object),
        dtype=h5py.string_dtype(),
        chunks=(rows,),
    )
    nans = group.create_group("nan_indices", track_order=True)
    for key, values in zip(index.keys.tolist(), index.nan_indices):
        nans.create_dataset(key, data=values.astype(np.int64))
    if "noiseceilings" in h5:
        h5.copy(h5["noiseceilings"], group, "noiseceilings")
