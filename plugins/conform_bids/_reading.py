"""Read a subject's BOLD runs into units x time arrays, and describe the space they live in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError

from . import _images as img
from ._layout import RunFiles

__all__ = ["UnitRuns", "read_unit_runs", "space_of"]


@dataclass
class UnitRuns:
    """The runs of one subject reduced to its units.

    ``indices`` are the units' positions in the space (flat voxel index, vertex index in
    [L, R] concatenated, or grayordinate); ``grid`` the NIfTI grid of volumes; ``n_left``
    the left hemisphere's vertex count of surfaces (0 otherwise).
    """

    data: list[NDArray[np.float32]]
    indices: NDArray[np.int64]
    grid: img.Grid | None
    n_left: int


def read_unit_runs(runs: list[RunFiles], kind: str, space: str, density: str | None,
                   label: str) -> UnitRuns:
    """Read every run, one at a time, reduced to the units; then drop non-finite units.

    Volumes: the voxels inside every run's brain mask. Surfaces (both hemispheres, vertex
    counts checked), CIFTI (brain models checked between runs) and raw BOLD: the
    vertices, grayordinates or voxels that vary in the first run.
    """
    data: list[NDArray[np.float32]] = []
    n_left = 0
    grid: img.Grid | None = None
    if kind == "volume":
        keep3d: NDArray[np.bool_] | None = None
        for r in runs:  # masks first (small): the units are in every run's mask
            mask, g = img.read_mask(r.data["mask"])
            if grid is None or keep3d is None:
                grid, keep3d = g, mask
            elif not g.same_as(grid):
                raise DataFileError(
                    f"The brain mask {r.data['mask']!r} ({g.text()}) is on another grid than "
                    f"{runs[0].data['mask']!r} ({grid.text()}). All runs of a subject must be "
                    "in one space and resolution (choose space='S:res-X').")
            else:
                keep3d = keep3d & mask
        assert grid is not None and keep3d is not None
        indices = np.flatnonzero(keep3d.reshape(-1)).astype(np.int64)
        for r in runs:
            data.append(img.read_volume(r.data["bold"], indices, grid, r.data["mask"]))
    elif kind == "raw":
        indices = np.zeros(0, np.int64)
        for i, r in enumerate(runs):
            image = img.load_image(r.data["bold"])
            g = img.grid_of(image)
            if i == 0:
                grid = g
                full = img._array(image, r.data["bold"])
                if full.ndim != 4:
                    raise DataFileError(f"BOLD file {r.data['bold']!r} must be 4-D; got "
                                        f"shape {full.shape}.")
                flat = full.reshape(-1, full.shape[3])
                indices = np.flatnonzero(np.ptp(flat, axis=1) > 0).astype(np.int64)
                data.append(np.ascontiguousarray(flat[indices]))
                del full, flat
            else:
                assert grid is not None
                data.append(img.read_volume(r.data["bold"], indices, grid, runs[0].data["bold"]))
    elif kind == "surface":
        indices = np.zeros(0, np.int64)
        for i, r in enumerate(runs):
            left = img.read_surface(r.data["L"], "L", space, density)
            right = img.read_surface(r.data["R"], "R", space, density)
            if left.shape[1] != right.shape[1]:
                raise DataFileError(f"{r.data['L']!r} has {left.shape[1]} volumes but "
                                    f"{r.data['R']!r} has {right.shape[1]}. Both "
                                    "hemispheres of a run must have every volume.")
            both = np.concatenate([left, right])
            if i == 0:
                n_left = left.shape[0]
                indices = np.flatnonzero(np.ptp(both, axis=1) > 0).astype(np.int64)
                total = both.shape[0]
            elif both.shape[0] != total or left.shape[0] != n_left:
                raise DataFileError(f"{r.data['L']!r} and {r.data['R']!r} have other vertex "
                                    f"counts than the first run ({runs[0].data['L']!r}). "
                                    "All runs must be on one surface.")
            data.append(np.ascontiguousarray(both[indices]))
            del both, left, right
    else:  # cifti
        indices = np.zeros(0, np.int64)
        den = density if density else "91k"
        first: tuple[str, Any] | None = None  # every run on the first run's brain models
        for i, r in enumerate(runs):
            full, models = img.read_cifti(r.data["cifti"], den, like=first)
            if i == 0:
                first = (r.data["cifti"], models)
                indices = np.flatnonzero(np.ptp(full, axis=1) > 0).astype(np.int64)
            data.append(np.ascontiguousarray(full[indices]))
            del full
    finite = np.ones(indices.size, dtype=bool)
    for d in data:
        finite &= np.isfinite(d).all(axis=1)
    if not finite.all():
        data = [np.ascontiguousarray(d[finite]) for d in data]
        indices = indices[finite]
    if indices.size == 0:
        raise DataFileError(
            f"sub-{label} has no usable unit in {runs[0].main_file!r}: the brain mask is "
            "empty or every time series is constant or non-finite. Check the files.")
    return UnitRuns(data=data, indices=indices, grid=grid, n_left=n_left)


def space_of(runs: list[RunFiles], kind: str, space: str, density: str | None) -> dict[str, Any]:
    """Describe the space a subject's units live in (see ``BIDSDataset.output_space``).

    Reads the first run's brain mask (volumes), CIFTI header or, for fsnative surfaces, its
    GIFTI files; nothing else.
    """
    if kind == "volume":
        _, grid = img.read_mask(runs[0].data["mask"])
        return {"kind": "nifti", "shape": grid.shape, "affine": grid.affine}
    if kind == "raw":
        grid = img.grid_of(img.load_image(runs[0].data["bold"]))
        return {"kind": "nifti", "shape": grid.shape, "affine": grid.affine}
    if kind == "surface":
        counts = []
        for hemi in ("L", "R"):
            n = img.expected_vertices(space, density)
            if n is None:  # fsnative: each hemisphere has its own count
                n = int(img.read_surface(runs[0].data[hemi], hemi, space, None).shape[0])
            counts.append(n)
        return {"kind": "gifti", "shape": (sum(counts),),
                "hemispheres": [("CortexLeft", counts[0]), ("CortexRight", counts[1])]}
    if kind == "cifti":
        models = img.cifti_brain_models(runs[0].data["cifti"], density or "91k")
        return {"kind": "cifti", "shape": (len(models),), "brain_models": models}
    return {}
