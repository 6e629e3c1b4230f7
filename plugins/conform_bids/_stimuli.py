"""Stimuli of a BIDS study: events values -> stimulus ids, and the ``StimulusSet``.

With the ``stim_file`` column, each event names a file under ``stimuli/``; its id is the
``stimulus_id`` of that file in ``stimuli/stimuli.tsv`` when the table exists, else the file
name without extension, or its path relative to ``stimuli/`` without extension where two
files of the study share a name (``faces/001.png`` and ``houses/001.png``: ``faces/001`` and
``houses/001``; decided over every events file of the task, so that ids do not depend on the
runs read). Every file an event names must exist (image features read them).
With any other column, the values are the ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.data import StimulusSet
from conform_core.exceptions import ConformError, DataFileError

from ._tables import RawEvents, StimulusTable, read_stimulus_table

__all__ = ["StimulusCatalog", "load_catalog"]


@dataclass
class StimulusCatalog:
    """``stimuli/``: its table (optional) and embeddings (optional)."""

    folder: Path
    table: StimulusTable | None
    embeddings: NDArray[np.float32] | None
    #: stim_file value -> id for files the table does not name (``_tables.stem_ids`` over
    #: the whole study); a value not in it falls back to its file name without extension.
    stems: dict[str, str] = field(default_factory=dict)

    def ids_of(self, events: RawEvents) -> NDArray[np.str_]:
        """Stimulus id of every event of ``events``; DataFileError for a file not there."""
        if events.column != "stim_file":
            return events.values
        by_file = ({} if self.table is None or self.table.files is None
                   else dict(zip(self.table.files.tolist(), self.table.ids.tolist())))
        out = []
        for value in events.values.tolist():
            if value in by_file:
                out.append(by_file[value])
                continue
            path = self.folder / value
            if not path.is_file():
                raise DataFileError(
                    f"Events file {events.path!r} names the stimulus file {value!r}, but "
                    f"{str(path)!r} does not exist. Put the stimulus there (stim_file is "
                    "relative to the stimuli/ folder), fix the events, or choose another "
                    "stimulus_column= (e.g. 'trial_type').")
            if self.table is not None and self.table.files is not None:
                raise DataFileError(
                    f"Events file {events.path!r} names the stimulus file {value!r}, which "
                    f"{self.table.path!r} does not list. Add a row for it (stimulus_id, "
                    "stim_file).")
            out.append(self.stems.get(value, Path(value).stem))
        return np.array(out, dtype=str)

    def source_of(self, events: RawEvents, ids: NDArray[np.str_]) -> dict[str, str]:
        """Stimulus id -> absolute file path, for events of the ``stim_file`` column."""
        if events.column != "stim_file":
            return {}
        return {i: str((self.folder / v).resolve()) for i, v in
                zip(ids.tolist(), events.values.tolist())}

    def stimulus_set(self, ids: list[str], sources: dict[str, str]) -> StimulusSet:
        """Return the StimulusSet: the table's rows when every id is in it, else ``ids``."""
        table = self.table
        try:
            if table is not None and set(ids) <= set(table.ids.tolist()):
                src: Any = (None if table.files is None else
                       np.array([str((self.folder / f).resolve()) if f not in ("", "n/a") else ""
                                 for f in table.files.tolist()]))
                return StimulusSet(ids=table.ids, sources=src, embeddings=self.embeddings,
                                   categories=table.categories)
            unique = sorted(set(ids))
            return StimulusSet(ids=np.array(unique, dtype=str),
                               sources=np.array([sources.get(i, "") for i in unique], dtype=str))
        except ConformError as exc:
            raise DataFileError(f"The stimuli of {str(self.folder)!r} are inconsistent: {exc}"
                                ) from None

    def split_of(self, ids: NDArray[np.str_]) -> tuple[NDArray[np.str_], NDArray[np.str_]]:
        """(train ids, test ids) among ``ids``, from the table's ``split`` column (else empty)."""
        empty = np.array([], dtype=str)
        table = self.table
        if table is None or table.split is None:
            return empty, empty
        split = dict(zip(table.ids.tolist(), table.split.tolist()))
        seen = np.unique(ids)
        train = np.array([i for i in seen.tolist() if split.get(i) == "train"], dtype=str)
        test = np.array([i for i in seen.tolist() if split.get(i) == "test"], dtype=str)
        return train, test


def load_catalog(root: Path, embeddings: str | None) -> StimulusCatalog:
    """Read ``root/stimuli/stimuli.tsv`` and the embeddings (``"auto"``, a path, or None)."""
    folder = root / "stimuli"
    table_path = folder / "stimuli.tsv"
    table = read_stimulus_table(str(table_path)) if table_path.is_file() else None
    emb = None
    path: Path | None = None
    if embeddings == "auto":
        candidate = folder / "stimuli_embeddings.npy"
        path = candidate if candidate.is_file() and table is not None else None
    elif embeddings not in (None, "none"):
        path = Path(str(embeddings))
        if not path.is_absolute() and not path.is_file():
            path = root / path
        if table is None:
            raise DataFileError(
                f"embeddings={embeddings!r} needs {str(table_path)!r} (a stimulus_id per row, in "
                "the embeddings' row order). Write the table, or set embeddings=None.")
    if path is not None:
        try:
            emb = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataFileError(f"Cannot read the stimulus embeddings {str(path)!r}: {exc}."
                                ) from None
        assert table is not None
        if emb.ndim != 2 or emb.shape[0] != table.ids.size:
            raise DataFileError(
                f"The stimulus embeddings {str(path)!r} have shape {emb.shape}, but "
                f"{table.path!r} lists {table.ids.size} stimuli: one row per stimulus, in the "
                "table's order, is needed.")
        emb = emb.astype(np.float32, copy=False)
    return StimulusCatalog(folder, table, emb)
