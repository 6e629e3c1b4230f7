"""Files: official-format outputs, NIfTI/GIFTI/CIFTI runs, BIDS events.tsv tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.io import atomic_write

__all__ = ["FORMATS", "ID_COLUMNS", "group_hemispheres", "load_output",
           "load_run", "load_runs", "read_events", "run_header", "save_output", "write_outputs"]

#: Output formats: plain .npy per key in a folder per file (no pickle, any size), HDF5, and
#: the official single pickled ``.npy`` dict per file.
FORMATS = ("npy", "hdf5", "npy-pickle")

#: Columns tried, in order, for the stimulus id of an event.
ID_COLUMNS = ("stimulus_id", "trial_type", "stim_file")


def _save_pickled(path: Path, obj: Any) -> None:
    with atomic_write(path, "wb") as handle:
        np.save(handle, obj, allow_pickle=True)  # type: ignore[arg-type]


def _plain(value: Any) -> NDArray[Any] | None:
    """``value`` as an array numpy saves without pickle, or None when it needs a container."""
    if isinstance(value, (dict, list, tuple)) and not (
            isinstance(value, (list, tuple)) and value and all(np.isscalar(v) for v in value)):
        return None
    arr = np.asarray(value)
    return None if arr.dtype == object else arr


def _save_npy_folder(folder: Path, obj: dict[str, Any]) -> None:
    """Write a dict as a folder: one plain ``.npy`` per array, a sub-folder per list or dict.

    ``index.json`` lists every key with its kind (``array``, ``list``, ``dict``, ``none``,
    ``bool``), so :func:`load_output` rebuilds the dict exactly; nothing is pickled.
    """
    import json

    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    for key, val in obj.items():
        name = str(key)
        if val is None:
            index[name] = "none"
            continue
        if isinstance(val, (bool, np.bool_)) and not isinstance(val, np.ndarray):
            index[name] = "bool"
            val = np.asarray(val)
        arr = _plain(val)
        if arr is not None:
            index.setdefault(name, "array")
            with atomic_write(folder / f"{name}.npy", "wb") as handle:
                np.save(handle, arr, allow_pickle=False)  # type: ignore[arg-type]
        elif isinstance(val, dict):
            index[name] = "dict"
            _save_npy_folder(folder / name, val)
        else:
            index[name] = "list"
            _save_npy_folder(folder / name, {str(i): v for i, v in enumerate(val)})
    with atomic_write(folder / "index.json", "w") as handle:
        handle.write(json.dumps(index, indent=1) + "\n")


def _load_npy_folder(folder: Path) -> dict[str, Any]:
    import json

    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for name, kind in index.items():
        if kind == "none":
            out[name] = None
        elif kind == "dict":
            out[name] = _load_npy_folder(folder / name)
        elif kind == "list":
            sub = _load_npy_folder(folder / name)
            out[name] = [sub[str(i)] for i in range(len(sub))]
        else:
            arr = np.load(folder / f"{name}.npy", allow_pickle=False)
            out[name] = bool(arr) if kind == "bool" else arr
    return out


#: Attributes that mark how a group or dataset maps back to Python (the other attributes of
#: a group are its scalar values).
_RAGGED = "__glmsingle_ragged_list__"  # the official package's mark of a ragged list
_KIND = "conform:kind"  # "list" or "dict" (a group), "list" (a stacked dataset)


def _hdf5_put(group: Any, key: str, val: Any) -> None:
    """Store ``val`` under ``key`` the way the official ``save_glmsingle_outputs_h5`` does.

    None is an empty dataset, a scalar an attribute, a list of arrays of one shape one
    stacked dataset and a list of arrays of several shapes a group marked as a ragged list:
    the official ``load_glmsingle_outputs_h5`` reads them back (``pcnum``, ``noisepool=None``,
    ``pcregressors``). Other lists and dicts (DESIGNINFO only) are groups marked with their
    kind, which :func:`load_output` reads and the official loader skips.
    """
    import h5py

    if val is None:
        group.create_dataset(key, data=h5py.Empty("f"))
        return
    if isinstance(val, (str, bytes, bool, int, float, np.generic)):
        group.attrs[key] = val
        return
    if isinstance(val, (list, tuple)) and all(isinstance(v, np.ndarray) for v in val):
        shapes = {v.shape for v in val}
        if len(shapes) == 1 and all(v.dtype.kind in "biuf" for v in val):
            group.create_dataset(key, data=np.stack(val))
            group[key].attrs[_KIND] = "list"
            return
        sub = group.create_group(key)
        sub.attrs[_RAGGED] = True
        for i, v in enumerate(val):
            _hdf5_put(sub, str(i), v)
        return
    arr = _plain(val)
    if arr is not None:
        data = arr.astype("S") if arr.dtype.kind == "U" else arr
        group.create_dataset(key, data=data)
        if arr.dtype.kind == "U":
            group[key].attrs["unicode"] = 1
        if isinstance(val, (list, tuple)):
            group[key].attrs[_KIND] = "list"
        return
    sub = group.create_group(key)
    sub.attrs[_KIND] = "dict" if isinstance(val, dict) else "list"
    items = val.items() if isinstance(val, dict) else enumerate(val)
    for k, v in items:
        _hdf5_put(sub, str(k), v)


def _save_hdf5_tree(path: Path, obj: dict[str, Any]) -> None:
    """Write a dict to HDF5 that both loaders read (no pickle); see :func:`_hdf5_put`."""
    import h5py

    with atomic_write(path, "wb") as handle, h5py.File(handle, "w") as f:
        for key, val in obj.items():
            _hdf5_put(f, str(key), val)


def _hdf5_get(group: Any, top: bool = True) -> dict[str, Any]:
    """Read a group written by :func:`_hdf5_put`, by the official package or by conform < 0.2."""
    import h5py

    # conform < 0.2 marked sub-groups with "kind" and stored None as a "none:KEY" attribute
    legacy = not top and _KIND not in group.attrs and "kind" in group.attrs
    out: dict[str, Any] = {}
    for key, val in group.attrs.items():
        key = str(key)
        if key.startswith("none:") and (legacy or top):
            out[key[5:]] = None
        elif key not in (_RAGGED, _KIND) and not (legacy and key == "kind"):
            out[key] = val.item() if isinstance(val, np.generic) else val
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            sub = _hdf5_get(item, top=False)
            kind = item.attrs.get(_KIND, item.attrs.get("kind"))
            if item.attrs.get(_RAGGED) or kind == "list":
                out[key] = [sub[str(i)] for i in range(len(sub))]
            else:
                out[key] = sub
        elif item.shape is None:  # h5py.Empty: None
            out[key] = None
        else:
            val = item[()]
            if item.attrs.get("unicode"):
                val = np.asarray(val).astype(str)
            out[key] = list(val) if item.attrs.get(_KIND) == "list" else val
    return out


def save_output(folder: Path, stem: str, obj: dict[str, Any], fmt: str) -> Path:
    """Save one output dict as ``stem/`` (npy), ``stem.hdf5`` or ``stem.npy`` (npy-pickle).

    Returns the path written (a folder for ``npy``).
    """
    if fmt == "npy":
        path = folder / stem
        _save_npy_folder(path, obj)
    elif fmt == "hdf5":
        path = folder / f"{stem}.hdf5"
        _save_hdf5_tree(path, obj)
    elif fmt == "npy-pickle":
        path = folder / f"{stem}.npy"
        _save_pickled(path, obj)
    else:
        raise ParameterError(f"Output format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    return path


def load_output(path: str | Path) -> dict[str, Any]:
    """Load an output written in any format: a folder (npy), ``.hdf5`` or a pickled ``.npy``.

    Pickled files are the official format; load them only from a source you trust.
    """
    p = Path(path)
    if p.is_dir():
        return _load_npy_folder(p)
    if p.suffix == ".hdf5":
        import h5py

        with h5py.File(p, "r") as f:
            return _hdf5_get(f)
    return dict(np.load(p, allow_pickle=True).item())


def write_outputs(outputdir: Path, files: dict[str, dict[str, Any]], designinfo: dict[str, Any],
                  *, hdf5: bool, fmt: str | None = None) -> list[Path]:
    """Write the official output files into ``outputdir`` (created; nothing is deleted).

    Each file is written to a temporary name and renamed into place. With ``fmt=None`` (the
    official layout) ``.npy`` files hold a pickled dict (load with ``numpy.load(path,
    allow_pickle=True).item()``) and ``hdf5`` writes the types as ``.hdf5``; ``fmt`` in
    :data:`FORMATS` writes every file (DESIGNINFO too) in that format (:func:`save_output`).
    """
    outputdir.mkdir(parents=True, exist_ok=True)
    written = []
    if fmt is not None:
        written.append(save_output(outputdir, "DESIGNINFO", designinfo, fmt))
        for stem, content in files.items():
            written.append(save_output(outputdir, stem, content, fmt))
        return written
    path = outputdir / "DESIGNINFO.npy"
    _save_pickled(path, designinfo)
    written.append(path)
    for stem, content in files.items():
        path = outputdir / (stem + (".hdf5" if hdf5 else ".npy"))
        (_save_hdf5_tree if hdf5 else _save_pickled)(path, content)
        written.append(path)
    return written


def load_run(path: str | Path) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Load one run (NIfTI 4-D, GIFTI time series or CIFTI dtseries) as ``units x time``.

    Returns
    -------
    data : ndarray of shape (n_units, n_time), float32
    meta : dict
        ``kind`` ("nifti", "gifti", "cifti"), ``shape`` (spatial), ``affine`` and ``tr`` when
        the header has them.

    Raises
    ------
    DataFileError
        If the file is missing, unreadable or not a time series.
    """
    import nibabel as nib

    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"Run file {str(p)!r} does not exist. Pass NIfTI (.nii/.nii.gz), GIFTI "
                            "(.func.gii) or CIFTI (.dtseries.nii) time series.")
    try:
        img = nib.load(str(p))
        if isinstance(img, nib.gifti.GiftiImage):
            arrays = [np.asarray(d.data, np.float32) for d in img.darrays]
        else:  # the data are read (and decompressed) here: truncation shows up now
            arr = np.asarray(img.dataobj, dtype=np.float32)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel, gzip and zlib raise many types
        raise _read_error(p, exc) from None
    name = p.name
    if isinstance(img, nib.gifti.GiftiImage):
        if not arrays:
            raise DataFileError(f"GIFTI file {str(p)!r} holds no data arrays.")
        data = np.stack(arrays, axis=1) if arrays[0].ndim == 1 else arrays[0]
        structure = img.meta.get("AnatomicalStructurePrimary", "") if img.meta else ""
        if not structure:
            structure = _hemi_structure(p)
        return data, {"kind": "gifti", "shape": (data.shape[0],), "structure": structure,
                      "hemispheres": [(structure, int(data.shape[0]))]}
    if name.endswith(".dtseries.nii") or arr.ndim == 2:
        # CIFTI: time x grayordinates (a bare 2-D NIfTI: the longer axis is the units)
        is_cifti = isinstance(img, nib.cifti2.Cifti2Image)
        data = arr.T if is_cifti or arr.shape[0] < arr.shape[1] else arr
        meta: dict[str, Any] = {"kind": "cifti", "shape": (data.shape[0],)}
        if isinstance(img, nib.cifti2.Cifti2Image):
            try:
                meta["brain_models"] = img.header.get_axis(1)
                step = getattr(img.header.get_axis(0), "step", None)
                meta["tr"] = float(step) if step else None
            except Exception:  # noqa: BLE001 - a CIFTI without a usable header: no export
                pass
        return np.ascontiguousarray(data), meta
    if arr.ndim != 4:
        raise DataFileError(
            f"{str(p)!r} must be a 4-D NIfTI (x, y, z, time); got shape {arr.shape}."
        )
    zooms = img.header.get_zooms()
    meta = {
        "kind": "nifti",
        "shape": arr.shape[:3],
        "affine": img.affine,
        "header": img.header,
        "tr": float(zooms[3]) if len(zooms) > 3 else None,
    }
    return arr.reshape(-1, arr.shape[3]), meta


def _hemi_structure(path: Path) -> str:
    """GIFTI structure from a BIDS ``hemi-L``/``hemi-R`` entity in the name ('' if none)."""
    import re

    from ._export import structure_of

    found = re.search(r"(?:^|_)hemi-([LR])(?:_|\.)", path.name)
    return structure_of(found.group(1)) if found else ""


def group_hemispheres(paths: list[Path]) -> list[list[Path]]:
    """Pair per-hemisphere GIFTI runs (BIDS ``hemi-L``/``hemi-R``) into one run each.

    A file without a ``hemi-`` entity is a run of its own. Pairs keep the order of their
    first file; the left hemisphere comes first within a pair.

    Raises
    ------
    DataFileError
        If a hemisphere file has no partner of the other hemisphere.
    """
    import re

    groups: dict[str, list[Path]] = {}
    for p in paths:
        key = re.sub(r"(^|_)hemi-[LR](?=_|\.)", r"\1hemi-X", p.name)
        groups.setdefault(str(p.parent / key) if key != p.name else str(p), []).append(p)
    out = []
    for key, members in groups.items():
        if len(members) == 1 and "hemi-X" in Path(key).name:
            raise DataFileError(
                f"{str(members[0])!r} is one hemisphere of a run but its other hemisphere "
                "(hemi-L/hemi-R, same name otherwise) was not given. Pass both files of "
                "each run, or neither.")
        out.append(sorted(members, key=lambda q: "hemi-R" in q.name))
    return out


def load_runs(paths: list[Path]) -> tuple[NDArray[np.float32], dict[str, Any]]:
    """Load one run given as one file or as its two hemisphere files (units concatenated)."""
    loaded = [load_run(p) for p in paths]
    if len(loaded) == 1:
        return loaded[0]
    if any(m["kind"] != "gifti" for _, m in loaded) or len({d.shape[1] for d, _ in loaded}) > 1:
        raise DataFileError(
            f"Hemisphere files {[str(p) for p in paths]} must be GIFTI time series of the same "
            "length. Check that they belong to the same run.")
    data = np.concatenate([d for d, _ in loaded], axis=0)
    hemis = [(m["structure"], int(d.shape[0])) for d, m in loaded]
    return data, {"kind": "gifti", "shape": (data.shape[0],), "hemispheres": hemis}


def run_header(paths: list[Path]) -> dict[str, Any]:
    """Return what a run holds without reading its data: ``n_units``, ``n_times``, ``tr``, ``kind``.

    NIfTI and CIFTI headers are read alone; GIFTI files are read whole (they have no
    separate header).
    """
    import nibabel as nib

    n_units, n_times, tr, kind = 0, None, None, ""
    for p in paths:
        if not Path(p).is_file():
            raise DataFileError(f"Run file {str(p)!r} does not exist. Pass NIfTI (.nii/.nii.gz), "
                                "GIFTI (.func.gii) or CIFTI (.dtseries.nii) time series.")
        try:
            img = nib.load(str(p))
        except Exception as exc:  # noqa: BLE001 - nibabel raises many types
            raise _read_error(Path(p), exc) from None
        if isinstance(img, nib.gifti.GiftiImage):
            data, meta = load_run(p)
            n_units, n_times, kind = n_units + data.shape[0], data.shape[1], "gifti"
            continue
        shape = img.shape
        if isinstance(img, nib.cifti2.Cifti2Image) or len(shape) == 2:
            cifti = isinstance(img, nib.cifti2.Cifti2Image)
            t, u = (shape[0], shape[1]) if cifti or shape[0] < shape[1] else (shape[1], shape[0])
            n_units, n_times, kind = n_units + u, t, "cifti"
            step = getattr(img.header.get_axis(0), "step", None) if isinstance(
                img, nib.cifti2.Cifti2Image) else None
            tr = float(step) if step else None
        elif len(shape) == 4:
            n_units, n_times, kind = n_units + int(np.prod(shape[:3])), shape[3], "nifti"
            zooms = img.header.get_zooms()
            tr = float(zooms[3]) if len(zooms) > 3 else None
        else:
            raise DataFileError(f"{str(p)!r} must be a 4-D NIfTI (x, y, z, time); got shape "
                                f"{shape}.")
    return {"n_units": n_units, "n_times": int(n_times or 0), "tr": tr, "kind": kind}


def _read_error(path: Path, exc: Exception) -> DataFileError:
    """Return a DataFileError naming ``path``, what went wrong reading it and what to do."""
    from nibabel.filebasedimages import ImageFileError

    detail = " ".join(f"{type(exc).__name__}: {exc}".split())  # nibabel's messages span lines
    if isinstance(exc, PermissionError):
        return DataFileError(
            f"Run file {str(path)!r} cannot be read ({detail}). Check its "
            "permissions, or copy it somewhere you can read."
        )
    if isinstance(exc, ImageFileError):
        return DataFileError(
            f"Cannot read {str(path)!r} ({detail}). Pass NIfTI (.nii/.nii.gz), "
            "GIFTI (.func.gii) or CIFTI (.dtseries.nii) time series."
        )
    check = (
        " (`gzip -t FILE` tells whether a .gz file is whole)" if path.name.endswith(".gz") else ""
    )
    return DataFileError(
        f"Run file {str(path)!r} is truncated or corrupt ({detail}). Copy or export it again "
        f"from its source: an interrupted copy or download leaves a short file{check}."
    )


def read_events(
    path: str | Path, id_column: str | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.str_]]:
    """Read a BIDS ``events.tsv``: onset, duration, stimulus id (rows with n/a ids dropped)."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataFileError(
            f"Events file {str(p)!r} does not exist. Pass one BIDS events.tsv per run."
        )
    try:
        table = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas parser errors vary
        raise DataFileError(f"Cannot read {str(p)!r} as a tab-separated table ({exc}).") from None
    cols = [id_column] if id_column else [c for c in ID_COLUMNS if c in table.columns][:1]
    missing = [c for c in ["onset", "duration", *cols] if c not in table.columns]
    if missing or not cols:
        wanted = repr(id_column) + " (--id-column)" if id_column else " or ".join(ID_COLUMNS)
        raise DataFileError(
            f"{str(p)!r} needs columns onset, duration and the stimulus id column {wanted}; "
            f"has {list(table.columns)}. Name the column that identifies each stimulus with "
            "--id-column."
        )
    keep = ~table[cols[0]].isin(["", "n/a", "null"])
    table = table[keep]
    try:
        onset = table["onset"].astype(float).to_numpy()
        duration = table["duration"].astype(float).to_numpy()
    except ValueError as exc:
        raise DataFileError(f"{str(p)!r}: onset and duration must be numbers ({exc}).") from None
    return onset, duration, table[cols[0]].to_numpy().astype(str)

