"""Files: official-format outputs, NIfTI/GIFTI/CIFTI runs, BIDS events.tsv to designs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.io import atomic_write

__all__ = ["ID_COLUMNS", "events_to_design", "load_run", "read_events", "write_outputs"]

#: Columns tried, in order, for the stimulus id of an event.
ID_COLUMNS = ("stimulus_id", "trial_type", "stim_file")


def _save_pickled(path: Path, obj: Any) -> None:
    with atomic_write(path, "wb") as handle:
        np.save(handle, obj, allow_pickle=True)  # type: ignore[arg-type]


def _save_hdf5(path: Path, obj: dict[str, Any]) -> None:
    import h5py

    with atomic_write(path, "wb") as handle, h5py.File(handle, "w") as f:
        for key, val in obj.items():
            if val is None:
                continue
            if isinstance(val, list):
                grp = f.create_group(key)
                for i, item in enumerate(val):
                    grp.create_dataset(str(i), data=np.asarray(item))
            else:
                f.create_dataset(key, data=np.asarray(val))


def write_outputs(outputdir: Path, files: dict[str, dict[str, Any]], designinfo: dict[str, Any],
                  *, hdf5: bool) -> list[Path]:
    """Write the official output files into ``outputdir`` (created; nothing is deleted).

    Each file is written to a temporary name and renamed into place. ``.npy`` files hold a
    pickled dict (load with ``numpy.load(path, allow_pickle=True).item()``), as the official
    package writes them.
    """
    outputdir.mkdir(parents=True, exist_ok=True)
    written = []
    path = outputdir / "DESIGNINFO.npy"
    _save_pickled(path, designinfo)
    written.append(path)
    for stem, content in files.items():
        path = outputdir / (stem + (".hdf5" if hdf5 else ".npy"))
        (_save_hdf5 if hdf5 else _save_pickled)(path, content)
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
        return data, {"kind": "gifti", "shape": (data.shape[0],)}
    if name.endswith(".dtseries.nii") or arr.ndim == 2:
        # CIFTI: time x grayordinates
        data = arr.T if arr.shape[0] < arr.shape[1] else arr
        return np.ascontiguousarray(data), {"kind": "cifti", "shape": (data.shape[0],)}
    if arr.ndim != 4:
        raise DataFileError(
            f"{str(p)!r} must be a 4-D NIfTI (x, y, z, time); got shape {arr.shape}."
        )
    zooms = img.header.get_zooms()
    meta = {
        "kind": "nifti",
        "shape": arr.shape[:3],
        "affine": img.affine,
        "tr": float(zooms[3]) if len(zooms) > 3 else None,
    }
    return arr.reshape(-1, arr.shape[3]), meta


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
        raise DataFileError(
            f"{str(p)!r} needs columns onset, duration and a stimulus id column "
            f"({' or '.join(ID_COLUMNS)}); has {list(table.columns)}."
        )
    keep = ~table[cols[0]].isin(["", "n/a", "null"])
    table = table[keep]
    try:
        onset = table["onset"].astype(float).to_numpy()
        duration = table["duration"].astype(float).to_numpy()
    except ValueError as exc:
        raise DataFileError(f"{str(p)!r}: onset and duration must be numbers ({exc}).") from None
    return onset, duration, table[cols[0]].to_numpy().astype(str)


def events_to_design(
    onsets: list[NDArray[np.float64]],
    ids: list[NDArray[np.str_]],
    n_times: list[int],
    tr: float,
    *,
    tolerance: float = 0.01,
) -> tuple[list[NDArray[np.float64]], NDArray[np.str_]]:
    """Turn per-run onsets (s) and stimulus ids into GLMsingle's 0/1 onset matrices.

    Conditions are the sorted unique stimulus ids over all runs.

    Raises
    ------
    ParameterError
        If an onset is not on the TR grid (within ``tolerance`` TR), falls outside its run or
        shares its TR with another onset.
    """
    conditions = np.unique(np.concatenate([np.asarray(i, str) for i in ids]))
    col = {c: j for j, c in enumerate(conditions)}
    design = []
    for r, (ons, sid, n_t) in enumerate(zip(onsets, ids, n_times)):
        pos = np.asarray(ons, np.float64) / tr
        idx = np.round(pos).astype(np.int64)
        off = np.abs(pos - idx) > tolerance
        if off.any():
            bad = float(np.asarray(ons)[off][0])
            raise ParameterError(
                f"Run {r}: onset {bad:g} s is not a multiple of the TR ({tr:g} s). GLMsingle needs "
                "onsets on the TR grid: resample the data to a finer TR (e.g. 1 s or 0.5 s) first."
            )
        if (idx < 0).any() or (idx >= n_t).any():
            bad = float(np.asarray(ons)[(idx < 0) | (idx >= n_t)][0])
            raise ParameterError(
                f"Run {r}: onset {bad:g} s lies outside the run ({n_t} volumes of "
                f"{tr:g} s). Check the TR and the events file of run {r}."
            )
        u, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            t = int(u[counts > 1][0])
            raise ParameterError(
                f"Run {r}: two events start on volume {t} ({t * tr:g} s). GLMsingle "
                "allows one onset per TR: resample to a finer TR or drop one event."
            )
        m = np.zeros((n_t, conditions.size))
        m[idx, [col[s] for s in np.asarray(sid, str)]] = 1.0
        design.append(m)
    return design, conditions
