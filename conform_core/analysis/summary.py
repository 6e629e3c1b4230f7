"""The summary a user reads: which denoiser for denoised responses, which for encoding models.

Three tables, each answering one question, printed by ``conform fit`` and written to
report.md alike:

- **Denoised responses**: denoisers ranked by ``heldout_trial_nmse`` (the truth-free error
  of their held-out output; ``denoise_truth_nmse`` beside it on simulated data);
- **Encoding models**: denoiser → encoder ranked by the held-out encoding score;
- **Aligners**: between-subject prediction (leave one subject out), in a table of its own;
  with ``[evaluation] context_sizes``, also the **alignment data budget**: each aligner's
  score as the held-out subject is added from N of its images, beside the within-subject
  encoders fitted on the same N.

Each value is the median over subjects of each subject's median over units (ROI "all"),
with a 95 % percentile bootstrap interval over test stimuli and the range over subjects;
a winner is named only when the paired interval of its difference with the runner-up
excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .context import is_few_shot
from .runner import AnalysisResult
from .uncertainty import N_RESAMPLES, RANK_ZERO, difference_interval, summary_interval

__all__ = ["SummaryTable", "summary_tables", "denoising_summary", "encoding_summary",
           "aligner_summary", "budget_summary", "ENCODING_METRICS", "NMSE_REFERENCE"]

ENCODING_METRICS = ("nc_r2", "r2", "pearson_r")
"""The encoding score the encoding table is ranked by: the first of these computed."""

NMSE_REFERENCE = (
    "NMSE: lower is better; 0 is the true signal, 1 is as good as predicting each unit's mean "
    "response (the reference: a denoiser above 1 does worse than no stimulus information)."
)

_KEYS = ("denoiser", "aligner", "encoder")


@dataclass
class SummaryTable:
    """One table of the summary: a title, what it answers, columns, rows and notes."""

    title: str
    question: str
    header: list[str]
    body: list[list[str]]
    notes: list[str] = field(default_factory=list)


def _values(result: AnalysisResult) -> dict[tuple[str, str, str, str], dict[str, float]]:
    """(denoiser, aligner, encoder, metric) -> {subject: ROI "all" value} of ok rows."""
    out: dict[tuple[str, str, str, str], dict[str, float]] = {}
    for r in result.rows:
        if r["roi"] != "all" or r["status"] != "ok" or r["denoiser"] == "none":
            continue
        if is_few_shot(r, result.context):
            continue
        key = (r["denoiser"], r["aligner"], r["encoder"], r["metric"])
        out.setdefault(key, {})[r["subject"]] = float(r["value"])
    return out


def _median(values: dict[str, float]) -> float:
    v = np.array([x for x in values.values() if np.isfinite(x)])
    return float(np.median(v)) if v.size else float("nan")


def _spread(values: dict[str, float]) -> str:
    v = np.array([x for x in values.values() if np.isfinite(x)])
    if v.size < 2:
        return "1 subject" if v.size == 1 else ""
    return f"{v.min():.3f} to {v.max():.3f} ({v.size})"


def _fmt(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.3f}"


def _rank_note(result: AnalysisResult, denoiser: str) -> str:
    subjects = result.rank_zero.get(denoiser, [])
    if not subjects:
        return ""
    n = len(result.units) or len(subjects)
    return RANK_ZERO if len(subjects) >= n else f"{RANK_ZERO} ({len(subjects)} of {n} subjects)"


def _winner(result: AnalysisResult, ranked: list[tuple[str, str, str, str]], lower: bool,
            name: str) -> str:
    """Name the first of ``ranked`` only when its paired interval with the second excludes 0."""
    if len(ranked) < 2:
        return ""
    best, second = ranked[0], ranked[1]
    label = " → ".join(k for k in best[:3] if k != "none")
    other = " → ".join(k for k in second[:3] if k != "none")
    values = _values(result)
    diff = _median(values[best]) - _median(values[second])
    interval = difference_interval(result.bootstrap, best, second, diff)
    if not interval.text():
        return (f"{label} ranks first by {name} ({label} − {other} = {diff:+.3f}); no bootstrap "
                "interval, so no winner is named.")
    verdict = (f"Winner: {label} ({'lower' if lower else 'higher'} {name} than {other})"
               if interval.excludes_zero()
               else f"No clear winner: {label} and {other} are within the uncertainty")
    return (f"{verdict}: {label} − {other} = {diff:+.3f}, 95 % paired bootstrap interval "
            f"{interval.text()} over test stimuli.")


def _interval_text(result: AnalysisResult, key: tuple[str, str, str, str]) -> str:
    estimate = _median(_values(result).get(key, {}))
    return summary_interval(result.bootstrap, key, estimate).text()


def denoising_summary(result: AnalysisResult) -> SummaryTable | None:
    """Denoisers ranked by ``heldout_trial_nmse`` (else ``denoise_truth_nmse``), lowest first."""
    values = _values(result)
    have = {k[3] for k in values if k[1:3] == ("none", "none")}
    metric = next((m for m in ("heldout_trial_nmse", "denoise_truth_nmse") if m in have), None)
    if metric is None:
        return None
    truth = metric != "denoise_truth_nmse" and "denoise_truth_nmse" in have
    keys = [k for k in values if k[1:] == ("none", "none", metric)]
    keys.sort(key=lambda k: (not np.isfinite(_median(values[k])), _median(values[k]), k))
    header = ["rank", "denoiser", metric, "95 % interval", "over subjects"]
    if truth:
        header += ["denoise_truth_nmse", "95 % interval (truth)"]
    header += ["note"]
    body = []
    for i, k in enumerate(keys, start=1):
        row = [str(i), k[0], _fmt(_median(values[k])), _interval_text(result, k),
               _spread(values[k])]
        if truth:
            t = (k[0], "none", "none", "denoise_truth_nmse")
            row += [_fmt(_median(values.get(t, {}))), _interval_text(result, t)]
        body.append([*row, _rank_note(result, k[0])])
    what = ("heldout_trial_nmse: each denoiser's output for the average of all but one test "
            "trial compared with the left-out trial, less the noise variance, over the true "
            "signal's estimated variance: it estimates the error to the true signal without "
            "it (units without a usable estimate are left out of the median).")
    if metric == "denoise_truth_nmse":
        what = "denoise_truth_nmse: error of the denoised held-out responses to the true signal."
    notes = [NMSE_REFERENCE, what]
    if truth:
        notes.append("denoise_truth_nmse: the same error measured against the simulator's true "
                     "signal.")
    winner = _winner(result, keys, True, metric)
    if winner:
        notes.append(winner)
    return SummaryTable(
        "Denoised responses",
        f"Which denoiser should I use for denoised responses? Ranked by {metric}.",
        header, body, notes)


def encoding_summary(result: AnalysisResult) -> SummaryTable | None:
    """Denoiser → encoder ranked by the held-out encoding score (highest first)."""
    values = _values(result)
    cells = {k[:3] for k in values if k[1] == "none" and k[2] != "none"}
    present = {k[3] for k in values if k[:3] in cells}
    metric = next((m for m in ENCODING_METRICS if m in present), None)
    if metric is None:
        return None
    keys = [(*c, metric) for c in cells if (*c, metric) in values]
    keys.sort(key=lambda k: (not np.isfinite(_median(values[k])), -_median(values[k]), k))
    others = [m for m in ("pearson_r", "r2", "nc_r2", "truth_r") if m in present and m != metric]
    header = ["rank", "denoiser", "encoder", metric, "95 % interval", "over subjects", *others,
              "note"]
    body = []
    for i, k in enumerate(keys, start=1):
        body.append([str(i), k[0], k[2], _fmt(_median(values[k])), _interval_text(result, k),
                     _spread(values[k]),
                     *[_fmt(_median(values.get((*k[:3], m), {}))) for m in others],
                     _rank_note(result, k[0])])
    notes = [f"Encoding score: held-out {metric} of each encoder's predictions against the raw "
             "test-trial averages (higher is better)."]
    if "truth_r" in present:
        notes.append("truth_r: correlation of the predictions with the simulator's true signal.")
    winner = _winner(result, keys, False, metric)
    if winner:
        notes.append(winner)
    return SummaryTable(
        "Encoding models",
        f"Which denoiser and encoder predict held-out responses best? Ranked by {metric}.",
        header, body, notes)


def aligner_summary(result: AnalysisResult) -> SummaryTable | None:
    """Aligner rows: between-subject prediction, median over held-out subjects."""
    values = _values(result)
    cells = sorted({k[:3] for k in values if k[1] != "none"})
    if not cells:
        return None
    present = [m for m in ("pearson_r", "r2", "nc_r2") if any((*c, m) in values for c in cells)]
    header = ["denoiser", "aligner", *present, "over held-out subjects"]
    spread_metric = next((m for m in ENCODING_METRICS if m in present), present[0])
    cells.sort(key=lambda c: (not np.isfinite(_median(values.get((*c, spread_metric), {}))),
                              -_median(values.get((*c, spread_metric), {})), c))
    body = [[c[0], c[1], *[_fmt(_median(values.get((*c, m), {}))) for m in present],
             _spread(values.get((*c, spread_metric), {}))] for c in cells]
    notes = ["Between-subject prediction, leave one subject out: the aligner's template is "
             "fitted on the other subjects' training responses only, the held-out subject is "
             "added from its own training responses only, and its test responses are predicted "
             "from the other subjects' test responses mapped through the shared space (not an "
             "encoding model of the held-out subject). Ranked by the median over held-out "
             f"subjects of {spread_metric}, with its range; no bootstrap interval."]
    return SummaryTable("Aligners",
                        "How well do the other subjects predict a held-out subject "
                        "(between-subject prediction)?",
                        header, body, notes)


def _mean_sem(values: list[float]) -> str:
    from .context import mean_and_sem

    mean, sem = mean_and_sem(values)
    if not np.isfinite(mean):
        return ""
    return f"{mean:.3f}" if not np.isfinite(sem) else f"{mean:.3f} ± {sem:.3f}"


def budget_summary(result: AnalysisResult) -> SummaryTable | None:
    """Return the alignment data budget table: each aligner and encoder's score per N and all.

    None without aligner rows that carry ``n_context`` (no ``context_sizes``, or no aligner).
    """
    from .align import budget_curves, budget_metric, budget_skipped_note

    metric = budget_metric(result.rows)
    if metric is None:
        return None
    curves = budget_curves(result.rows, result.context, result.aligner_context, metric)
    sizes = sorted({n for c in curves for n in c.by_size})
    header = ["denoiser", "method", *[f"N={n}" for n in sizes], "all (mean N)"]
    body = []
    for c in curves:
        used = f" (N={np.mean(c.n_used):.0f})" if c.n_used else ""
        what = f"aligner {c.method}" if c.kind == "aligner" else f"encoder {c.method} (within)"
        body.append([c.denoiser, what, *[_mean_sem(c.by_size.get(n, [])) for n in sizes],
                     _mean_sem(c.full) + used])
    notes = [f"Held-out {metric}, mean over subjects ± s.e.m. An aligner's N: the held-out "
             "subject is added to the template (fitted without it) from N of its training "
             "images, then predicted from the other subjects; a paired aligner draws them from "
             "the images it shares with the other subjects, one with via_encoder from all its "
             "own. An encoder's N: fitted on N of the subject's own training images "
             "(within-subject). Where an aligner's curve lies above the encoder's, alignment "
             "pays off at that N."]
    skipped = budget_skipped_note(result.aligner_context)
    if skipped is not None:
        notes.append(skipped)
    return SummaryTable("Alignment data budget",
                        f"How many images of a new person does alignment need? Held-out {metric} "
                        "by number of that person's images N.",
                        header, body, notes)


def summary_tables(result: AnalysisResult) -> list[SummaryTable]:
    """Return the summary's tables that apply, in the order they are printed."""
    tables = [denoising_summary(result), encoding_summary(result), aligner_summary(result),
              budget_summary(result)]
    return [t for t in tables if t is not None]


def uncertainty_note(result: AnalysisResult) -> str:
    """One sentence on how the intervals were computed."""
    return (f"Values: median over subjects of each subject's median over units (ROI \"all\"). "
            f"Intervals: 95 % percentile bootstrap over test stimuli ({N_RESAMPLES} resamples "
            "per subject, seeded by the analysis seed, the same resamples for every method, so "
            "differences are paired; centred on the estimate; the noise ceiling is held "
            "fixed). \"over subjects\": lowest "
            "to highest subject value (number of subjects).")


def as_markdown(table: SummaryTable) -> list[str]:
    """Lines of report.md for one table."""
    lines = [f"## {table.title}", "", table.question, "",
             "| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.body]
    lines.append("")
    for note in table.notes:
        lines += [note, ""]
    return lines


def as_rich(table: SummaryTable) -> Any:
    """Return a rich Table for the terminal (its title holds the question)."""
    from rich.markup import escape
    from rich.table import Table

    out = Table(title=f"{table.title}: {table.question}", title_justify="left")
    for column in table.header:
        out.add_column(column, justify="left" if column in (*_KEYS, "note") else "right")
    for row in table.body:
        out.add_row(*[escape(c) for c in row])
    return out
