"""``BIDSDataset.describe()``: what the layout holds, per subject, and what cannot be used.

Reads file names, JSON sidecars, events and the stimuli table only: no image is opened, so
it works on a layout whose imaging files are empty (as in the bids-examples collection).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from conform_core.exceptions import ConformError

if TYPE_CHECKING:
    from .dataset import BIDSDataset

__all__ = ["describe_dataset"]

_UNITS = {"volume": "voxels in the brain mask", "raw": "voxels whose first run varies",
          "surface": "vertices (L+R) whose first run varies",
          "cifti": "grayordinates whose first run varies"}


def _grouped(findings: list[Any], limit: int = 3) -> list[str]:
    """One line per reason: how many files, and the first few of them."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for f in findings:
        by_reason[f.reason].append(f.path)
    lines = []
    for reason, paths in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(p.rsplit("/", 1)[-1] for p in paths[:limit])
        more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
        lines.append(f"{len(paths)} file(s): {reason} ({shown}{more})")
    return lines


def describe_dataset(ds: BIDSDataset) -> dict[str, Any]:
    """Summarise ``ds`` (see the module docstring).

    Without the derivatives folder (a raw-only BIDS folder, such as ds001 alone), the raw
    BOLD is described, and the output says so.
    """
    deriv = ds._derivatives_path()
    if deriv is not None and not deriv.is_dir() and ds._root().is_dir():
        raw_ds = type(ds)(**{**ds.get_params(deep=False), "derivatives": "none"})
        info = describe_dataset(raw_ds)
        info["derivatives"] = (
            f"{str(deriv)!r} not found: the raw BOLD is described instead. Read it with "
            "--param derivatives=none (derivatives = \"none\" in a spec), or pass "
            "--param derivatives=DIR, the fMRIPrep output folder.")
        return info
    from .dataset import _labels

    index = ds._index(strict=False)
    out: dict[str, Any] = {
        "dataset": type(ds).__name__,
        "location": str(ds.location),
        "derivatives": None if index.derivatives is None else str(index.derivatives),
        "task": index.task,
        "tasks found": ", ".join(index.tasks) or "none",
        "space": str(ds.space) + (" (CIFTI)" if ds.cifti else ""),
        "spaces found": ", ".join(index.spaces) or ("raw BOLD" if index.derivatives is None
                                                    else "none"),
        "units": _UNITS[ds._kind()],
    }
    if index.task is None:
        out["choose"] = (f"several tasks ({', '.join(index.tasks)}): pass --param task=NAME"
                         if index.tasks else "no BOLD run found")
        out["subjects"] = []
        out["cannot use"] = _grouped(index.findings)
        return out
    rows = []
    problems: list[str] = []
    try:
        catalog = ds._catalog()
    except ConformError as exc:
        catalog = None
        problems.append(str(exc))
    for label in index.subjects():
        runs = index.runs[label]
        n_events, ids, columns = 0, set(), set()
        for r in runs:
            if r.events is None:
                continue
            try:
                raw = ds._raw_events(r.events)
                n_events += raw.onset.size
                columns.add(raw.column)
                ids.update((catalog.ids_of(raw) if catalog is not None else raw.values).tolist())
            except ConformError as exc:
                problems.append(str(exc))
        subject_problems = [p for r in runs for p in r.problems]
        trs = sorted({r.tr for r in runs if r.tr is not None})
        if len(trs) > 1:
            subject_problems.append(f"sub-{label}: runs with different TRs {trs}")
        problems.extend(subject_problems)
        rows.append({
            "subject": f"sub-{label}",
            "sessions": ", ".join(sorted({r.session for r in runs if r.session})) or "-",
            "n_runs": len(runs),
            "tr": ", ".join(f"{t:g}" for t in trs) or "missing",
            "n_events": n_events,
            "n_stimuli": len(ids),
            "stimulus_column": ", ".join(sorted(columns)) or "-",
            "confounds": "yes" if all(r.confounds for r in runs) and runs else "no",
            "ok": "no" if subject_problems else "yes",
        })
    problems.extend(index.problems)
    for sub in _labels(ds.participants, "sub-") or []:
        if not index.runs.get(sub):
            why = ("no such subject in the study" if sub not in index.found_subjects else
                   "none of its runs can be used here (see 'cannot use')")
            problems.append(f"participants: sub-{sub} has no usable run of task "
                            f"{index.task!r}: {why}. Subjects found: "
                            f"{', '.join(index.found_subjects) or 'none'}.")
    if not index.problems:
        used = {r.session for runs in index.runs.values() for r in runs}
        for ses in _labels(ds.sessions, "ses-") or []:
            if ses not in used:
                problems.append(f"sessions: ses-{ses} has no usable run of task {index.task!r}"
                                f" (of the chosen participants). Sessions found: "
                                f"{', '.join(index.found_sessions) or 'none'}.")
    starts = sorted({r.start_time for runs in index.runs.values() for r in runs
                     if r.start_time})
    if index.derivatives is not None:
        out["slice timing"] = (
            f"StartTime {', '.join(f'{t:g}' for t in starts)} s in the BOLD sidecars: onsets "
            "are moved by -StartTime (volume k is sampled at StartTime + k * TR)" if starts
            else "no StartTime in the BOLD sidecars: volume k is taken at k * TR")
    out["subjects"] = rows
    out["stimuli"] = ("none" if catalog is None or catalog.table is None else
                      f"{catalog.table.ids.size} in stimuli/stimuli.tsv"
                      + (f", embeddings {tuple(catalog.embeddings.shape)}"
                         if catalog.embeddings is not None else ", no embeddings"))
    truth = ds._truth_folder()
    out["ground truth"] = str(truth) if truth is not None else "none"
    out["problems"] = problems
    out["cannot use"] = _grouped(index.findings)
    return out
