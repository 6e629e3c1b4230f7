"""ROI labels for the units: an atlas (dseg NIfTI + ``.tsv``), a binary mask, or ``.label.gii``.

``roi`` may hold ``{subject}`` (the label without ``sub-``) and, for surfaces, ``{hemi}``
(``L``/``R``). A relative path is looked up in the working folder, then under the BIDS root,
then under the derivatives folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError

from ._images import Grid, _array, grid_of, load_image

__all__ = ["roi_names", "volume_roi", "surface_roi", "resolve_roi_path", "roi_kind"]

_ENTITY = re.compile(r"(?:^|_)(label|desc)-([A-Za-z0-9]+)")


def roi_kind(roi: str) -> str:
    """``"surface"`` for ``.label.gii`` (or ``.gii``), else ``"volume"``."""
    return "surface" if str(roi).endswith(".gii") else "volume"


def resolve_roi_path(roi: str, *, subject: str, hemi: str | None, bases: list[Path]) -> Path:
    """Return the ROI file for ``subject`` (and ``hemi``); DataFileError naming the places tried."""
    text = str(roi).replace("{subject}", subject)
    if hemi is not None:
        text = text.replace("{hemi}", hemi)
    path = Path(text)
    tried = [path] if path.is_absolute() else [path, *(b / path for b in bases)]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise DataFileError(
        f"ROI file {text!r} not found (tried {', '.join(str(t) for t in tried)}). Pass an "
        "existing path to roi= ({subject} and {hemi} are filled in per subject and hemisphere).")


def _dseg_table(path: Path) -> Path | None:
    """Return the ``.tsv`` (index, name) of a dseg NIfTI: beside it, or fMRIPrep's top-level one."""
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            beside = path.with_name(name[: -len(ext)] + ".tsv")
            if beside.is_file():
                return beside
            desc = re.search(r"_desc-([A-Za-z0-9]+)_dseg", name)
            candidates = ([f"desc-{desc[1]}_dseg.tsv"] if desc else []) + ["dseg.tsv"]
            for parent in path.parents:
                for c in candidates:
                    if (parent / c).is_file():
                        return parent / c
                if (parent / "dataset_description.json").is_file():
                    break
    return None


def _read_lut(path: Path) -> dict[int, str]:
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if "index" not in table.columns or "name" not in table.columns:
            raise ValueError(f"columns {list(table.columns)}")
        return {int(i): str(n).strip().strip('"') for i, n in zip(table["index"], table["name"])}
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(f"Cannot read the ROI table {str(path)!r} (a TSV with columns "
                            f"index and name): {exc}.") from None


def _mask_name(path: Path) -> str:
    found = _ENTITY.findall(path.name)
    return found[-1][1] if found else "roi"


def volume_roi(path: Path, grid: Grid, voxels: NDArray[np.int64]) -> NDArray[np.str_]:
    """ROI label of each voxel (flat C-order index in ``grid``); ``""`` for none."""
    image = load_image(str(path))
    data = _array(image, str(path))
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    found = grid_of(image)
    if data.ndim != 3 or not found.same_as(grid):
        raise DataFileError(
            f"ROI image {str(path)!r} ({found.text()}) is not on the BOLD grid ({grid.text()}). "
            "Use an atlas or mask in the same space and resolution as the BOLD (fMRIPrep "
            "writes *_space-X_res-Y_desc-aseg_dseg.nii.gz per run).")
    values = np.rint(data.reshape(-1)[voxels]).astype(np.int64)
    lut = _dseg_table(path)
    if lut is None:
        present = set(np.unique(np.rint(data)).astype(int).tolist())
        if present <= {0, 1}:
            return np.where(values > 0, _mask_name(path), "").astype(str)
        raise DataFileError(
            f"ROI image {str(path)!r} has labels {sorted(present)[:6]}... but no table of names. "
            "Put a .tsv with columns index and name beside it (same name, .tsv), or pass a "
            "binary mask.")
    names = _read_lut(lut)
    return np.array([names.get(v, str(v)) if v != 0 else "" for v in values.tolist()], dtype=str)


def _read_label_gifti(path: Path) -> tuple[NDArray[np.int64], dict[int, str]]:
    image = load_image(str(path), "GIFTI label")
    if not image.darrays:
        raise DataFileError(f"GIFTI label file {str(path)!r} holds no data array.")
    keys = np.asarray(image.darrays[0].data).astype(np.int64).reshape(-1)
    table = {int(lab.key): str(lab.label) for lab in image.labeltable.labels}
    return keys, table


def surface_roi(paths: dict[str, Path], indices: NDArray[np.int64], n_left: int
                ) -> NDArray[np.str_]:
    """ROI label of each surface unit (index into [L, R] concatenated); ``""`` for none."""
    out = np.full(indices.shape[0], "", dtype=object)
    for hemi, path in paths.items():
        keys, table = _read_label_gifti(path)
        expected = n_left if hemi == "L" else None
        if expected is not None and keys.size != expected:
            raise DataFileError(f"GIFTI label file {str(path)!r} has {keys.size} vertices but "
                                f"the BOLD's hemi-L has {expected}. Use labels on the same "
                                "surface.")
        sel = indices < n_left if hemi == "L" else indices >= n_left
        vertex = indices[sel] - (0 if hemi == "L" else n_left)
        if vertex.size and vertex.max() >= keys.size:
            raise DataFileError(f"GIFTI label file {str(path)!r} has {keys.size} vertices, fewer "
                                f"than the BOLD's hemi-{hemi}. Use labels on the same surface.")
        k = keys[vertex]
        names = [table.get(int(v), str(int(v))) for v in k.tolist()]
        out[sel] = [n if v != 0 and n.lower() not in ("???", "unknown", "medial_wall") else ""
                    for n, v in zip(names, k.tolist())]
    return out.astype(str)


def roi_names(path: Path) -> list[str]:
    """Return the labels a ROI file can give (without the BOLD): its table, or the mask's name."""
    if roi_kind(str(path)) == "surface":
        _, table = _read_label_gifti(path)
        return sorted({n for k, n in table.items()
                       if k != 0 and n.lower() not in ("???", "unknown", "medial_wall")})
    lut = _dseg_table(path)
    if lut is None:
        return [_mask_name(path)]
    return sorted({n for k, n in _read_lut(lut).items() if k != 0})
