"""Running a plan: its task graph, built once against an executor (serial or Dask).

Tasks never raise for a failure of the analysis: a task that fails returns a
:class:`~conform_core.analysis.scores.Failed`, and the tasks that needed its result
fail with the same message, each at its own cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from threadpoolctl import threadpool_limits

from .align import AlignerScore, score_aligner
from .context import CONTEXT_COLUMN, SubjectContext
from .executor import Executor, Progress, connect_scheduler, open_executor
from .plan import Plan
from .scores import COLUMNS, Failed, UnitTable
from .subject import CellResult, Prepared, prepare_subject, run_denoiser_cell

__all__ = ["AnalysisResult", "run_plan", "count_tasks", "connect_scheduler", "Progress", "row_order"]


@dataclass
class AnalysisResult:
    """Everything an analysis produced.

    Attributes
    ----------
    rows : list of dict
        Long-format results (columns :data:`COLUMNS`), sorted.
    unit_scores : list of dict
        Per-unit scores: ``{"subject", "denoiser", "aligner", "encoder", "values"}``, where
        ``values`` maps a metric to an array over ``units[subject]``'s units. One entry per
        subject x denoiser x encoder, per held-out subject x denoiser x aligner, and one
        ``noise_ceiling`` entry per subject (denoiser, aligner and encoder ``"none"``).
    timings : list of dict
        ``{"subject", "stage", "denoiser", "seconds"}`` for every stage that ran (not part
        of results.csv, which must reproduce); ``denoiser`` is ``""`` for per-subject stages.
    units : dict of str to UnitTable
        Per subject: the units the scores refer to (ids, indices, ROI labels), their noise
        ceiling and why it is 0 where it is.
    context : dict of str to SubjectContext
        Per subject, with ``[evaluation] context_sizes``: the draws of N training stimuli
        the encoders were also fitted on, and the sizes skipped (empty otherwise). Rows and
        per-unit scores of encoders then carry ``n_context``.
    bootstrap : dict of tuple to ndarray
        (subject, denoiser, aligner, encoder, metric) -> the subject's ROI "all" value on each
        bootstrap resample of its test stimuli (same resamples for every cell of a subject;
        see :mod:`~conform_core.analysis.uncertainty`). Not for aligner cells.
    rank_zero : dict of str to list of str
        Denoiser label -> the subjects on which it predicts each unit's mean whatever the
        stimulus (rank 0).
    aligner_context : dict of str to dict of str to SubjectContext
        With ``context_sizes`` and aligners: aligner label -> held-out subject -> the draws
        of its alignment data budget (the images it could be added from, the sizes
        skipped; see :func:`~conform_core.analysis.align.score_aligner`). Aligner rows and
        per-unit scores then carry ``n_context`` too.
    """

    rows: list[dict[str, Any]]
    unit_scores: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, UnitTable] = field(default_factory=dict)
    context: dict[str, SubjectContext] = field(default_factory=dict)
    bootstrap: dict[tuple[str, ...], Any] = field(default_factory=dict)
    rank_zero: dict[str, list[str]] = field(default_factory=dict)
    aligner_context: dict[str, dict[str, SubjectContext]] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Rows that record a failed cell."""
        return [r for r in self.rows if r["status"] != "ok"]


def _prepare(plan: Plan, name: str, threads: int) -> Prepared | Failed:
    """Task: load and prepare one subject (a subject that cannot be prepared fails its cells)."""
    with threadpool_limits(threads):
        try:
            return prepare_subject(plan, name)
        except Exception as exc:
            return Failed.from_exception(exc, subject=name, denoiser="all", encoder="all")


def _cell(plan: Plan, prepared: Prepared | Failed, index: int, keep: bool,
          threads: int) -> CellResult | Failed:
    """Task: one denoiser and every encoder on one subject."""
    if isinstance(prepared, Failed):
        return prepared.passed_on(subject=prepared.row["subject"],
                                  denoiser=plan.stages["denoiser"][index].label, encoder="all")
    with threadpool_limits(threads):
        return run_denoiser_cell(plan, prepared, index, keep_denoised=keep)


def _align(plan: Plan, index: int, denoiser: str, preps: dict[str, Prepared | Failed],
           cells: dict[str, CellResult | Failed], held_out: str,
           threads: int) -> AlignerScore | Failed:
    """Task: one aligner on one denoiser's output, leaving ``held_out`` out."""
    aligner = plan.stages["aligner"][index].label
    upstream = cells[held_out]
    if isinstance(upstream, Failed):  # the subject or its denoiser failed: so does this cell
        return upstream.passed_on(subject=held_out, denoiser=denoiser, aligner=aligner,
                                  encoder="none")
    prepared = {s: p for s, p in preps.items() if isinstance(p, Prepared)}
    denoised = {s: c.denoised_train for s, c in cells.items()
                if isinstance(c, CellResult) and c.denoised_train is not None}
    with threadpool_limits(threads):
        return score_aligner(plan, index, denoiser, prepared, denoised, held_out)


@dataclass
class _Outcomes:
    """The results of every task of a plan.

    Subject -> prepared, (subject, denoiser index) -> cell, and the aligner cells in the
    order they were submitted.
    """

    preps: dict[str, Prepared | Failed]
    cells: dict[tuple[str, int], CellResult | Failed]
    aligned: list[AlignerScore | Failed]


def _run_graph(plan: Plan, executor: Executor, threads: int) -> _Outcomes:
    """Submit every task of ``plan`` to ``executor``, wait for them, and gather the results."""
    denoisers = plan.stages["denoiser"]
    aligners = plan.stages.get("aligner", ())
    keep = bool(aligners)  # aligners need each cell's denoised training responses
    preps: dict[str, Any] = {}
    cells: dict[tuple[str, int], Any] = {}
    for s in plan.subjects:
        preps[s] = executor.submit(_prepare, plan, s, threads, key=f"prepare-{s}",
                                   label=f"{s}: prepared")
        for d, entry in enumerate(denoisers):
            cells[s, d] = executor.submit(_cell, plan, preps[s], d, keep, threads,
                                          key=f"cell-{s}-{d}", label=f"{s}: {entry.label}")
    aligned = []
    for d, entry in enumerate(denoisers):
        for a, aligner in enumerate(aligners):
            for held in plan.subjects:
                aligned.append(executor.submit(
                    _align, plan, a, entry.label, preps, {s: cells[s, d] for s in plan.subjects},
                    held, threads, key=f"align-{a}-{d}-{held}",
                    label=f"{held}: {entry.label} -> aligner {aligner.label}"))
    executor.wait([*preps.values(), *cells.values(), *aligned])
    return _Outcomes(preps={s: executor.result(h) for s, h in preps.items()},
                     cells={k: executor.result(h) for k, h in cells.items()},
                     aligned=[executor.result(h) for h in aligned])


def run_plan(plan: Plan, *, workers: int = 1, scheduler: str | None = None, threads: int = 1,
             progress: Progress | None = None, executor: Executor | None = None) -> AnalysisResult:
    """Run every subject and grid cell of ``plan``.

    Parameters
    ----------
    plan : Plan
        The resolved analysis.
    workers : int, default=1
        1 runs in this process; more start a local Dask cluster with that many
        single-threaded worker processes.
    scheduler : str or None
        Address of an existing Dask scheduler (e.g. started on SLURM with dask-jobqueue);
        overrides ``workers``.
    threads : int, default=1
        BLAS threads per task. Results are bit-identical only between runs with the
        same value (floating-point sums depend on the thread split).
    progress : callable or None
        Called with a short label each time a task finishes (:func:`count_tasks` of them).
    executor : Executor or None
        Run the tasks on this executor (e.g. a
        :class:`~conform_core.analysis.executor.DaskExecutor` of a client you hold)
        instead of one opened from ``workers`` and ``scheduler``; its own progress
        callback reports, and ``progress`` is not used.

    Returns
    -------
    AnalysisResult
        Cells that failed are ``error`` rows (:attr:`AnalysisResult.failures`).
    """
    if executor is not None:
        return _collect(plan, _run_graph(plan, executor, threads))
    with open_executor(workers=workers, scheduler=scheduler, progress=progress) as opened:
        outcomes = _run_graph(plan, opened, threads)
    return _collect(plan, outcomes)


def count_tasks(plan: Plan) -> int:
    """Tasks that report progress: one per subject prepared, per cell, per aligner score."""
    n_den = len(plan.stages["denoiser"])
    n_align = len(plan.stages.get("aligner", ()))
    return len(plan.subjects) * (1 + n_den + n_den * n_align)


def row_order(row: dict[str, Any]) -> tuple[Any, ...]:
    """Sort key of the rows of results.csv: subject, ROI "all" first, then by name.

    The sort is stable, so rows with equal keys (few-shot rows of one cell, by
    ``n_context``) keep the order their task produced them in.
    """
    return (row["subject"], row["roi"] != "all", row["roi"], row["denoiser"], row["aligner"],
            row["encoder"], row["metric"])


def _collect(plan: Plan, outcomes: _Outcomes) -> AnalysisResult:
    """Rows, per-unit scores and timings of every task result, in a stable order."""
    ordered: list[Prepared | CellResult | AlignerScore | Failed] = [
        *(outcomes.preps[s] for s in plan.subjects),
        *(outcomes.cells[k] for k in sorted(outcomes.cells)),
        *outcomes.aligned]
    rows: list[dict[str, Any]] = []
    unit_scores: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    for outcome in ordered:
        rows += outcome.rows
        unit_scores += outcome.unit_scores
        timings += outcome.timings
    columns = (*COLUMNS, CONTEXT_COLUMN) if plan.context_sizes else COLUMNS
    rows = [{k: r.get(k, "") for k in columns} for r in rows]
    rows.sort(key=row_order)
    units = {s: p.unit_table() for s, p in outcomes.preps.items() if isinstance(p, Prepared)}
    context = {s: p.context for s, p in outcomes.preps.items()
               if isinstance(p, Prepared) and p.context is not None}
    bootstrap: dict[tuple[str, ...], Any] = {}
    rank_zero: dict[str, list[str]] = {}
    for key in sorted(outcomes.cells):
        cell = outcomes.cells[key]
        if isinstance(cell, CellResult):
            bootstrap.update(cell.bootstrap)
            if cell.rank_zero:
                rank_zero.setdefault(cell.denoiser, []).append(cell.subject)
    aligner_context: dict[str, dict[str, SubjectContext]] = {}
    for aligned in outcomes.aligned:  # the same images under every denoiser: keep the first
        if isinstance(aligned, AlignerScore) and aligned.context is not None:
            aligner_context.setdefault(aligned.aligner, {}).setdefault(aligned.subject,
                                                                      aligned.context)
    return AnalysisResult(rows=rows, unit_scores=unit_scores, timings=timings, units=units,
                          context=context, bootstrap=bootstrap, rank_zero=rank_zero,
                          aligner_context=aligner_context)
