"""Read BOLD runs (NIfTI volumes with their brain mask, GIFTI hemispheres, CIFTI dtseries).

Every problem raises :class:`~conform_core.exceptions.DataFileError` naming the file and the
fix. Runs are read one at a time and reduced to the units at once (:class:`UnitReader`), so
at most one full run is in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError

__all__ = ["DENSITY_VERTICES", "load_image", "mask_grid", "open_volume", "read_mask", "read_surface", "read_cifti",
           "cifti_brain_models", "read_volume", "grid_of"]

#: Vertices per hemisphere of each template (and density).
DENSITY_VERTICES: dict[str, int] = {
    "fsaverage": 163842, "fsaverage6": 40962, "fsaverage5": 10242, "fsaverage4": 2562,
    "fsLR:32k": 32492, "fsLR:164k": 163842,
}
_CIFTI_GRAYORDINATES = {"91k": 91282, "170k": 170494}

_FIX_COPY = ("Re-copy the file (in a DataLad/git-annex dataset: `datalad get` it), or re-run "
             "fMRIPrep for this run.")


def _describe_file(path: str) -> str:
    try:
        size = os.path.getsize(path)
    except OSError:
        return "missing"
    return "empty (0 bytes)" if size == 0 else f"{size} bytes"


def load_image(path: str, what: str = "NIfTI") -> Any:
    """``nibabel.load`` with a clear error for a missing, empty or unreadable file."""
    import nibabel as nib

    state = _describe_file(path)
    if state in ("missing", "empty (0 bytes)"):
        raise DataFileError(f"Cannot read {what} file {path!r}: it is {state}. {_FIX_COPY}")
    try:
        return nib.load(path)
    except Exception as exc:  # nibabel raises many types for damaged files
        raise DataFileError(
            f"Cannot read {what} file {path!r} ({state}): {exc}. {_FIX_COPY}") from None


def _array(image: Any, path: str, what: str = "NIfTI") -> NDArray[np.float32]:
    try:
        return np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # truncated gzip: EOFError, zlib.error, OSError, ValueError
        raise DataFileError(
            f"Cannot read the data of {what} file {path!r} (truncated or damaged: {exc}). "
            f"{_FIX_COPY}") from None


@dataclass(frozen=True)
class Grid:
    """A NIfTI voxel grid: shape (3-D) and affine."""

    shape: tuple[int, ...]
    affine: NDArray[np.float64]

    def same_as(self, other: Grid) -> bool:
        # 1e-3 mm: headers written by different tools round the affine differently
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine,
                                                              atol=1e-3))

    def text(self) -> str:
        return f"shape {self.shape}, voxel size {np.round(np.sqrt((self.affine[:3, :3] ** 2).sum(0)), 3).tolist()}"


def grid_of(image: Any) -> Grid:
    """Return the 3-D grid of an image (header only)."""
    return Grid(tuple(int(n) for n in image.shape[:3]), np.asarray(image.affine, np.float64))


def read_mask(path: str) -> tuple[NDArray[np.bool_], Grid]:
    """Read a (brain or ROI) mask NIfTI: a boolean 3-D array and its grid."""
    image = load_image(path)
    data = _array(image, path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataFileError(f"Mask {path!r} must be a 3-D NIfTI; got shape {data.shape}. "
                            "Pass the *_desc-brain_mask.nii.gz of the run.")
    return data > 0, grid_of(image)


def mask_grid(path: str) -> Grid:
    """Return the grid of a mask NIfTI from its header (3-D, or 4-D with one volume)."""
    image = load_image(path)
    shape = tuple(int(n) for n in image.shape)
    if not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 1)):
        raise DataFileError(f"Mask {path!r} must be a 3-D NIfTI; got shape {shape}. "
                            "Pass the *_desc-brain_mask.nii.gz of the run.")
    return grid_of(image)


def open_volume(path: str, grid: Grid, mask_path: str) -> Any:
    """Open a 4-D BOLD NIfTI (header only) and check it is on the mask's ``grid``."""
    image = load_image(path)
    if len(image.shape) != 4:
        raise DataFileError(f"BOLD file {path!r} must be a 4-D NIfTI (x, y, z, time); got shape "
                            f"{tuple(image.shape)}. Pass the *_desc-preproc_bold.nii.gz.")
    bold = grid_of(image)
    if not bold.same_as(grid):
        raise DataFileError(
            f"The brain mask {mask_path!r} ({grid.text()}) does not match the BOLD grid of "
            f"{path!r} ({bold.text()}). Use the mask fMRIPrep wrote for this run and space "
            "(same space and res- entities), or resample it to the BOLD grid.")
    return image


def read_volume(path: str, voxels: NDArray[np.int64], grid: Grid, mask_path: str
                ) -> NDArray[np.float32]:
    """Read a 4-D BOLD NIfTI and return the time series of ``voxels`` (flat C-order indices).

    The BOLD grid must be the mask's (``grid``); checked from the header before the data
    are read.
    """
    image = open_volume(path, grid, mask_path)
    data = _array(image, path)
    return np.ascontiguousarray(data.reshape(-1, data.shape[3])[voxels])


def _gifti_hemisphere(image: Any) -> str | None:
    metas = [image.meta] + [d.meta for d in image.darrays[:1]]
    for meta in metas:
        value = dict(meta or {}).get("AnatomicalStructurePrimary", "")
        if value:
            low = str(value).lower()
            return "L" if "left" in low else "R" if "right" in low else None
    return None


def expected_vertices(space: str, density: str | None) -> int | None:
    """Vertices per hemisphere for ``space`` (and ``den-``), None when any count is allowed."""
    if space == "fsLR":
        return DENSITY_VERTICES.get(f"fsLR:{density or '32k'}")
    return DENSITY_VERTICES.get(space)


def read_surface(path: str, hemi: str, space: str, density: str | None) -> NDArray[np.float32]:
    """Read one hemisphere's ``*_bold.func.gii``: (n_vertices, n_timepoints).

    Checks the hemisphere (``AnatomicalStructurePrimary``) and the vertex count of the
    space's density.
    """
    image = load_image(path, "GIFTI")
    found = _gifti_hemisphere(image)
    if found is not None and found != hemi:
        raise DataFileError(
            f"GIFTI file {path!r} is named hemi-{hemi} but holds the "
            f"{'left' if found == 'L' else 'right'} hemisphere (AnatomicalStructurePrimary). "
            "Rename it, or pass the file of the right hemisphere.")
    try:
        arrays = [np.asarray(d.data, dtype=np.float32) for d in image.darrays]
    except Exception as exc:  # noqa: BLE001 (damaged base64/gzip payloads)
        raise DataFileError(f"Cannot read the data of GIFTI file {path!r}: {exc}. "
                            f"{_FIX_COPY}") from None
    if not arrays:
        raise DataFileError(f"GIFTI file {path!r} holds no data arrays. {_FIX_COPY}")
    if len(arrays) == 1 and arrays[0].ndim == 2:
        data = arrays[0]
    else:
        if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
            raise DataFileError(f"GIFTI file {path!r} must hold one vertex array per volume "
                                "(as fMRIPrep writes); its arrays differ in shape.")
        data = np.stack(arrays, axis=1)
    expected = expected_vertices(space, density)
    if expected is not None and data.shape[0] != expected:
        known = ", ".join(f"{k} {v}" for k, v in DENSITY_VERTICES.items())
        raise DataFileError(
            f"GIFTI file {path!r} has {data.shape[0]} vertices but space {space}"
            f"{f' den-{density}' if density else ''} has {expected} per hemisphere ({known}). "
            "Choose the space (and den-) the file was resampled to.")
    return np.ascontiguousarray(data)


def _cifti_image(path: str, density: str | None) -> tuple[Any, Any]:
    """Load a dtseries header (no data), check its axes and grayordinate count.

    Returns the image and its ``BrainModelAxis`` (building the axis parses the header's
    vertex and voxel lists, a noticeable cost at 91k: done once per file).
    """
    import nibabel as nib

    image = load_image(path, "CIFTI")
    if not isinstance(image, nib.cifti2.Cifti2Image):
        raise DataFileError(
            f"CIFTI file {path!r} is not CIFTI-2 (nibabel reads it as a "
            f"{type(image).__name__}, without the CIFTI header extension). Pass fMRIPrep's "
            "*_space-fsLR_den-91k_bold.dtseries.nii, or set cifti=False to read the GIFTI "
            "hemispheres.")
    shape = tuple(int(n) for n in image.shape)
    try:
        axes = [image.header.get_axis(i) for i in range(len(shape))]
    except Exception as exc:  # noqa: BLE001 (nibabel: malformed CIFTI XML header)
        raise DataFileError(f"Cannot read the CIFTI header of {path!r}: {exc}. "
                            f"{_FIX_COPY}") from None
    if len(shape) != 2 or not isinstance(axes[0], nib.cifti2.SeriesAxis) \
            or not isinstance(axes[1], nib.cifti2.BrainModelAxis):
        names = " x ".join(type(a).__name__ for a in axes)
        raise DataFileError(f"CIFTI file {path!r} must be a dtseries (time series x brain "
                            f"models); got shape {shape} with axes {names}. Pass the "
                            "*_bold.dtseries.nii of the run.")
    expected = _CIFTI_GRAYORDINATES.get(density or "91k")
    if expected is not None and shape[1] != expected:
        known = ", ".join(f"den-{k} {v}" for k, v in _CIFTI_GRAYORDINATES.items())
        raise DataFileError(
            f"CIFTI file {path!r} has {shape[1]} grayordinates but den-{density or '91k'} "
            f"has {expected} ({known}). Re-create the file at that density, or choose the "
            "density it was written at (space='fsLR:den-X', matching its den- entity).")
    return image, axes[1]


def cifti_brain_models(path: str, density: str | None) -> Any:
    """Return the ``BrainModelAxis`` of a ``*_bold.dtseries.nii`` (header only)."""
    return _cifti_image(path, density)[1]


def read_cifti(path: str, density: str | None, like: tuple[str, Any] | None = None
               ) -> tuple[NDArray[np.float32], Any]:
    """Read a ``*_bold.dtseries.nii``: (n_grayordinates, n_timepoints) and its brain models.

    The axes (series x brain models) and the grayordinate count of ``den-`` (91k: 91282)
    are checked from the header before the data are read; with ``like`` (the first run's
    path and ``BrainModelAxis``), so is that the run has the same brain models.
    """
    image, models = _cifti_image(path, density)
    if like is not None and models != like[1]:
        raise DataFileError(
            f"CIFTI file {path!r} has other brain models (structures, vertices or voxels) "
            f"than {like[0]!r}, though both have {image.shape[1]} grayordinates. All runs of "
            "a subject must be in one CIFTI space; re-create the file like the others.")
    data = _array(image, path, "CIFTI")
    return np.ascontiguousarray(data.T), models


def n_volumes(path: str) -> int | None:
    """Return the number of volumes from the header only (NIfTI), None when unknown."""
    if not Path(path).name.endswith((".nii", ".nii.gz")) or path.endswith(".dtseries.nii"):
        return None
    image = load_image(path)
    return int(image.shape[3]) if len(image.shape) == 4 else None
