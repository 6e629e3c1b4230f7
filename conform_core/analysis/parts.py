"""The ``parts/`` of a results folder: its :class:`AnalysisResult`, saved for ``conform fit --merge``.

``conform fit SPEC --subject S`` runs some of a spec's subjects and writes, besides the usual
results folder, ``parts/``: everything :func:`~conform_core.analysis.report.write_results`
needs, without pickles, so that per-subject folders can be merged into the folder a single run
of every subject writes (:mod:`~conform_core.analysis.merge`).

``parts/manifest.json`` holds the analysis name, the subjects of this folder and of the whole
analysis, the denoiser labels, the metric order, the rows of results.csv, the timings and
the description of every array; ``parts/arrays.npz`` holds the arrays (per-unit scores, the
units and their noise ceilings, few-shot draws, bootstrap resamples), read back with
``allow_pickle=False``. Floats travel through JSON with :func:`repr`'s digits, so they come
back bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..data import Units
from ..exceptions import SpecError
from ..io import to_builtin, write_text
from .context import ContextDraw, SubjectContext
from .runner import AnalysisResult
from .scores import UnitTable

__all__ = ["PARTS_DIR", "PARTS_FORMAT", "PartInfo", "write_parts", "read_parts", "has_parts",
           "AlreadyComplete"]

PARTS_DIR = "parts"
"""Sub-folder of a results folder that holds its parts."""

PARTS_FORMAT = 1
"""Version of the layout of ``parts/`` (refused by readers that do not know it)."""

_MANIFEST = "manifest.json"
_ARRAYS = "arrays.npz"


class AlreadyComplete(SpecError):
    """The results folder already holds exactly this analysis: nothing to run.

    Raised before any work by :func:`~conform_core.analysis.prepare_analysis` (and
    :func:`~conform_core.analysis.merge.merge_results`) when the folder exists, is complete
    (folders are published whole, by a rename), its ``spec.lock.toml`` is the one this run
    would write (same spec, subjects, parameters and input files), and no cell of it failed.
    ``conform fit`` reports it and exits 0, so a re-submitted cluster job skips finished work.
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        super().__init__(
            f"Results folder {str(out)!r} is already complete for this analysis (same spec, "
            "subjects and input files; no failed cell): nothing to do. Pass --overwrite to run "
            "it again."
        )


@dataclass(frozen=True)
class PartInfo:
    """What a results folder's parts say about it, besides its :class:`AnalysisResult`.

    Attributes
    ----------
    folder : Path
        The results folder.
    name : str
        Analysis name (title of report.md).
    subjects : tuple of str
        Subjects this folder ran, in the analysis' order.
    subjects_all : tuple of str
        Every subject of the analysis (the spec's ``[dataset] subjects``, resolved), in the
        order a single run lists them.
    denoisers : tuple of str
        Denoiser labels, in the spec's order.
    metric_order : tuple of str
        Order of the metrics in report.md's tables.
    result : AnalysisResult
        Everything the folder's run produced.
    """

    folder: Path
    name: str
    subjects: tuple[str, ...]
    subjects_all: tuple[str, ...]
    denoisers: tuple[str, ...]
    metric_order: tuple[str, ...]
    result: AnalysisResult


def has_parts(folder: str | Path) -> bool:
    """Whether ``folder`` holds the parts of a ``conform fit --subject`` run."""
    return (Path(folder) / PARTS_DIR / _MANIFEST).is_file()


def _strings(values: Any) -> np.ndarray:
    """Return ``values`` as a fixed-width unicode array (saved without pickles)."""
    return np.asarray([str(v) for v in values], dtype=np.str_)


def write_parts(
    folder: Path,
    result: AnalysisResult,
    *,
    name: str,
    subjects: Sequence[str],
    subjects_all: Sequence[str],
    denoisers: Sequence[str],
    metric_order: Sequence[str],
) -> None:
    """Write ``folder/parts/`` (manifest and arrays) for ``result``.

    ``folder`` is the temporary folder :func:`~conform_core.analysis.report.write_results`
    fills, so the parts are published with the rest of the results folder or not at all.

    Raises
    ------
    SpecError
        If ``result`` has aligner outputs: those need every subject at once, so a folder
        with them cannot be merged with others.
    """
    if result.aligner_context or any(r["aligner"] != "none" for r in result.rows):
        raise SpecError("Parts are written for runs without aligners only (an aligner is "
                        "scored leaving one subject out, so it needs every subject at once).")
    arrays: dict[str, np.ndarray] = {}
    columns = list(result.rows[0]) if result.rows else []
    unit_scores = []
    for i, entry in enumerate(result.unit_scores):
        metrics = list(entry["values"])
        for j, metric in enumerate(metrics):
            arrays[f"unit_scores.{i}.{j}"] = np.asarray(entry["values"][metric])
        unit_scores.append({**{k: v for k, v in entry.items() if k != "values"},
                            "metrics": metrics})
    units = []
    for k, (subject, table) in enumerate(result.units.items()):
        arrays[f"units.{k}.ids"] = _strings(table.units.ids)
        if table.units.indices is not None:
            arrays[f"units.{k}.indices"] = np.asarray(table.units.indices, dtype=np.int64)
        if table.units.roi is not None:
            arrays[f"units.{k}.roi"] = _strings(table.units.roi)
        arrays[f"units.{k}.noise_ceiling"] = np.asarray(table.noise_ceiling)
        arrays[f"units.{k}.ceiling_reason"] = _strings(table.ceiling_reason)
        units.append({"subject": subject, "table_subject": table.subject,
                      "space": table.units.space, "indices": table.units.indices is not None,
                      "roi": table.units.roi is not None})
    context = []
    for k, (subject, ctx) in enumerate(result.context.items()):
        arrays[f"context.{k}.stimulus_ids"] = _strings(ctx.stimulus_ids)
        for i, draw in enumerate(ctx.draws):
            arrays[f"context.{k}.draw.{i}"] = np.asarray(draw.indices)
        context.append({"subject": subject, "context_subject": ctx.subject,
                        "n_train": ctx.n_train, "skipped": list(ctx.skipped),
                        "draws": [{"n_context": d.n_context, "draw": d.draw, "seed": d.seed}
                                  for d in ctx.draws]})
    bootstrap = []
    for i, (key, values) in enumerate(result.bootstrap.items()):
        arrays[f"bootstrap.{i}"] = np.asarray(values)
        bootstrap.append(list(key))
    manifest = {
        "format": PARTS_FORMAT,
        "name": name,
        "subjects": list(subjects),
        "subjects_all": list(subjects_all),
        "denoisers": list(denoisers),
        "metric_order": list(metric_order),
        "row_columns": columns,
        "rows": [[r[c] for c in columns] for r in result.rows],
        "timings": result.timings,
        "unit_scores": unit_scores,
        "units": units,
        "context": context,
        "bootstrap": bootstrap,
        "rank_zero": result.rank_zero,
    }
    parts = folder / PARTS_DIR
    parts.mkdir()
    with open(parts / _ARRAYS, "wb") as handle:  # inside the results folder's temporary copy
        # no object arrays (strings are fixed-width unicode), so nothing is pickled; the
        # keyword allow_pickle exists only from numpy 2.1 (before it, it would be an array)
        cast(Any, np.savez_compressed)(handle, **arrays)
    # no sort_keys: the order of rows' columns and of every list is part of the value
    write_text(parts / _MANIFEST, json.dumps(to_builtin(manifest), indent=1) + "\n")


def read_parts(folder: str | Path) -> PartInfo:
    """Read the parts of results folder ``folder`` back.

    Raises
    ------
    SpecError
        If ``folder`` has no parts (it was not written by ``conform fit --subject``), or
        they are unreadable or of an unknown format.
    """
    folder = Path(folder)
    parts = folder / PARTS_DIR
    if not folder.is_dir():
        raise SpecError(f"{str(folder)!r} is not a folder. Pass the results folders that "
                        "`conform fit SPEC --subject S --out DIR` wrote.")
    if not has_parts(folder):
        raise SpecError(
            f"{str(folder)!r} has no {PARTS_DIR}/{_MANIFEST}, so it cannot be merged: only "
            "results folders written by `conform fit SPEC --subject S` carry their parts. "
            "Re-run that subject with --subject."
        )
    try:
        manifest = json.loads((parts / _MANIFEST).read_text(encoding="utf-8"))
        with np.load(parts / _ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        raise SpecError(f"{str(parts)!r} cannot be read ({exc}). Re-run that part with "
                        "`conform fit SPEC --subject S --overwrite`.") from None
    if manifest.get("format") != PARTS_FORMAT:
        raise SpecError(
            f"{str(parts)!r} has parts of format {manifest.get('format')!r}; this conform reads "
            f"format {PARTS_FORMAT}. Re-run that part with the same conform version as the others."
        )
    columns = manifest["row_columns"]
    rows = [dict(zip(columns, values)) for values in manifest["rows"]]
    unit_scores = []
    for i, entry in enumerate(manifest["unit_scores"]):
        metrics = entry.pop("metrics")
        unit_scores.append({**entry, "values": {m: arrays[f"unit_scores.{i}.{j}"]
                                                for j, m in enumerate(metrics)}})
    units = {}
    for k, entry in enumerate(manifest["units"]):
        table = Units(ids=arrays[f"units.{k}.ids"], space=entry["space"],
                      indices=arrays[f"units.{k}.indices"] if entry["indices"] else None,
                      roi=arrays[f"units.{k}.roi"] if entry["roi"] else None)
        units[entry["subject"]] = UnitTable(entry["table_subject"], table,
                                            arrays[f"units.{k}.noise_ceiling"],
                                            arrays[f"units.{k}.ceiling_reason"])
    context = {}
    for k, entry in enumerate(manifest["context"]):
        draws = tuple(ContextDraw(d["n_context"], d["draw"], d["seed"], arrays[f"context.{k}.draw.{i}"])
                      for i, d in enumerate(entry["draws"]))
        context[entry["subject"]] = SubjectContext(
            entry["context_subject"], entry["n_train"], arrays[f"context.{k}.stimulus_ids"],
            draws, tuple(entry["skipped"]))
    bootstrap = {tuple(key): arrays[f"bootstrap.{i}"]
                 for i, key in enumerate(manifest["bootstrap"])}
    result = AnalysisResult(rows=rows, unit_scores=unit_scores, timings=manifest["timings"],
                            units=units, context=context, bootstrap=bootstrap,
                            rank_zero={k: list(v) for k, v in manifest["rank_zero"].items()})
    return PartInfo(folder=folder, name=manifest["name"], subjects=tuple(manifest["subjects"]),
                    subjects_all=tuple(manifest["subjects_all"]),
                    denoisers=tuple(manifest["denoisers"]),
                    metric_order=tuple(manifest["metric_order"]), result=result)
