"""Maps in the input's space: NIfTI, GIFTI (one file per hemisphere) or CIFTI (scalar axis).

``load_run`` (``_io``) records where the units came from in its ``meta`` dict; the writers
here put per-unit maps (``n_units x n_maps``: betas per trial, means per condition, t-like
maps) back there, so any viewer shows them over the subject's anatomy:

* NIfTI: the input's grid, affine and header (4th axis = maps, float32);
* GIFTI: one ``.func.gii`` per hemisphere, each with its anatomical structure;
* CIFTI: a ``.dscalar.nii`` with the input's brain models and one named scalar per map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ShapeError

__all__ = ["MAP_SUFFIX", "structure_of", "write_maps"]

#: File name ending per input kind.
MAP_SUFFIX = {"nifti": ".nii.gz", "gifti": ".func.gii", "cifti": ".dscalar.nii"}

_STRUCTURE = {"L": "CortexLeft", "R": "CortexRight"}


def write_maps(folder: Path, stem: str, maps: Any, meta: dict[str, Any],
               names: Sequence[str] | None = None) -> list[Path]:
    """Write per-unit maps in the space ``meta`` describes; return the files written.

    Parameters
    ----------
    folder : Path
        Existing folder (the caller makes the whole folder atomic).
    stem : str
        File name without the ending, e.g. ``"condition_mean"``.
    maps : array-like of shape (n_units, n_maps) or (*spatial, n_maps)
        One column per map, units in the input's order.
    meta : dict
        ``load_run``'s description of the input: ``kind`` and ``shape``; ``affine`` and
        ``header`` (NIfTI), ``hemispheres`` (GIFTI: ``[(structure, n_vertices), ...]``),
        ``brain_models`` (CIFTI); ``indices`` when the maps hold only some units of that
        space (their flat positions; the rest is NaN).
    names : sequence of str or None
        Map names (CIFTI scalar names, GIFTI intents' names); default ``map0``, ...

    Returns
    -------
    list of Path
        Empty for inputs without a known space (``kind`` missing).

    Raises
    ------
    ShapeError
        If the maps do not cover the input's units.
    """
    import nibabel as nib

    kind = meta.get("kind")
    if kind not in MAP_SUFFIX:
        return []
    n_units = int(np.prod(meta["shape"]))
    arr = np.asarray(maps, np.float32)
    indices = meta.get("indices")
    if indices is not None:  # maps of some units of the space: NaN elsewhere
        indices = np.asarray(indices, np.int64)
        sub = arr.reshape(indices.size, -1) if arr.size % max(indices.size, 1) == 0 else arr
        if sub.ndim != 2 or sub.shape[0] != indices.size:
            raise ShapeError(f"Maps of shape {np.shape(maps)} do not cover the {indices.size} "
                             "units; pass one row per unit, in the units' order.")
        arr = np.full((n_units, sub.shape[1]), np.nan, np.float32)
        arr[indices] = sub
    arr = arr.reshape(n_units, -1) if arr.size % max(n_units, 1) == 0 else arr
    if arr.ndim != 2 or arr.shape[0] != n_units:
        raise ShapeError(f"Maps of shape {np.shape(maps)} do not cover the input's {n_units} units; "
                         "pass one row per unit, in the input's order.")
    labels = list(names) if names is not None else [f"map{i}" for i in range(arr.shape[1])]
    if kind == "nifti":
        return [_write_nifti(folder / f"{stem}.nii.gz", arr, meta)]
    if kind == "gifti":
        parts = meta.get("hemispheres") or [(meta.get("structure") or "", n_units)]
        out, start = [], 0
        for structure, n in parts:
            hemi = {"CortexLeft": "_hemi-L", "CortexRight": "_hemi-R"}.get(structure, "")
            path = folder / f"{stem}{hemi}.func.gii"
            _write_gifti(path, arr[start:start + n], structure, labels)
            out.append(path)
            start += n
        return out
    path = folder / f"{stem}.dscalar.nii"
    axis = nib.cifti2.ScalarAxis(labels)
    models = meta.get("brain_models")
    if models is None:
        raise ShapeError("The CIFTI input's brain models are unknown; load it with load_run.")
    img = nib.cifti2.Cifti2Image(arr.T, header=(axis, models))
    nib.save(img, str(path))
    return [path]


def _write_nifti(path: Path, arr: NDArray[np.float32], meta: dict[str, Any]) -> Path:
    import nibabel as nib

    data = arr.reshape(*meta["shape"], arr.shape[1])
    header = meta.get("header")
    header = header.copy() if header is not None else None
    img = nib.Nifti1Image(data, meta["affine"], header=header)
    img.set_data_dtype(np.float32)
    img.header.set_xyzt_units(img.header.get_xyzt_units()[0], "unknown")
    zooms = img.header.get_zooms()
    img.header.set_zooms((*zooms[:3], 1.0))  # the 4th axis is maps, not time
    img.header.set_slope_inter(1.0, 0.0)
    nib.save(img, str(path))  # streamed through gzip: no extra copy of the maps
    return path


def _write_gifti(path: Path, arr: NDArray[np.float32], structure: str,
                 labels: Sequence[str]) -> None:
    import nibabel as nib

    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure} if structure else {})
    darrays = [nib.gifti.GiftiDataArray(np.ascontiguousarray(arr[:, i]),
                                        intent="NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32",
                                        meta=nib.gifti.GiftiMetaData({"Name": labels[i]}))
               for i in range(arr.shape[1])]
    nib.save(nib.gifti.GiftiImage(darrays=darrays, meta=meta), str(path))


def structure_of(hemi: str) -> str:
    """GIFTI structure name of a BIDS ``hemi-`` value (``L`` -> ``CortexLeft``)."""
    return _STRUCTURE.get(hemi.upper(), "")
