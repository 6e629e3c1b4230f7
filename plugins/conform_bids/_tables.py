"""Read the TSV files of a BIDS study: events, fMRIPrep confounds and ``stimuli/stimuli.tsv``.

BIDS writes missing values as ``n/a``. Every problem raises
:class:`~conform_core.exceptions.DataFileError` naming the file and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError
from conform_core.validation import suggest

__all__ = ["MOTION6", "RawEvents", "StimulusTable", "choose_stimulus_column", "read_confounds",
           "read_events", "read_stimulus_table", "read_tsv", "stem_ids"]

#: fMRIPrep's six rigid-body motion parameters (the ``confounds=["motion6"]`` shorthand).
MOTION6 = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def read_tsv(path: str, what: str) -> pd.DataFrame:
    """Read a BIDS TSV as strings (``n/a`` and empty cells kept as they are)."""
    if not os.path.isfile(path):
        raise DataFileError(f"The {what} file {path!r} is missing.")
    if os.path.getsize(path) == 0:
        raise DataFileError(f"The {what} file {path!r} is empty (0 bytes). Re-copy it (in a "
                            "DataLad dataset: `datalad get` it).")
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(f"Cannot read the {what} file {path!r} as a tab-separated table: "
                            f"{exc}.") from None


def _missing(values: pd.Series) -> NDArray[np.bool_]:
    text = values.astype(str).str.strip()
    return np.asarray(text.isin(["n/a", "", "nan", "NaN"]))


@dataclass(frozen=True)
class RawEvents:
    """One run's events: onsets, durations and the stimulus column's values (n/a rows dropped)."""

    path: str
    onset: NDArray[np.float64]
    duration: NDArray[np.float64]
    values: NDArray[np.str_]
    column: str


def stimulus_column_of(table: pd.DataFrame, column: str) -> str | None:
    """Return the column ``column`` names (``auto``: ``stim_file`` when used, else ``trial_type``)."""
    if column != "auto":
        return column if column in table.columns else None
    for name in ("stim_file", "trial_type"):
        if name in table.columns and not _missing(table[name]).all():
            return name
    return None


def choose_stimulus_column(paths: list[str], column: str) -> str:
    """Decide the stimulus column once for a study.

    ``auto`` is ``stim_file`` when any events file of ``paths`` names a file there, else
    ``trial_type``; any other value is kept. Unreadable files are skipped here (loading their run reports them).
    """
    if column != "auto":
        return column
    for path in paths:
        try:
            table = read_tsv(path, "events")
        except DataFileError:
            continue
        if "stim_file" in table.columns and not _missing(table["stim_file"]).all():
            return "stim_file"
    return "trial_type"


def read_events(path: str, column: str) -> RawEvents:
    """Read ``*_events.tsv``: onset, duration and the stimulus ``column`` (rows n/a there dropped).

    Raises
    ------
    DataFileError
        For a missing/empty file, a missing column, or onsets/durations that are not numbers
        or a duration <= 0 (naming the rows).
    """
    table = read_tsv(path, "events")
    need = [c for c in ("onset", "duration") if c not in table.columns]
    chosen = stimulus_column_of(table, column)
    if need or chosen is None:
        lacking = need + ([column if column != "auto" else "stim_file or trial_type"]
                          if chosen is None else [])
        study = (f" The stimulus column is chosen once for the study ({column!r}): every "
                 "run's events need it (n/a in rows that are not trials); or choose another "
                 "with stimulus_column=." if chosen is None and not need else "")
        raise DataFileError(
            f"Events file {path!r} lacks the column(s) {lacking}; it has "
            f"{list(table.columns)}.{suggest(str(lacking[-1]), list(table.columns))} Events need "
            "onset and duration, and stimulus_column= must name the column that identifies "
            f"each stimulus.{study}")
    keep = ~_missing(table[chosen])
    rows = table[keep]
    try:
        onset = rows["onset"].astype(float).to_numpy()
        duration = rows["duration"].astype(float).to_numpy()
    except ValueError as exc:
        raise DataFileError(f"Events file {path!r}: onset and duration must be numbers (s) "
                            f"in every row naming a stimulus: {exc}.") from None
    bad = ~np.isfinite(onset) | ~np.isfinite(duration) | (duration <= 0) | (onset < 0)
    if bad.any():
        lines = (np.flatnonzero(keep)[bad] + 2).tolist()  # header is line 1
        raise DataFileError(
            f"Events file {path!r} has rows naming a stimulus with a missing or negative onset "
            f"or a duration <= 0 (lines {lines[:5]}). Give each stimulus event its onset >= 0 "
            "and its presentation duration > 0 s, or set its stimulus column to n/a.")
    values = rows[chosen].astype(str).str.strip().to_numpy().astype(str)
    return RawEvents(path, onset, duration, values, chosen)


def read_confounds(path: str, columns: list[str], na: str, n_volumes: int | None
                   ) -> NDArray[np.float64]:
    """Read the chosen columns of an fMRIPrep ``*_desc-confounds_timeseries.tsv``.

    Parameters
    ----------
    path : str
        The TSV.
    columns : list of str
        Columns to read, in order (``motion6`` already expanded).
    na : {"error", "zero"}
        What to do with ``n/a`` cells (fMRIPrep's first row of derivative columns).
    n_volumes : int or None
        The run's number of volumes (one row each); None: not checked here.
    """
    table = read_tsv(path, "confounds")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataFileError(
            f"Confounds file {path!r} has no column(s) {missing}.{suggest(missing[0], table.columns)}"
            f" Choose confounds= among its {len(table.columns)} columns (e.g. "
            f"{', '.join(list(table.columns)[:8])}), or 'motion6'.")
    if n_volumes is not None and len(table) != n_volumes:
        raise DataFileError(
            f"Confounds file {path!r} has {len(table)} rows but its BOLD run has {n_volumes} "
            "volumes. Use the confounds fMRIPrep wrote for this run.")
    sub = table[columns]
    empty = np.column_stack([_missing(sub[c]) for c in columns]) if columns else np.zeros((0, 0))
    try:
        values = sub.mask(empty).astype(float).to_numpy()
    except ValueError as exc:
        raise DataFileError(f"Confounds file {path!r}: the columns {columns} must be numbers "
                            f"or n/a ({exc}).") from None
    bad = ~np.isfinite(values)
    if bad.any():
        if na == "zero":
            values[bad] = 0.0
        else:
            rows = np.flatnonzero(bad.any(axis=1))
            cols = [c for c, b in zip(columns, bad.any(axis=0)) if b]
            raise DataFileError(
                f"Confounds file {path!r} has n/a values in {cols} (rows {rows[:5].tolist()}; "
                "fMRIPrep leaves the first row of derivative columns such as "
                "framewise_displacement empty). Set confounds_na='zero' to fill them with 0, "
                "or choose other columns.")
    return values


@dataclass(frozen=True)
class StimulusTable:
    """``stimuli/stimuli.tsv``: one row per stimulus."""

    path: str
    ids: NDArray[np.str_]
    files: NDArray[np.str_] | None  # relative to stimuli/
    categories: NDArray[np.str_] | None
    split: NDArray[np.str_] | None


def read_stimulus_table(path: str) -> StimulusTable:
    """Read ``stimuli/stimuli.tsv`` (``stimulus_id``; optional ``stim_file``, ``category``, ``split``)."""
    table = read_tsv(path, "stimuli")
    if "stimulus_id" not in table.columns:
        raise DataFileError(f"{path!r} needs a stimulus_id column (one row per stimulus); it has "
                            f"{list(table.columns)}.")
    ids = table["stimulus_id"].astype(str).to_numpy().astype(str)
    if len(set(ids.tolist())) != ids.size:
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()[:5].tolist()
        raise DataFileError(f"{path!r} lists stimulus ids more than once ({dup}). Give each "
                            "stimulus one row.")

    def col(name: str) -> NDArray[np.str_] | None:
        return (table[name].astype(str).to_numpy().astype(str) if name in table.columns
                else None)

    split = col("split")
    if split is not None:
        split = np.char.lower(split)
        bad = sorted(set(split.tolist()) - {"train", "test", "n/a", ""})
        if bad:
            raise DataFileError(f"{path!r}: split must be train, test or n/a; got {bad[:5]}.")
    return StimulusTable(path, ids, col("stim_file"), col("category"), split)


def stem_ids(files: list[str]) -> dict[str, str]:
    """Return the stimulus id of each file: its name without extension.

    Where two files share a name, their relative paths without extension (given the files
    of the whole study, the ids do not depend on which runs are read).
    """
    def strip(name: str) -> str:
        return str(Path(name).with_suffix("")) if Path(name).suffix else name

    stems: dict[str, set[str]] = {}
    for f in files:
        stems.setdefault(Path(strip(f)).name, set()).add(f)
    out = {}
    for f in files:
        stem = Path(strip(f)).name
        out[f] = stem if len(stems[stem]) == 1 else Path(strip(f)).as_posix()
    return out
