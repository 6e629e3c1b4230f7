"""Running a plan: serially in this process, or as Dask tasks on a local or remote cluster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from threadpoolctl import threadpool_limits

from .align import AlignerScore, score_aligner
from .plan import Plan
from .scores import COLUMNS, UnitTable, error_row
from .subject import CellResult, Prepared, prepare_subject, run_denoiser_cell

__all__ = ["AnalysisResult", "run_plan", "count_tasks", "connect_scheduler"]

Progress = Callable[[str], None]


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
    """

    rows: list[dict[str, Any]]
    unit_scores: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    units: dict[str, UnitTable] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Rows that record a failed cell."""
        return [r for r in self.rows if r["status"] != "ok"]


def _safe_prepare(plan: Plan, name: str, threads: int) -> Prepared | dict[str, Any]:
    with threadpool_limits(threads):
        try:
            return prepare_subject(plan, name)
        except Exception as exc:  # a subject that cannot be prepared fails its cells only
            return error_row(exc, subject=name, denoiser="all", encoder="all")


def _cell(plan: Plan, prepared: Prepared | dict[str, Any], index: int, keep: bool,
          threads: int) -> CellResult | None:
    if not isinstance(prepared, Prepared):
        return None
    with threadpool_limits(threads):
        return run_denoiser_cell(plan, prepared, index, keep_denoised=keep)


def _align(plan: Plan, index: int, label: str, preps: dict[str, Any], cells: dict[str, Any],
           held_out: str, threads: int) -> AlignerScore:
    good = {s: p for s, p in preps.items() if isinstance(p, Prepared)}
    denoised = {s: c.denoised_train for s, c in cells.items()
                if c is not None and c.denoised_train is not None}
    if held_out not in good or held_out not in denoised:  # its failure is already recorded
        return AlignerScore(held_out, label, plan.stages["aligner"][index].label)
    with threadpool_limits(threads):
        return score_aligner(plan, index, label, good, denoised, held_out)


def run_plan(plan: Plan, *, workers: int = 1, scheduler: str | None = None, threads: int = 1,
             progress: Progress | None = None) -> AnalysisResult:
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
        Called with a short label each time a task finishes.
    """
    tick = progress or (lambda label: None)
    keep = bool(plan.stages.get("aligner"))
    n_den = len(plan.stages["denoiser"])
    if scheduler is None and workers <= 1:
        preps: dict[str, Any] = {}
        cells: dict[tuple[str, int], Any] = {}
        for name in plan.subjects:
            preps[name] = _safe_prepare(plan, name, threads)
            tick(f"{name}: prepared")
            for d in range(n_den):
                cells[name, d] = _cell(plan, preps[name], d, keep, threads)
                tick(f"{name}: {plan.stages['denoiser'][d].label}")
        aligned = []
        for d in range(n_den) if keep else ():
            label = plan.stages["denoiser"][d].label
            for a in range(len(plan.stages["aligner"])):
                for held in plan.subjects:
                    aligned.append(_align(plan, a, label, preps, {s: cells[s, d] for s in plan.subjects},
                                          held, threads))
                    tick(f"{held}: {label} -> aligner {plan.stages['aligner'][a].label}")
    else:
        preps, cells, aligned = _run_dask(plan, workers, scheduler, threads, keep, tick)
    return _collect(plan, preps, cells, aligned)


def count_tasks(plan: Plan) -> int:
    """Tasks that report progress: one per subject prepared, per cell, per aligner score."""
    n_den = len(plan.stages["denoiser"])
    n_align = len(plan.stages.get("aligner", ()))
    return len(plan.subjects) * (1 + n_den + n_den * n_align)


def connect_scheduler(address: str, *, timeout: float = 10.0) -> Any:
    """A Dask client of the scheduler at ``address``, or a ConformError if it cannot be reached."""
    from dask.distributed import Client

    from ..exceptions import ConformError

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ConformError(
            f"Cannot reach the Dask scheduler at {address!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}). Check the address (e.g. tcp://HOST:8786) and that "
            "the scheduler is running, or give no scheduler address to run on a local cluster."
        ) from None


def _run_dask(plan: Plan, workers: int, scheduler: str | None, threads: int, keep: bool,
              tick: Progress) -> tuple[dict[str, Any], dict[tuple[str, int], Any], list[Any]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = client = None
    try:  # an interrupt while the cluster starts must close what was started, too
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=50)
            client = Client(cluster)
        else:
            client = connect_scheduler(scheduler)
        n_den = len(plan.stages["denoiser"])
        prep_f = {s: client.submit(_safe_prepare, plan, s, threads, key=f"prepare-{s}", pure=False)
                  for s in plan.subjects}
        cell_f = {(s, d): client.submit(_cell, plan, prep_f[s], d, keep, threads,
                                        key=f"cell-{s}-{d}", pure=False)
                  for s in plan.subjects for d in range(n_den)}
        align_f = []
        align_labels: dict[str, str] = {}
        for d in range(n_den) if keep else ():
            label = plan.stages["denoiser"][d].label
            for a in range(len(plan.stages["aligner"])):
                for held in plan.subjects:
                    align_f.append(client.submit(
                        _align, plan, a, label, prep_f, {s: cell_f[s, d] for s in plan.subjects},
                        held, threads, key=f"align-{a}-{d}-{held}", pure=False))
                    align_labels[str(align_f[-1].key)] = (f"{held}: {label} -> aligner "
                                                     f"{plan.stages['aligner'][a].label}")
        labels = {str(prep_f[s].key): f"{s}: prepared" for s in plan.subjects}
        labels.update({str(f.key): f"{s}: {plan.stages['denoiser'][d].label}" for (s, d), f in cell_f.items()})
        labels.update(align_labels)
        for future in as_completed([*prep_f.values(), *cell_f.values(), *align_f]):
            tick(labels.get(str(future.key), str(future.key)))
        preps = {s: f.result() for s, f in prep_f.items()}
        cells = {k: f.result() for k, f in cell_f.items()}
        aligned = [f.result() for f in align_f]
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return preps, cells, aligned


def _collect(plan: Plan, preps: dict[str, Any], cells: dict[tuple[str, int], Any],
             aligned: list[AlignerScore]) -> AnalysisResult:
    rows: list[dict[str, Any]] = []
    unit_scores: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    units: dict[str, UnitTable] = {}

    def timed(subject: str, denoiser: str, seconds: dict[str, float]) -> list[dict[str, Any]]:
        return [{"subject": subject, "stage": k, "denoiser": denoiser, "seconds": v}
                for k, v in seconds.items()]

    for name in plan.subjects:
        prep = preps[name]
        if isinstance(prep, Prepared):
            rows += prep.rows
            timings += timed(name, "", prep.seconds)
            assert prep.ceiling_reason is not None
            units[name] = UnitTable(name, prep.test.units, prep.noise_ceiling, prep.ceiling_reason)
            unit_scores.append({"subject": name, "denoiser": "none", "aligner": "none",
                                "encoder": "none", "values": {"noise_ceiling": prep.noise_ceiling}})
        else:
            rows.append(prep)
    for (name, _), cell in sorted(cells.items()):
        if cell is None:
            continue
        rows += cell.rows
        unit_scores += cell.unit_scores
        timings += timed(name, cell.denoiser, cell.seconds)
    for score in aligned:
        rows += score.rows
        unit_scores += score.unit_scores
        timings += timed(score.subject, score.denoiser, score.seconds)
    order = {k: i for i, k in enumerate(COLUMNS)}
    rows = [{k: r.get(k, "") for k in sorted(COLUMNS, key=lambda c: order[c])} for r in rows]
    rows.sort(key=lambda r: (r["subject"], r["roi"] != "all", r["roi"], r["denoiser"], r["aligner"],
                             r["encoder"], r["metric"]))
    return AnalysisResult(rows=rows, unit_scores=unit_scores, timings=timings, units=units)


