"""BIDS ``*_events.tsv`` checks, and uploaded events against the protocol package a site ran.

Part of the one pinned validator (:mod:`._validators`): its source is hashed into
``validator_version``. Every problem becomes an :class:`Issue`; one issue per file and kind of
problem, naming the first offending row and how many rows share it (thousands of identical
row errors help nobody).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

__all__ = ["Issue"]

_ENTITY = re.compile(r"(?:^|_)(sub|ses|task|run)-([A-Za-z0-9]+)")
_NULL = {"", "n/a", "null"}
_RUN_NAME = "sub-XX[_ses-YY]_task-<task>_run-ZZ_events.tsv"


@dataclass(frozen=True)
class Issue:
    """One problem found by :func:`~conform_registry.validate_files`.

    Parameters
    ----------
    path : str
        The file (relative to the checked folder, ``/``-separated) or folder it concerns.
    code : str
        Stable machine-readable kind, e.g. ``"events.unsorted_onsets"``.
    message : str
        What is wrong, naming the file and, where there is one, the row or key.
    fix : str
        What to do about it.
    """

    path: str
    code: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        """Return the issue as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class _Table:
    rel: str
    header: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> int | None:
        return self.header.index(name) if name in self.header else None

    def cell(self, row: list[str], name: str) -> str:
        i = self.column(name)
        return row[i] if i is not None and i < len(row) else ""

    def is_null(self, row: list[str], key: str) -> bool:
        return self.cell(row, "trial_type") == "null" or self.cell(row, key) in _NULL


def entities(name: str) -> dict[str, str]:
    """Return the BIDS entities (sub, ses, task, run) in a file name."""
    return {k: v for k, v in _ENTITY.findall(name)}


def read_events(path: Path, rel: str) -> tuple[_Table | None, list[Issue]]:
    """Read a tab-separated events file; on failure return None and the reason as an issue."""
    fix = "Save it as UTF-8 text, tab-separated, with a header row (onset, duration, ...)."
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        return None, [Issue(rel, "events.unreadable", f"{rel}: cannot be read ({exc}).", fix)]
    except UnicodeDecodeError as exc:
        return None, [Issue(rel, "events.unreadable",
                            f"{rel}: is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#x}).",
                            fix)]
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        return None, [Issue(rel, "events.empty", f"{rel}: is empty (no header row).", fix)]
    split = [[cell.strip() for cell in line.split("\t")] for line in lines]
    return _Table(rel, split[0], split[1:]), []


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _first(t: _Table, code: str, bad: list[tuple[int, str]], fix: str) -> Issue:
    """One issue for every row in ``bad`` (row index, what is wrong with it), naming the first."""
    i, what = bad[0]
    more = f" ({len(bad)} rows like this)" if len(bad) > 1 else ""
    return Issue(t.rel, code, f"{t.rel} row {i + 1} (line {i + 2}): {what}{more}.", fix)


def check_events(t: _Table) -> tuple[list[Issue], list[Issue]]:
    """Check one events table: required numeric onset/duration, durations >= 0, sorted onsets."""
    errors, warnings = [], []
    missing = [c for c in ("onset", "duration") if c not in t.header]
    if missing:
        errors.append(Issue(t.rel, "events.missing_column",
                            f"{t.rel}: required column(s) {missing} missing; the header is "
                            f"{t.header}.",
                            "Add onset and duration columns (seconds), tab-separated, as BIDS "
                            "requires."))
    if "trial_type" not in t.header and "stim_file" not in t.header:
        warnings.append(Issue(t.rel, "events.no_trial_type",
                              f"{t.rel}: has neither a trial_type nor a stim_file column, so "
                              "nothing says what each event was.",
                              "Add trial_type (and stim_file for image trials)."))
    ragged = [(i, f"{len(r)} fields; the header has {len(t.header)}")
              for i, r in enumerate(t.rows) if len(r) != len(t.header)]
    if ragged:
        errors.append(_first(t, "events.ragged_row", ragged,
                             "Separate columns with exactly one tab; write n/a in empty cells."))
    if missing:
        return errors, warnings
    not_numeric: list[tuple[int, str]] = []
    negative: list[tuple[int, str]] = []
    unsorted: list[tuple[int, str]] = []
    previous: float | None = None
    for i, row in enumerate(t.rows):
        onset, duration = _number(t.cell(row, "onset")), _number(t.cell(row, "duration"))
        for name, value in (("onset", onset), ("duration", duration)):
            if value is None:
                not_numeric.append((i, f"{name} {t.cell(row, name)!r} is not a finite number"))
        if duration is not None and duration < 0:
            negative.append((i, f"duration {t.cell(row, 'duration')} is negative"))
        if onset is not None:
            if previous is not None and onset < previous:
                unsorted.append((i, f"onset {t.cell(row, 'onset')} is earlier than the onset "
                                        f"{previous:g} of a row above it"))
            previous = onset if previous is None else max(previous, onset)
    for code, bad, fix in (
        ("events.not_numeric", not_numeric, "Write onset and duration in seconds as numbers."),
        ("events.negative_duration", negative, "Durations are seconds >= 0; fix the sign."),
        ("events.unsorted_onsets", unsorted, "Sort the rows by onset."),
    ):
        if bad:
            errors.append(_first(t, code, bad, fix))
    return errors, warnings


@dataclass(frozen=True)
class ProtocolRun:
    """One run of a protocol package: its events file, entities and stimulus trials in order."""

    rel: str
    entities: dict[str, str]
    stimulus_ids: list[str]
    stim_files: list[str]


def load_protocol(protocol: Path) -> tuple[list[ProtocolRun], list[Issue]]:
    """Read every run of a protocol package written by ``conform design``."""
    where = str(protocol)
    fix = "Pass the protocol package folder written by `conform design --out` for this site."
    if not protocol.is_dir():
        return [], [Issue(where, "protocol.unreadable", f"Protocol {where!r} is not a folder.", fix)]
    runs = []
    for path in sorted(protocol.rglob("*_events.tsv")):
        rel = path.relative_to(protocol).as_posix()
        table, problems = read_events(path, rel)
        if table is None or not {"stimulus_id", "stim_file"} <= set(table.header):
            why = problems[0].message if problems else "it has no stimulus_id/stim_file column"
            return [], [Issue(where, "protocol.unreadable",
                              f"Protocol {where!r}: {rel} is not a protocol events file ({why}).",
                              fix)]
        stim = [r for r in table.rows if not table.is_null(r, "stimulus_id")]
        runs.append(ProtocolRun(rel, entities(path.name),
                                [table.cell(r, "stimulus_id") for r in stim],
                                [table.cell(r, "stim_file") for r in stim]))
    if not runs:
        return [], [Issue(where, "protocol.unreadable",
                          f"Protocol {where!r} holds no *_events.tsv files.", fix)]
    return runs, []


def _same_label(a: str, b: str | None) -> bool:
    return b is not None and (a == b or (a.isdigit() and b.isdigit() and int(a) == int(b)))


def _same_file(uploaded: str, planned: str) -> bool:
    return uploaded == planned or uploaded.endswith("/" + planned)


def compare_with_protocol(t: _Table, runs: list[ProtocolRun]) -> tuple[list[Issue], list[Issue]]:
    """Check that ``t`` shows the stimuli of its protocol run, in the protocol's order."""
    found = entities(PurePosixPath(t.rel).name)
    tasks = {r.entities["task"] for r in runs if "task" in r.entities}
    if "task" in found and tasks and found["task"] not in tasks:
        return [], [Issue(t.rel, "events.other_task",
                          f"{t.rel}: task {found['task']!r} is not a task of the protocol "
                          f"({sorted(tasks)}); it was not compared with the protocol.",
                          "Nothing to do if this is another task (a localizer, say).")]
    keys = [k for k in ("sub", "ses", "run") if k in found]
    matches = [r for r in runs if all(_same_label(found[k], r.entities.get(k)) for k in keys)]
    if "sub" not in found or not matches:
        have = ", ".join(sorted({"_".join(f"{k}-{r.entities[k]}" for k in ("sub", "ses", "run")
                                          if k in r.entities) for r in runs})[:6])
        return [Issue(t.rel, "events.no_protocol_run",
                      f"{t.rel}: no run of the protocol matches "
                      f"{' '.join(f'{k}-{found[k]}' for k in keys) or 'this file name'} "
                      f"(the protocol has e.g. {have}).",
                      f"Name the file after its protocol run ({_RUN_NAME}).")], []
    if len(matches) > 1:
        unnamed = [k for k in ("ses", "run") if k not in found]
        return [Issue(t.rel, "events.ambiguous_run",
                      f"{t.rel}: matches {len(matches)} protocol runs; the name has no "
                      f"{' or '.join(f'{k}-' for k in unnamed)} entity.",
                      f"Name the file after its protocol run ({_RUN_NAME}).")], []
    run = matches[0]
    key = next((k for k in ("stimulus_id", "stim_file") if k in t.header), None)
    if key is None:
        return [Issue(t.rel, "events.no_stimulus_column",
                      f"{t.rel}: has neither a stimulus_id nor a stim_file column, so it cannot "
                      f"be compared with the protocol ({run.rel}).",
                      "Keep the stimulus_id (or stim_file) column of the protocol's events.")], []
    planned = run.stimulus_ids if key == "stimulus_id" else run.stim_files
    shown = [(i, t.cell(r, key)) for i, r in enumerate(t.rows) if not t.is_null(r, key)]
    fix = ("Upload the events of this run as presented, in the protocol's order; if the run "
           "deviated from the protocol, say so to a curator.")
    for k in range(max(len(shown), len(planned))):
        if k >= len(shown):
            what = (f"ends after {len(shown)} stimulus trials; the protocol ({run.rel}) has "
                    f"{len(planned)}, next {planned[k]!r}")
            return [Issue(t.rel, "events.protocol_mismatch", f"{t.rel}: {what}.", fix)], []
        i, value = shown[k]
        if k >= len(planned):
            what = (f"shows {value!r} after the protocol's {len(planned)} stimulus trials "
                    f"({run.rel}) ended")
        elif not _same_file(value, planned[k]):
            what = (f"shows {key} {value!r} as stimulus trial {k + 1}; the protocol "
                    f"({run.rel}) has {planned[k]!r}")
        else:
            continue
        return [_first(t, "events.protocol_mismatch", [(i, what)], fix)], []
    return [], []
