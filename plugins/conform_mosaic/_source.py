"""Finding MOSAIC files, opening them read-only, indexing trials and streaming betas.

Three layouts hold the same per-subject content (``docs/mosaic.md``):

- ``subject``: one file ``sub-XX_<CODE>.hdf5`` per subject, one dataset per trial;
- ``merged-ind``: one file, one top-level group per subject holding a copy of its file;
- ``merged-chunks``: one file, per subject a 2-D float32 ``betas`` (trials x 91282) whose rows
  follow the subject file's key order, the keys being the names in its ``nan_indices`` group.

Reading never loads a whole file: betas are read one trial (or one 100-row chunk) at a time
into a small buffer and copied into the output array, so memory is bounded by the output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError

from ._spec import N_VERTICES, REQUIRED_ATTRIBUTES, BetaKey, parse_beta_key, parse_file_name

__all__ = [
    "SubjectSource",
    "TrialIndex",
    "as_str",
    "discover",
    "open_h5",
    "read_attributes",
    "read_betas",
    "read_index",
    "read_subject",
]

_FIX_FILE = (
    "Re-download or re-create it (check its crc32), then run `conform mosaic validate FILE`."
)


@dataclass(frozen=True)
class SubjectSource:
    """Where one subject's data lives: file, group inside it and layout."""

    name: str
    code: str
    path: Path
    group: str
    layout: str

    @property
    def where(self) -> str:
        """File (and group) for messages."""
        return str(self.path) if self.group == "/" else f"{self.path}:/{self.group}"


@dataclass(frozen=True, eq=False)
class TrialIndex:
    """Per-trial metadata of one subject, in the order the file stores the trials."""

    keys: NDArray[np.str_]
    stimulus_ids: NDArray[np.str_]
    stems: NDArray[np.str_]
    phases: NDArray[np.str_]
    repetitions: NDArray[np.int64]
    nan_indices: list[NDArray[np.int64]]


def as_str(value: Any) -> Any:
    """Decode bytes/numpy strings from h5py attributes into ``str`` (other values unchanged)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item().decode() if isinstance(value.item(), bytes) else value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.ndim == 0:
        return as_str(value[()])
    return value


def open_h5(path: str | os.PathLike[str]) -> h5py.File:
    """Open an HDF5 file read-only, turning every failure into a :class:`DataFileError`."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"MOSAIC file {str(path)!r} does not exist. Check the path (files are "
            "named sub-XX_<CODE>.hdf5)."
        )
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError:
        is_hdf5 = False
    if not is_hdf5:
        raise DataFileError(
            f"{str(path)!r} is not an HDF5 file (no HDF5 signature; truncated to nothing "
            f"or another format). {_FIX_FILE}"
        )
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataFileError(
            f"{str(path)!r} could not be opened as HDF5 ({exc}); the file is probably "
            f"truncated or corrupt. {_FIX_FILE}"
        ) from exc


def discover(location: str | os.PathLike[str], layout: str = "auto") -> list[SubjectSource]:
    """List the subjects under ``location`` (a folder or one file), sorted by name.

    Per-subject files win over merged files for a subject found in both (``layout="auto"``).
    """
    root = Path(location)
    if not root.exists():
        raise DataFileError(
            f"MOSAIC location {str(root)!r} does not exist. Pass the folder that "
            "holds the sub-XX_<CODE>.hdf5 files (or a merged mosaic_*.hdf5 file)."
        )
    files = (
        [root]
        if root.is_file()
        else sorted(
            p for p in root.iterdir() if p.suffix in (".hdf5", ".h5") and not p.name.startswith(".")
        )
    )
    found: dict[str, SubjectSource] = {}
    merged: list[SubjectSource] = []
    for path in files:
        parsed = parse_file_name(path)
        if parsed is not None:
            if layout in ("auto", "subject"):
                found.setdefault(
                    parsed.name, SubjectSource(parsed.name, parsed.code, path, "/", "subject")
                )
        elif layout != "subject":
            merged.extend(_merged_sources(path))
    for source in merged:
        if layout in ("auto", source.layout):
            found.setdefault(source.name, source)
    return [found[k] for k in sorted(found)]


def _merged_sources(path: Path) -> list[SubjectSource]:
    with open_h5(path) as h5:
        out = []
        for name, item in h5.items():
            parsed = parse_file_name(f"{name}.hdf5")
            if parsed is None or not isinstance(item, h5py.Group) or "betas" not in item:
                continue
            kind = "merged-chunks" if isinstance(item["betas"], h5py.Dataset) else "merged-ind"
            out.append(SubjectSource(parsed.name, parsed.code, path, name, kind))
        return out


def group_of(h5: h5py.File, source: SubjectSource) -> h5py.Group:
    """Return the group that plays the role of a subject file's root."""
    return h5 if source.group == "/" else h5[source.group]


def read_attributes(h5: h5py.File, source: SubjectSource, *, strict: bool = True) -> dict[str, Any]:
    """Root attributes of a subject (decoded); raise when a required one is missing and ``strict``."""
    attrs = {k: as_str(v) for k, v in group_of(h5, source).attrs.items()}
    missing = [k for k in REQUIRED_ATTRIBUTES if k not in attrs]
    if strict and missing:
        raise DataFileError(
            f"{source.where}: required root attribute(s) {missing} missing. Every MOSAIC file carries "
            f"{', '.join(REQUIRED_ATTRIBUTES)}; add them (h5py: f.attrs['{missing[0]}'] = ...) or re-create "
            "the file with conform_mosaic.write_subject."
        )
    return attrs


def beta_keys(h5: h5py.File, source: SubjectSource) -> list[str]:
    """Trial keys in stored order (for merged-chunks: the names of its ``nan_indices`` group)."""
    group = group_of(h5, source)
    if "betas" not in group:
        raise DataFileError(
            f"{source.where}: no 'betas' group. A MOSAIC subject file holds one dataset "
            f"per trial under /betas. {_FIX_FILE}"
        )
    if source.layout == "merged-chunks":
        return list(group["nan_indices"].keys()) if "nan_indices" in group else []
    return list(group["betas"].keys())


def read_index(
    h5: h5py.File,
    source: SubjectSource,
    select: NDArray[np.bool_] | None = None,
    *,
    parsed: list[BetaKey] | None = None,
) -> TrialIndex:
    """Read every trial's key, and the attributes of the trials in ``select`` (default: all).

    Trials not selected get an empty stimulus id and no ``nan_indices`` (they are not read:
    each attribute costs an HDF5 object-header access). The ``phase`` and ``repetition``
    attributes repeat the key and are checked by :func:`~conform_mosaic.validate`, not here.
    ``parsed``: the keys already parsed (in file order), to skip parsing them again.
    """
    group = group_of(h5, source)
    keys = beta_keys(h5, source)
    if parsed is None or len(parsed) != len(keys):
        parsed = [parse_beta_key(k, where=source.where) for k in keys]
    empty = np.zeros(0, np.int64)
    wanted = np.ones(len(keys), bool) if select is None else np.asarray(select, bool)
    stim = [""] * len(keys)
    nans = [empty] * len(keys)
    if source.layout == "merged-chunks":
        betas = group["betas"]
        if betas.ndim != 2 or betas.shape[1] != N_VERTICES or betas.shape[0] != len(keys):
            raise DataFileError(
                f"{source.where}: 'betas' has shape {betas.shape} but {len(keys)} keys are listed in "
                f"'nan_indices'; expected ({len(keys)}, {N_VERTICES}). {_FIX_FILE}"
            )
        stim = [as_str(s) for s in group["presented_stimulus_filename"][()]]
        for i in np.flatnonzero(wanted).tolist():
            nans[i] = np.asarray(group["nan_indices"][keys[i]][()], dtype=np.int64).reshape(-1)
    else:
        group_id = group["betas"].id
        for i in np.flatnonzero(wanted).tolist():
            dataset = _open_dataset(group_id, keys[i], source)
            nans[i], stim[i] = _trial_attributes(dataset, keys[i], source)
    return TrialIndex(
        keys=np.array(keys, dtype=str),
        stimulus_ids=np.array(stim, dtype=str),
        stems=np.array([p.stem for p in parsed], dtype=str),
        phases=np.array([p.phase for p in parsed], dtype=str),
        repetitions=np.array([p.repetition for p in parsed], dtype=np.int64),
        nan_indices=nans,
    )


def read_subject(
    h5: h5py.File,
    source: SubjectSource,
    select: NDArray[np.bool_],
    vertices: NDArray[np.int64],
    dtype: np.dtype[Any],
    *,
    parsed: list[BetaKey] | None = None,
) -> tuple[TrialIndex, NDArray[np.floating]]:
    """Return the index (attributes of the ``select``-ed trials) and their betas at ``vertices``.

    For the per-trial layouts each trial is opened once: its attributes are read right before
    its betas (one pass over the file, instead of :func:`read_index` then :func:`read_betas`).
    """
    rows = np.flatnonzero(np.asarray(select, bool))
    if source.layout == "merged-chunks":
        index = read_index(h5, source, select, parsed=parsed)
        return index, read_betas(h5, source, index, rows, vertices, dtype)
    index = read_index(h5, source, np.zeros(len(select), bool), parsed=parsed)
    stim = index.stimulus_ids.tolist()
    out = _read_betas(h5, source, index, rows, vertices, dtype, stim)
    return replace(index, stimulus_ids=np.array(stim, dtype=str)), out


def _trial_attributes(
    dataset: h5py.h5d.DatasetID, key: str, source: SubjectSource
) -> tuple[NDArray[np.int64], str]:
    """Check a trial's shape; return its ``nan_indices`` and ``presented_stimulus_filename``."""
    if dataset.shape != (N_VERTICES,):
        raise DataFileError(
            f"{source.where}: beta {key!r} has shape {dataset.shape}; MOSAIC betas are "
            f"({N_VERTICES},) vectors on the fsLR 91k grayordinates. Resample the trial to "
            "fsLR 91k (fMRIPrep space-fsLR_den-91k) and re-write it."
        )
    try:
        nan = np.asarray(_attribute(dataset, "nan_indices")).astype(np.int64).reshape(-1)
        return nan, str(as_str(_attribute(dataset, "presented_stimulus_filename")))
    except KeyError:
        attrs = h5py.Dataset(dataset).attrs
        missing = [a for a in ("nan_indices", "presented_stimulus_filename") if a not in attrs]
        raise DataFileError(
            f"{source.where}: beta {key!r} lacks attribute(s) {missing}. Add them (nan_indices "
            "int64, presented_stimulus_filename str) or re-create the file with "
            "conform_mosaic.write_subject."
        ) from None


def _open_dataset(
    group_id: h5py.h5g.GroupID, key: str, source: SubjectSource
) -> h5py.h5d.DatasetID:
    """Open ``key`` of a group through the low-level API.

    Several times faster per trial than ``group[key]``; a member that is not a dataset is a
    :class:`DataFileError`.
    """
    try:
        return h5py.h5d.open(group_id, key.encode("utf-8"))
    except KeyError:  # listed by the group, so it exists: it is not a dataset
        raise DataFileError(
            f"{source.where}: /betas/{key} is not a dataset. /betas holds one float64 ({N_VERTICES},) "
            f"dataset per trial; remove or move that member. {_FIX_FILE}"
        ) from None


def _attribute(dataset: h5py.h5d.DatasetID, name: str) -> Any:
    """Attribute ``name`` of a low-level dataset id; KeyError when absent.

    Reading through ``h5a`` costs a fraction of ``Dataset.attrs[name]`` (which builds a Dataset
    and an AttributeManager and derives the numpy dtype each time). Only the two types the
    specification prescribes take the direct path, after checking the stored type: an integer
    array that fits int64 (read as int64) and a scalar UTF-8 variable-length string (what h5py writes for a
    ``str``). Anything else goes through ``attrs`` exactly as before.
    """
    attr = h5py.h5a.open(dataset, name.encode("utf-8"))
    shape = attr.shape
    if shape is not None:
        kind = attr.get_type()
        if isinstance(kind, h5py.h5t.TypeIntegerID) and (
            kind.get_sign() == h5py.h5t.SGN_2 or kind.get_size() < 8
        ):
            value = np.empty(shape, dtype=np.int64)
            attr.read(value, mtype=h5py.h5t.NATIVE_INT64)
            return value
        if (
            shape == ()
            and isinstance(kind, h5py.h5t.TypeStringID)
            and kind.is_variable_str()
            and kind.get_cset() == h5py.h5t.CSET_UTF8
        ):
            value = np.zeros((), dtype=_STR_DTYPE)
            attr.read(value, mtype=_VLEN_STR)  # as AttributeManager does: bytes, then decode
            return value[()].decode("utf-8", "surrogateescape")
    return h5py.Dataset(dataset).attrs[name]


_STR_DTYPE = h5py.string_dtype()
_VLEN_STR = h5py.h5t.py_create(_STR_DTYPE)  # the memory type h5py reads str attributes with


_MAX_RUNS = 4096  # above this many runs, reading the span and indexing in memory is faster


def _runs(vertices: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return starts and lengths of the runs of consecutive values in sorted ``vertices``."""
    breaks = np.flatnonzero(np.diff(vertices) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(vertices)]])
    return vertices[starts], ends - starts


def _blocks(rows: NDArray[np.int64], size: int) -> Iterator[tuple[int, NDArray[np.int64]]]:
    """Group sorted row numbers by the ``size``-row chunk they fall in."""
    chunk = rows // size
    for c in np.unique(chunk):
        yield int(c) * size, np.flatnonzero(chunk == c)


def read_betas(
    h5: h5py.File,
    source: SubjectSource,
    index: TrialIndex,
    rows: NDArray[np.int64],
    vertices: NDArray[np.int64],
    dtype: np.dtype[Any],
) -> NDArray[np.floating]:
    """Read trials ``rows`` (positions in ``index``) at sorted ``vertices`` into a new array.

    Non-finite values become NaN; every row is checked against its ``nan_indices`` right after
    it is read (while it is still in the CPU cache), so the output is traversed once.
    """
    return _read_betas(h5, source, index, rows, vertices, dtype, None)


def _read_betas(
    h5: h5py.File,
    source: SubjectSource,
    index: TrialIndex,
    rows: NDArray[np.int64],
    vertices: NDArray[np.int64],
    dtype: np.dtype[Any],
    stim: list[str] | None,
) -> NDArray[np.floating]:
    """Read betas as :func:`read_betas` does, and each row's attributes with ``stim``.

    With ``stim`` (per-trial layouts only) each row's attributes are read first, into
    ``index.nan_indices`` and ``stim``.
    """
    out = np.empty((len(rows), len(vertices)), dtype=dtype)
    if len(rows) == 0 or len(vertices) == 0:
        return out
    lo, hi = int(vertices[0]), int(vertices[-1]) + 1
    contiguous = hi - lo == len(vertices)
    local = None if contiguous else vertices - lo
    group = group_of(h5, source)
    check = _NanCheck(source, index, vertices)
    try:
        if source.layout == "merged-chunks":
            data = group["betas"]
            size = (data.chunks or (100,))[0]
            order = np.argsort(rows, kind="stable")
            sorted_rows = rows[order]
            buffer = np.empty((size, hi - lo), dtype=data.dtype)
            for start, members in _blocks(sorted_rows, size):
                stop = min(start + size, data.shape[0])
                view = buffer[: stop - start]
                data.read_direct(view, np.s_[start:stop, lo:hi])
                taken = view[sorted_rows[members] - start]
                targets = order[members]
                out[targets] = taken if contiguous else taken[:, local]
                for i in targets.tolist():
                    check(out[i], int(rows[i]))
        else:
            # Low-level reads with the selections built once: h5py's Dataset/read_direct
            # rebuild them (and a Dataset object) for every trial.
            group_id = group["betas"].id
            keys = [index.keys[row].encode("utf-8") for row in rows.tolist()]
            file_space = h5py.h5s.create_simple((N_VERTICES,))
            starts, counts = _runs(vertices) if local is not None else (None, None)
            spread = starts is not None and len(starts) > _MAX_RUNS
            if starts is None or spread:  # one span lo:hi (for a spread set: into a buffer)
                file_space.select_hyperslab((lo,), (hi - lo,))
                memory_space = h5py.h5s.create_simple((hi - lo,))
            else:  # one hyperslab per run of consecutive vertices, straight into the output row
                file_space.select_none()
                for start, count in zip(starts.tolist(), counts.tolist()):
                    file_space.select_hyperslab((start,), (count,), op=h5py.h5s.SELECT_OR)
                memory_space = h5py.h5s.create_simple((len(vertices),))
            buffer = np.empty(hi - lo, dtype=np.float64) if spread else None
            for i, row in enumerate(rows.tolist()):
                if stim is None:
                    dataset = h5py.h5d.open(group_id, keys[i])
                else:  # one open per trial: its attributes, then its betas
                    key = str(index.keys[row])
                    dataset = _open_dataset(group_id, key, source)
                    index.nan_indices[row], stim[row] = _trial_attributes(dataset, key, source)
                if buffer is None:
                    dataset.read(memory_space, file_space, out[i])
                else:
                    dataset.read(memory_space, file_space, buffer)
                    np.take(buffer, local, out=out[i])
                check(out[i], row)
    except OSError as exc:
        raise DataFileError(
            f"{source.where}: reading betas failed ({exc}); the file is probably "
            f"truncated or corrupt. {_FIX_FILE}"
        ) from exc
    return out


class _NanCheck:
    """Compare one row's non-finite values with its trial's ``nan_indices``; make them NaN.

    Fast path (almost every row): the row's sum is finite, so it holds no NaN/inf (both
    propagate through a sum; a finite overflow only sends the row to the exact check), and it
    passes when none of its listed NaN vertices is among the vertices read. Otherwise the exact
    comparison runs with one reused boolean buffer.
    """

    def __init__(
        self, source: SubjectSource, index: TrialIndex, vertices: NDArray[np.int64]
    ) -> None:
        self.source = source
        self.index = index
        self.vertices = vertices
        self.mask = np.empty(len(vertices), dtype=bool)

    def expected(self, listed: NDArray[np.int64]) -> NDArray[np.int64]:
        """Return the listed NaN vertices among those read, sorted."""
        if listed.size == 0:
            return listed
        return np.intersect1d(listed, self.vertices)

    def __call__(self, values: NDArray[np.floating], row: int) -> None:
        listed = self.index.nan_indices[row]
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(values)
        if np.isfinite(total):
            expected = self.expected(listed)
            if expected.size == 0:
                return
            got = self.vertices[:0]
        else:
            finite = np.isfinite(values, out=self.mask)
            bad = np.logical_not(finite, out=self.mask)
            got = self.vertices[bad]
            expected = self.expected(listed)
            if np.array_equal(expected, got):
                values[bad] = np.nan
                return
        extra = np.setdiff1d(got, expected)[:5].tolist()
        absent = np.setdiff1d(expected, got)[:5].tolist()
        raise DataFileError(
            f"{self.source.where}: trial {self.index.keys[row]!r} has nan_indices that disagree "
            f"with its data (non-finite but not listed: {extra}; listed but finite: {absent}). "
            "Set the attribute to np.flatnonzero(~np.isfinite(beta)) or re-create the file "
            "with conform_mosaic.write_subject."
        )
