"""``conform fit --merge``: per-subject results folders of one spec into a single run's folder.

Each folder was written by ``conform fit SPEC --subject S`` and carries its ``parts/``
(:mod:`~conform_core.analysis.parts`). The folders must come from the same analysis: their
``spec.lock.toml`` are identical apart from ``[dataset] subjects`` (same spec, parameters,
plugin versions and input files). Together they must hold every subject of the analysis,
each once. The merged folder is written as a single run of every subject writes it, so its
results.csv is byte-identical to that run's; so are spec.lock.toml, report.md,
context_draws.csv, unit_scores.parquet and the figures. provenance.json (times, command line,
the folders merged) and timings.csv (seconds measured by each job) differ.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w

from ..exceptions import SpecError
from .parts import AlreadyComplete, PartInfo, read_parts
from .report import provenance, results_csv, write_results
from .runner import AnalysisResult, row_order

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["merge_results", "lock_differences"]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every leaf of nested tables (lists are leaves)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _parse_lock(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where} is not a readable spec.lock.toml ({exc}).") from None


def lock_differences(a: str, b: str, *, ignore: Sequence[str] = ()) -> list[str]:
    """Return the keys where two locks differ (``table.key``, e.g. ``analysis.seed``).

    ``ignore`` lists keys left out of the comparison (``dataset.subjects`` to compare two
    runs of one spec on different subjects). Lists of tables (``denoiser = [...]``) compare
    whole. Empty when the locks are identical apart from the ignored keys.
    """
    flat_a = _flatten(_parse_lock(a, "The first lock"))
    flat_b = _flatten(_parse_lock(b, "The second lock"))
    keys = sorted(set(flat_a) | set(flat_b))
    return [k for k in keys if k not in ignore and flat_a.get(k) != flat_b.get(k)]


def _merged_lock(text: str, subjects: Sequence[str]) -> str:
    """Return a part's lock with ``[dataset] subjects`` set to every subject (a single run's).

    ``lock_text`` writes a comment header and ``tomli_w.dumps`` of a document; parsing it
    and dumping it again gives the same text, so only the subjects change.
    """
    lines = text.splitlines(keepends=True)
    n_header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    header = "".join(lines[:n_header])
    doc = tomllib.loads(text)
    doc["dataset"]["subjects"] = list(subjects)
    return header + tomli_w.dumps(doc)


def _check_same_analysis(parts: list[PartInfo], locks: list[str]) -> None:
    """Refuse folders that are not parts of one analysis."""
    first, first_lock = parts[0], locks[0]
    for part, lock in zip(parts[1:], locks[1:]):
        differences = lock_differences(first_lock, lock, ignore=("dataset.subjects",))
        if differences:
            raise SpecError(
                f"{str(part.folder)!r} is not a part of the same analysis as "
                f"{str(first.folder)!r}: their spec.lock.toml differ in "
                f"{', '.join(differences[:5])}{' ...' if len(differences) > 5 else ''} (only "
                "[dataset] subjects may differ). Merge folders that `conform fit` wrote from "
                "the same spec, options and input files, with a different --subject each."
            )
        if part.subjects_all != first.subjects_all:
            raise SpecError(
                f"{str(part.folder)!r} and {str(first.folder)!r} are parts of analyses of "
                f"different subjects ({len(part.subjects_all)} and {len(first.subjects_all)} "
                "subjects: the spec's [dataset] subjects differ). Run every part from the same "
                "spec."
            )


def _check_subjects(parts: list[PartInfo], locks: list[str]) -> None:
    """Refuse a subject held by two folders, or a subject of the analysis held by none."""
    owner: dict[str, Path] = {}
    for part, lock in zip(parts, locks):
        listed = tuple(tomllib.loads(lock).get("dataset", {}).get("subjects", ()))
        if listed != part.subjects:
            raise SpecError(
                f"{str(part.folder)!r}: its spec.lock.toml lists subjects {list(listed)} but its "
                f"parts/ hold {list(part.subjects)}; the folder was changed after it was "
                "written. Re-run it with `conform fit SPEC --subject S --overwrite`."
            )
        for subject in part.subjects:
            if subject in owner:
                raise SpecError(
                    f"Subject {subject!r} is in two of the folders: {str(owner[subject])!r} and "
                    f"{str(part.folder)!r}. Pass each subject's folder once."
                )
            owner[subject] = part.folder
    missing = [s for s in parts[0].subjects_all if s not in owner]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise SpecError(
            f"{len(missing)} subject(s) of the analysis are in none of the folders: {shown}. "
            f"Run them first (conform fit SPEC --subject {missing[0]} --out DIR) and pass "
            "their folders too."
        )


def merge_parts(parts: Sequence[PartInfo]) -> AnalysisResult:
    """Combine the results of ``parts`` in the order a single run of every subject has them.

    A single run lists per-subject outputs (the noise ceiling's unit scores, the units,
    the few-shot draws) in the analysis' subject order, and the outputs of the grid cells
    (subject x denoiser) sorted by subject name; rows of results.csv are sorted
    (:func:`~conform_core.analysis.runner.row_order`). Each part holds its subjects in the
    same orders, so stable sorts of the concatenated parts give the single run's.
    """
    order = {s: i for i, s in enumerate(parts[0].subjects_all)}
    results = [p.result for p in parts]
    rows = sorted((r for res in results for r in res.rows), key=row_order)

    def is_subject_stage(entry: dict[str, Any]) -> bool:  # the noise ceiling of a prepared subject
        return all(entry[k] == "none" for k in ("denoiser", "aligner", "encoder"))

    scores = [u for res in results for u in res.unit_scores]
    unit_scores = sorted((u for u in scores if is_subject_stage(u)),
                         key=lambda u: order[u["subject"]])
    unit_scores += sorted((u for u in scores if not is_subject_stage(u)),
                          key=lambda u: u["subject"])
    timed = [t for res in results for t in res.timings]
    timings = sorted((t for t in timed if t["denoiser"] == ""), key=lambda t: order[t["subject"]])
    timings += sorted((t for t in timed if t["denoiser"] != ""), key=lambda t: t["subject"])
    units = dict(sorted(((s, t) for res in results for s, t in res.units.items()),
                        key=lambda item: order[item[0]]))
    context = dict(sorted(((s, c) for res in results for s, c in res.context.items()),
                          key=lambda item: order[item[0]]))
    bootstrap = dict(sorted(((k, v) for res in results for k, v in res.bootstrap.items()),
                            key=lambda item: item[0][0]))
    flagged = {(d, s) for res in results for d, subjects in res.rank_zero.items() for s in subjects}
    rank_zero: dict[str, list[str]] = {}
    for subject in sorted(order):  # the order a single run's cells are gathered in
        for denoiser in parts[0].denoisers:
            if (denoiser, subject) in flagged:
                rank_zero.setdefault(denoiser, []).append(subject)
    return AnalysisResult(rows=rows, unit_scores=unit_scores, timings=timings, units=units,
                          context=context, bootstrap=bootstrap, rank_zero=rank_zero)


def merge_results(
    folders: Sequence[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    check_only: bool = False,
) -> tuple[Path, AnalysisResult]:
    """Merge per-subject results folders of one analysis into the folder of a single run.

    Parameters
    ----------
    folders : sequence of path
        Results folders written by ``conform fit SPEC --subject S`` (any number of subjects
        each), together holding every subject of the analysis exactly once.
    out : path
        The merged results folder; never silently overwritten.
    overwrite : bool, default=False
        Replace an existing ``out``.
    check_only : bool, default=False
        Check the folders and return the merged result without writing anything.

    Returns
    -------
    (Path, AnalysisResult)
        The merged folder and result (cells that failed in a part are its ``error`` rows).

    Raises
    ------
    AlreadyComplete
        ``out`` already holds this merge (same lock, no failed cell).
    SpecError
        Before anything is written: a folder without parts, folders of different analyses
        (their locks differ apart from the subjects), a subject in two folders or in none.
    """
    started = time.time()
    if not folders:
        raise SpecError("--merge needs the results folders to merge, e.g. "
                        "`conform fit --merge parts/sub-* --out results/all`.")
    parts = [read_parts(folder) for folder in folders]
    locks = [(p.folder / "spec.lock.toml").read_text(encoding="utf-8") for p in parts]
    _check_same_analysis(parts, locks)
    _check_subjects(parts, locks)
    out = Path(out)
    lock = _merged_lock(locks[0], parts[0].subjects_all)
    result = merge_parts(parts)
    if out.exists() and not overwrite:
        if _holds(out, lock, results_csv(result.rows)) and not result.failures:
            raise AlreadyComplete(out)
        raise SpecError(f"Results folder {str(out)!r} already exists and holds another merge "
                        "(or the parts changed since). Pass --out NEW_FOLDER, or --overwrite to "
                        "replace it.")
    if check_only:
        return out, result
    prov = provenance(_seed(lock), started, time.time(), list(sys.argv))
    prov["merged_from"] = [
        {"folder": str(p.folder), "subjects": list(p.subjects),
         "provenance": _read_json(p.folder / "provenance.json")}
        for p in parts
    ]
    write_results(out, result, name=parts[0].name, lock=lock, prov=prov,
                  metric_order=parts[0].metric_order, overwrite=overwrite)
    return out, result


def _holds(out: Path, lock: str, rows_csv: str) -> bool:
    """Whether ``out`` holds this very merge: the same lock and the same results.csv."""
    try:
        return ((out / "spec.lock.toml").read_text(encoding="utf-8") == lock
                and (out / "results.csv").read_bytes() == rows_csv.encode("utf-8"))
    except OSError:
        return False


def _seed(lock: str) -> int:
    return int(tomllib.loads(lock).get("analysis", {}).get("seed", 0))


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
