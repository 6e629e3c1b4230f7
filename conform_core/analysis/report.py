"""The results folder: results.csv, unit_scores.parquet, report.md with figures, lock, provenance."""

from __future__ import annotations

import csv
import io
import math
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Units
from ..io import atomic_directory, write_json, write_text
from .context import (
    CONTEXT_COLUMN,
    ceiling_in_metric,
    context_draws_csv,
    few_shot_curves,
    few_shot_metric,
    is_few_shot,
    mean_and_sem,
    skipped_sizes_note,
)
from .figures import write_figures
from .runner import AnalysisResult
from .scores import CEILING_REASONS, COLUMNS
from .summary import as_markdown, summary_tables, uncertainty_note

__all__ = ["write_results", "summary_table", "provenance", "noise_ceiling_summary",
           "nc_r2_exclusions", "nc_r2_description", "rank_zero_notes", "unit_scores_frame",
           "UNIT_SCORE_COLUMNS", "TIMING_COLUMNS",
           "result_columns", "few_shot_table", "few_shot_ceiling", "few_shot_notes"]

UNIT_SCORE_COLUMNS = ("subject", "unit_id", "unit_index", "unit_position", "space", "roi",
                      "denoiser", "aligner", "encoder", "metric", "value")
"""Columns of unit_scores.parquet (see :func:`unit_scores_frame`)."""

TIMING_COLUMNS = ("subject", "stage", "denoiser", "seconds")
"""Columns of timings.csv."""

_PACKAGES = ("conform-fmri", "numpy", "scipy", "scikit-learn", "dask", "distributed", "pluggy",
             "torch", "faiss-cpu", "h5py", "nibabel")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def result_columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """Return the columns of results.csv.

    :data:`COLUMNS`, with ``n_context`` after ``encoder`` when any row has it (an analysis
    with ``[evaluation] context_sizes``).
    """
    if not any(CONTEXT_COLUMN in row for row in rows):
        return COLUMNS
    at = COLUMNS.index("encoder") + 1
    return (*COLUMNS[:at], CONTEXT_COLUMN, *COLUMNS[at:])


def results_csv(rows: list[dict[str, Any]]) -> str:
    """Render rows as CSV (full float precision, so re-runs compare byte for byte)."""
    columns = result_columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row.get(c, "")) for c in columns])
    return buffer.getvalue()


def summary_table(
    result: AnalysisResult, metric_order: tuple[str, ...]
) -> tuple[list[str], list[list[str]]]:
    """Median over subjects of each subject's median (ROI "all"), per denoiser x aligner x encoder.

    Encoders count with their fit on all training stimuli (the few-shot fits on N of them
    are in :func:`few_shot_table`).
    """
    cells: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for r in result.rows:
        if r["roi"] != "all" or r["status"] != "ok" or r["denoiser"] == "none":
            continue
        if is_few_shot(r, result.context):
            continue
        key = (r["denoiser"], r["aligner"], r["encoder"])
        cells.setdefault(key, {}).setdefault(r["metric"], []).append(r["value"])
    metrics = [m for m in metric_order if any(m in v for v in cells.values())]
    header = ["denoiser", "aligner", "encoder", *metrics]
    body = []
    for key in sorted(cells):
        values = cells[key]
        body.append([*key, *[_median_text(values[m]) if m in values else "" for m in metrics]])
    return header, body


def _median_text(values: list[float]) -> str:
    """Return the median of the finite values to 3 decimals (``nan`` when there is none)."""
    finite = [v for v in values if np.isfinite(v)]
    return f"{np.median(finite):.3f}" if finite else "nan"


def _mean_sem(values: list[float]) -> str:
    mean, sem = mean_and_sem(values)
    if not np.isfinite(mean):
        return ""
    return f"{mean:.3f}" if not np.isfinite(sem) else f"{mean:.3f} ± {sem:.3f}"


def few_shot_table(result: AnalysisResult) -> tuple[str, list[str], list[list[str]]] | None:
    """Return the few-shot table: per denoiser → encoder, the score at each context size N.

    Each cell is the mean over subjects ± its standard error (none with one subject) of
    each subject's median over units (ROI "all") of the per-unit score averaged over the
    draws; the last column is the fit on all training stimuli. The score is the first of
    ``pearson_r``, ``nc_r2``, ``r2`` that was computed.

    Returns
    -------
    (metric, header, body) or None
        None when the analysis has no ``context_sizes`` (or no few-shot score).
    """
    metric = few_shot_metric(result.rows)
    if metric is None or not result.context:
        return None
    curves = few_shot_curves(result.rows, result.context, metric)
    sizes = sorted({n for c in curves for n in c.by_size})
    n_train = sorted({c.n_train for c in result.context.values()})
    span = str(n_train[0]) if len(n_train) == 1 else f"{n_train[0]}–{n_train[-1]}"
    header = ["denoiser", "encoder", *[f"N={n}" for n in sizes], f"all (N={span})"]
    body = [
        [c.denoiser, c.encoder, *[_mean_sem(c.by_size.get(n, [])) for n in sizes],
         _mean_sem(c.full)]
        for c in curves
    ]
    return metric, header, body


def few_shot_ceiling(result: AnalysisResult, metric: str) -> float | None:
    """Mean over subjects of the median noise ceiling in ``metric``'s units, or None.

    See :func:`~conform_core.analysis.context.ceiling_in_metric`: ``sqrt(nc / 100)`` for
    ``pearson_r``, ``nc / 100`` for ``r2``, 1 for ``nc_r2``.
    """
    values = [ceiling_in_metric(t.noise_ceiling, metric) for t in result.units.values()]
    mean, _ = mean_and_sem(values)
    return mean if np.isfinite(mean) else None


def few_shot_notes(result: AnalysisResult) -> list[str]:
    """Return sentences for the terminal and report.md: how few-shot fits were drawn, what was skipped."""
    if not result.context:
        return []
    draws = max((d.draw + 1 for c in result.context.values() for d in c.draws), default=0)
    notes = [
        f"Few-shot: every encoder was also fitted on N of each subject's training stimuli, "
        f"{draws} draw(s) per N (disjoint while N × draws fits in the training stimuli; listed "
        "in context_draws.csv), and scored on the same held-out test stimuli; per unit, the "
        "score is the mean over draws."
    ]
    skipped = skipped_sizes_note(result.context)
    if skipped is not None:
        notes.append(skipped)
    return notes


def noise_ceiling_summary(result: AnalysisResult) -> float | None:
    """Median over subjects of the per-subject median noise ceiling (percent), or None."""
    values = [
        r["value"]
        for r in result.rows
        if r["metric"] == "noise_ceiling" and r["roi"] == "all" and r["status"] == "ok"
    ]
    return float(np.nanmedian(values)) if values else None


def nc_r2_description(ceiling: float) -> str:
    """Say what the noise ceiling is and how ``nc_r2`` is computed from it (plain text)."""
    return (f"Noise ceiling of the held-out test averages: {ceiling:.1f} % of variance (median "
            "over subjects and units). nc_r2 is computed per unit, R² / that unit's noise "
            "ceiling, and summarised as the median of these ratios over the units with a "
            "positive ceiling (not the median R² over the median ceiling).")


def rank_zero_notes(result: AnalysisResult) -> list[str]:
    """One sentence per denoiser that predicts each unit's mean whatever the stimulus."""
    from .uncertainty import RANK_ZERO

    notes = []
    n = len(result.units)
    for denoiser, subjects in sorted(result.rank_zero.items()):
        where = "every subject" if len(subjects) >= n else ", ".join(subjects)
        notes.append(f"{denoiser}: {RANK_ZERO} on {where} (its output does not vary over "
                     "stimuli; its encoder learns nothing from it).")
    return notes


def _percent(part: int, whole: int) -> str:
    share = 100.0 * part / whole if whole else 0.0
    return f"{share:.1f} %" if share < 10 else f"{share:.0f} %"


def nc_r2_exclusions(result: AnalysisResult) -> str | None:
    """Say how many units ``nc_r2`` leaves out and why, or None when it leaves out none.

    ``nc_r2`` (R² / noise ceiling) is NaN, and so missing from every median, for a unit whose
    held-out noise ceiling is 0. The sentence counts those units over all subjects, gives the
    reasons (see :data:`~conform_core.analysis.scores.CEILING_REASONS`) and, with several
    subjects, the count of each subject that has any. Plain text, for the terminal and
    report.md alike. None also when ``nc_r2`` was not computed.
    """
    if not any(r["metric"] == "nc_r2" for r in result.rows) or not result.units:
        return None
    total = sum(t.units.n_units for t in result.units.values())
    reasons = np.concatenate([t.ceiling_reason for t in result.units.values()])
    left_out = int((reasons != "").sum())
    if not left_out:
        return None
    counts = [(int((reasons == code).sum()), code) for code in CEILING_REASONS]
    counts = [(n, code) for n, code in counts if n]
    if len(counts) == 1:
        why = f"whose held-out noise ceiling is 0: {CEILING_REASONS[counts[0][1]]}"
    else:
        why = "whose held-out noise ceiling is 0: " + "; ".join(
            f"{n} with {CEILING_REASONS[code]}" for n, code in counts
        )
    text = f"nc_r2 leaves out {left_out} of {total} units ({_percent(left_out, total)}) {why}."
    if len(result.units) > 1:
        per = [
            (name, int((t.ceiling_reason != "").sum()), t.units.n_units)
            for name, t in result.units.items()
        ]
        shown = [f"{name} {n} of {m}" for name, n, m in per if n]
        more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
        text += f" Per subject: {', '.join(shown[:8])}{more}."
    return text


def provenance(plan_seed: int, started: float, ended: float, argv: list[str]) -> dict[str, Any]:
    """Package versions, platform, seed, start and end times, command line."""
    import datetime as dt

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "seed": plan_seed,
        "started": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(),
        "ended": dt.datetime.fromtimestamp(ended, dt.timezone.utc).isoformat(),
        "seconds": round(ended - started, 3),
        "argv": argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
    }


def _markdown(
    result: AnalysisResult, name: str, figures: list[tuple[str, str]], metric_order: tuple[str, ...]
) -> str:
    header, body = summary_table(result, metric_order)
    lines = [
        f"# conform fit: {name}",
        "",
        "Scores on held-out test stimuli against raw test-trial averages. "
        + uncertainty_note(result),
        "",
    ]
    ceiling = noise_ceiling_summary(result)
    if ceiling is not None:
        lines += [nc_r2_description(ceiling).replace("nc_r2", "`nc_r2`", 1), ""]
    excluded = nc_r2_exclusions(result)
    if excluded is not None:
        lines += [excluded.replace("nc_r2", "`nc_r2`", 1), ""]
    lines += [f"Flagged: {note}" for note in rank_zero_notes(result)]
    if result.rank_zero:
        lines.append("")
    for table in summary_tables(result):
        lines += as_markdown(table)
    if body:
        lines += ["## All scores", "",
                  'Median over subjects of each subject\'s median over units (ROI "all").', ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
    lines += _few_shot_markdown(result)
    failures = result.failures
    if failures:
        lines += ["", "## Failed cells", ""]
        lines += [
            f"- {r['subject']} / {r['denoiser']} / {r['aligner']} / {r['encoder']}"
            + (f" / n_context {r[CONTEXT_COLUMN]}" if r.get(CONTEXT_COLUMN, "") != "" else "")
            + f": {r['status']}"
            for r in failures
        ]
    for title, file in figures:
        lines += ["", f"## {title}", "", f"![{title}]({file})"]
    lines += [
        "",
        "Files: `results.csv` (long format), `unit_scores.parquet` (per unit, with unit "
        "ids, vertex/voxel indices and ROI labels), `spec.lock.toml` (re-run or swap a "
        "stage), `provenance.json`, `timings.csv` (seconds per subject, stage and denoiser)"
        + (
            ", `context_draws.csv` (the training stimuli of every few-shot draw, with its seed)."
            if result.context
            else "."
        ),
        "",
    ]
    return "\n".join(lines)


def _few_shot_markdown(result: AnalysisResult) -> list[str]:
    """Return the lines of report.md's few-shot section (none without ``context_sizes``)."""
    table = few_shot_table(result)
    if table is None:
        return []
    metric, header, body = table
    lines = [
        "",
        "## Few-shot: score vs number of training stimuli",
        "",
        f"Held-out `{metric}` of each encoder fitted on N training stimuli: mean over subjects "
        "± standard error of each subject's median over units.",
        "",
        *[line for note in few_shot_notes(result) for line in (note, "")],
    ]
    ceiling = few_shot_ceiling(result, metric)
    if ceiling is not None:
        lines += [f"Noise ceiling in `{metric}` units: {ceiling:.3f} (mean over subjects).", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def _unit_columns(units: Units | None, n: int) -> dict[str, Any]:
    """Return the unit columns of unit_scores.parquet (nulls where ``units`` is None or lacks them)."""
    import pandas as pd

    roi: Any = None
    if units is not None and units.roi is not None:
        roi = units.roi.astype(object)
        roi[units.roi == ""] = None
    indices = units.indices if units is not None and units.indices is not None else [None] * n
    return {
        "unit_id": None if units is None else units.ids.astype(object),
        "unit_index": pd.array(indices, dtype="Int64"),
        "unit_position": np.arange(n, dtype=np.int64),
        "space": None if units is None else units.space,
        "roi": roi,
    }


def unit_scores_frame(result: AnalysisResult) -> Any:
    """Every per-unit score as a long pandas DataFrame (the content of unit_scores.parquet).

    Columns (:data:`UNIT_SCORE_COLUMNS`): ``subject``; ``unit_id`` (the dataset's unit id);
    ``unit_index`` (vertex or voxel index in ``space``, null when the dataset has none);
    ``unit_position`` (position in the subject's scored units, after any ``[dataset] rois``
    restriction); ``space``; ``roi`` (null when the unit has no ROI label); ``denoiser``,
    ``aligner``, ``encoder`` (``"none"`` when the row is not about that stage); with
    ``[evaluation] context_sizes``, ``n_context`` (the encoder's number of training stimuli:
    N, scores averaged over the draws, or all of them; null for rows not about an encoder);
    ``metric``; ``value``. Aligner rows are the held-out subject's units; ``noise_ceiling``
    rows (every stage ``"none"``) are per subject.
    """
    import pandas as pd

    with_context = any(CONTEXT_COLUMN in u for u in result.unit_scores)
    columns = list(UNIT_SCORE_COLUMNS)
    if with_context:
        columns.insert(columns.index("encoder") + 1, CONTEXT_COLUMN)
    frames = []
    for u in result.unit_scores:
        table = result.units.get(u["subject"])
        for metric, values in u["values"].items():
            values = np.asarray(values, dtype=np.float64)
            units = (
                table.units
                if table is not None and table.units.n_units == values.shape[0]
                else None
            )
            frames.append(
                pd.DataFrame(
                    {
                        "subject": u["subject"],
                        **_unit_columns(units, values.shape[0]),
                        "denoiser": u["denoiser"],
                        "aligner": u["aligner"],
                        "encoder": u["encoder"],
                        **(
                            {CONTEXT_COLUMN: pd.array([u.get(CONTEXT_COLUMN)] * values.shape[0],
                                                      dtype="Int64")}
                            if with_context
                            else {}
                        ),
                        "metric": metric,
                        "value": values,
                    }
                )
            )
    if not frames:
        return pd.DataFrame(
            {
                c: pd.Series(
                    dtype="Int64"
                    if c == "unit_index"
                    else "int64"
                    if c == "unit_position"
                    else "float64"
                    if c == "value"
                    else object
                )
                for c in UNIT_SCORE_COLUMNS
            }
        )
    frame = pd.concat(frames, ignore_index=True)
    for column in ("unit_id", "space", "roi"):
        frame[column] = frame[column].astype(object)
    return frame[columns]


def timings_csv(timings: list[dict[str, Any]]) -> str:
    """Render timings as CSV (columns :data:`TIMING_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TIMING_COLUMNS)
    writer.writerows(
        (t["subject"], t["stage"], t.get("denoiser", ""), f"{t['seconds']:.4f}") for t in timings
    )
    return buffer.getvalue()


def write_results(
    out: Path,
    result: AnalysisResult,
    *,
    name: str,
    lock: str,
    prov: dict[str, Any],
    metric_order: tuple[str, ...],
    overwrite: bool = False,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write the results folder atomically (built under a temporary name, then renamed).

    ``extra``, when given, is called with the temporary folder before it is published, to
    add files of its own (the ``parts/`` of a ``conform fit --subject`` run).
    """
    with atomic_directory(out, overwrite=overwrite) as tmp:
        write_text(tmp / "results.csv", results_csv(result.rows))
        write_text(tmp / "spec.lock.toml", lock)
        write_json(tmp / "provenance.json", prov)
        write_text(tmp / "timings.csv", timings_csv(result.timings))
        if result.context:
            write_text(tmp / "context_draws.csv",
                       context_draws_csv(result.context[s] for s in sorted(result.context)))
        unit_scores_frame(result).to_parquet(tmp / "unit_scores.parquet", index=False)
        figures = write_figures(result, tmp)
        write_text(tmp / "report.md", _markdown(result, name, figures, metric_order))
        if extra is not None:
            extra(tmp)
    return out
