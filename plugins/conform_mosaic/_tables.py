"""MOSAIC side tables: the per-dataset stimulus table and the three split JSON files.

- ``<code>_stiminfo.tsv`` (``nsd``, ``b5000``, ... ; ``toy`` for code ``TOY``): columns
  ``filename``, ``alias``, ``source``, ``test_train`` and one ``sub-XX_reps`` per subject.
- ``train_naturalistic.json``, ``test_naturalistic.json``, ``test_artificial.json``: lists of
  one-key objects ``{"sub-XX_<CODE>_stimulus-<filename>": ["<beta key>.npz", ...]}``.

Writers here merge with what is already on disk (replacing only the given subject's entries)
and write atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from conform_core.exceptions import DataFileError
from conform_core.io import write_text

from ._spec import SPLIT_FILES, STIMINFO_CODES

__all__ = [
    "find_side_files",
    "read_splits",
    "read_stiminfo",
    "stiminfo_name",
    "update_split_files",
    "update_stiminfo",
]

_STIM_COLUMNS = ["filename", "alias", "source", "test_train"]


def stiminfo_name(code: str) -> str:
    """File name of a dataset's stimulus table (``NSD`` -> ``nsd_stiminfo.tsv``)."""
    return f"{STIMINFO_CODES.get(code, code.lower())}_stiminfo.tsv"


def find_side_files(location: str | os.PathLike[str]) -> dict[str, Path]:
    """Find split JSONs and stimulus tables in ``location`` and its direct subfolders.

    Split JSONs are keyed ``train``, ``test``, ``artificial``, stimulus tables
    ``stiminfo:<file>``; for a file ``location``, its folder is searched.
    """
    root = Path(location)
    root = root.parent if root.is_file() else root
    folders = [root] + sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    found: dict[str, Path] = {}
    for folder in folders:
        for split, name in SPLIT_FILES.items():
            if split not in found and (folder / name).is_file():
                found[split] = folder / name
        for table in sorted(folder.glob("*_stiminfo.tsv")):
            found.setdefault(f"stiminfo:{table.name}", table)
    return found


def _load_json(path: Path) -> list[dict[str, list[str]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFileError(
            f"Split file {str(path)!r} is not valid JSON ({exc}). Re-download it or "
            "re-create it with conform_mosaic.write_subject(..., side_tables=True)."
        ) from exc
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise DataFileError(
            f"Split file {str(path)!r} must be a JSON list of one-key objects "
            "{'sub-XX_<CODE>_stimulus-<file>': ['<beta key>.npz', ...]}."
        )
    return data


def read_splits(files: Mapping[str, Path]) -> dict[str, str]:
    """Map every trial key listed in the split files to ``train``, ``test`` or ``artificial``."""
    out: dict[str, str] = {}
    for split in SPLIT_FILES:
        if split not in files:
            continue
        for entry in _load_json(files[split]):
            for names in entry.values():
                for name in names:
                    out[str(name).removesuffix(".npz")] = split
    return out


def read_stiminfo(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a stimulus table; raise naming the file and the missing columns."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={"filename": str, "alias": str})
    except (OSError, ValueError) as exc:
        raise DataFileError(f"Stimulus table {str(path)!r} could not be read ({exc}).") from exc
    missing = [c for c in _STIM_COLUMNS if c not in table.columns]
    if missing:
        raise DataFileError(
            f"Stimulus table {str(path)!r} lacks column(s) {missing}; MOSAIC tables have "
            f"{', '.join(_STIM_COLUMNS)} and one sub-XX_reps column per subject."
        )
    return table


def update_split_files(
    folder: str | os.PathLike[str], subject: str, entries: Mapping[str, Mapping[str, Sequence[str]]]
) -> list[Path]:
    """Replace ``subject``'s entries (``sub-XX_<CODE>``) in the three split files.

    ``entries[split][stimulus filename]`` lists that stimulus's beta keys (without ``.npz``).
    """
    written = []
    prefix = f"{subject}_stimulus-"
    for split, name in SPLIT_FILES.items():
        path = Path(folder) / name
        kept = (
            [e for e in _load_json(path) if not any(k.startswith(prefix) for k in e)]
            if path.is_file()
            else []
        )
        for filename, keys in entries.get(split, {}).items():
            kept.append({f"{prefix}{filename}": [f"{k}.npz" for k in keys]})
        written.append(write_text(path, json.dumps(kept, indent=1) + "\n"))
    return written


def update_stiminfo(
    folder: str | os.PathLike[str], code: str, subject: str, rows: pd.DataFrame
) -> Path:
    """Merge one subject's stimuli into ``<code>_stiminfo.tsv``.

    ``rows`` has columns ``filename``, ``alias``, ``source``, ``test_train`` and ``reps``; the
    subject's column is ``sub-XX_reps`` (other subjects' columns are kept, 0 for new stimuli).
    """
    path = Path(folder) / stiminfo_name(code)
    column = f"{subject.split('_')[0]}_reps"
    new = rows.rename(columns={"reps": column})[_STIM_COLUMNS + [column]]
    if path.is_file():
        base = read_stiminfo(path).drop(columns=[column], errors="ignore").set_index("filename")
        extra = new.set_index("filename")
        merged = base.join(extra[[column]], how="outer")
        for c in _STIM_COLUMNS[1:]:
            merged[c] = merged[c].fillna(extra[c].reindex(merged.index))
        table = merged.reset_index()
    else:
        table = new
    reps_cols = [c for c in table.columns if c.endswith("_reps")]
    table[reps_cols] = table[reps_cols].fillna(0).astype(np.int64)
    return write_text(path, table.to_csv(sep="\t", index=False, lineterminator="\n"))
