"""``MosaicDataset.describe()``: a summary built from keys and attributes, never from betas."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from conform_core.exceptions import ConformError

from . import _source as src
from ._atlas import VISUAL_SECTIONS
from ._spec import parse_beta_key

if TYPE_CHECKING:
    from .dataset import MosaicDataset

__all__ = ["describe_dataset"]


def _subject_nan_union(h5: h5py.File, source: src.SubjectSource) -> np.ndarray:
    group = src.group_of(h5, source)
    if source.layout != "merged-chunks" and "nan_indices_all" in group:
        return np.asarray(group["nan_indices_all"][()]).astype(np.int64).reshape(-1)
    if "nan_indices" in group:
        parts = [
            np.asarray(d[()], dtype=np.int64).reshape(-1) for d in group["nan_indices"].values()
        ]
        return np.unique(np.concatenate([np.zeros(0, np.int64), *parts]))
    return np.zeros(0, np.int64)


def describe_dataset(dataset: MosaicDataset) -> dict[str, Any]:
    """Summarise every subject of ``dataset`` from its keys and attributes only."""
    state = dataset._state()
    try:
        atlas = dataset._atlas()
        rois_error = ""
    except ConformError as exc:
        atlas, rois_error = None, str(exc)
    rows = []
    codes: Counter[str] = Counter()
    names: Counter[str] = Counter()
    layouts: Counter[str] = Counter()
    n_units_seen: set[int] = set()
    for name, source in state["sources"].items():
        with src.open_h5(source.path) as h5:
            names[
                str(src.read_attributes(h5, source, strict=False).get("dataset_name", source.code))
            ] += 1
            keys = np.array(src.beta_keys(h5, source), dtype=str)
            parsed = [parse_beta_key(k, where=source.where) for k in keys.tolist()]
            stems = np.array([p.stem for p in parsed], dtype=str)
            phases = np.array([p.phase for p in parsed], dtype=str)
            split = dataset._split_of(source, keys, stems, phases)
            group = src.group_of(h5, source)
            ceilings = len(group["noiseceilings"]) if "noiseceilings" in group else 0
            try:
                n_units: int | None = int(
                    dataset._vertices(_subject_nan_union(h5, source), atlas).size
                )
                n_units_seen.add(n_units)
            except ConformError as exc:
                n_units, rois_error = None, str(exc)
        codes[source.code] += 1
        layouts[source.layout] += 1
        reps = Counter(zip(stems.tolist(), phases.tolist()))
        rows.append(
            {
                "subject": name,
                "n_trials": int(keys.size),
                "n_train": int((split == "train").sum()),
                "n_test": int((split == "test").sum()),
                "n_artificial": int((split == "artificial").sum()),
                "n_stimuli": len(set(stems.tolist())),
                "max_reps": max(reps.values(), default=0),
                "n_units": n_units,
                "noise_ceilings": ceilings,
            }
        )
    side = state["side"]
    split_files = [str(side[k].name) for k in ("train", "test", "artificial") if k in side]
    tables = [p.name for k, p in side.items() if k.startswith("stiminfo:")]
    rois = (
        dataset.rois
        if isinstance(dataset.rois, str)
        else f"{len(np.atleast_1d(dataset.rois))} given"
    )
    roi_text = (
        (
            f"{rois} -> {', '.join(str(n) for n in sorted(n_units_seen))} units "
            f"(nan_vertices={dataset.nan_vertices!r})"
        )
        if n_units_seen
        else f"{rois}: {rois_error}"
    )
    return {
        "dataset": "MOSAIC",
        "location": str(dataset._root()),
        "layouts": dict(layouts),
        "datasets": dict(codes),
        "dataset_names": dict(names),
        "n_subjects": len(rows),
        "n_trials": sum(r["n_trials"] for r in rows),
        "splits": (
            f"official ({', '.join(split_files)})"
            if state["splits"] is not None
            else "file phases" + (" + artificial from " + ", ".join(tables) if tables else "")
        ),
        "phases_loaded": list(dataset.phases),
        "files": sorted({str(s.path.name) for s in state["sources"].values()}),
        "stimulus_tables": tables,
        "rois": roi_text,
        "atlas": "none" if atlas is None else atlas.source,
        "visual_sections": list(VISUAL_SECTIONS),
        "space": "fsLR32k (91,282 grayordinates)",
        "subjects": rows,
    }
