"""``conform fit``: run a declared analysis and compare denoisers x aligners x encoders."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..exceptions import AnalysisFailedError, SpecError
from ..io import to_builtin
from ..spec import AnalysisSpec, apply_overrides, check_spec, load_spec
from .lock import input_checksums, lock_text, path_inputs
from .memory_check import MemoryCheck, check_memory
from .parts import AlreadyComplete, has_parts, write_parts
from .plan import Plan, make_plan
from .report import provenance, summary_table, write_results
from .runner import AnalysisResult, Progress, run_plan
from .subject import split_stimuli

__all__ = [
    "succeeded_subjects",
    "check_memory",
    "MemoryCheck",
    "count_cells",
    "fit_analysis",
    "prepare_analysis",
    "PreparedAnalysis",
    "make_plan",
    "run_plan",
    "Plan",
    "AnalysisResult",
    "AlreadyComplete",
    "split_stimuli",
    "summary_table",
]


def _check_lock_inputs(spec: AnalysisSpec, checksums: dict[str, str]) -> None:
    locked = spec.lock.get("inputs")
    if locked is None or locked == checksums:
        return
    changed = sorted(k for k in set(locked) | set(checksums) if locked.get(k) != checksums.get(k))
    raise SpecError(
        f"The inputs of this locked analysis changed since it was locked ({len(changed)} file(s), "
        f"e.g. {changed[:3]}). Re-running it would not reproduce the results. Restore the files, "
        "or run with --set dataset.location=DIR to analyse the new data knowingly."
    )


def prepare_analysis(
    spec: AnalysisSpec | str | Path,
    *,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    subjects: Sequence[str] | None = None,
    mem: int | None = None,
    workers: int = 1,
    scheduler: str | None = None,
) -> PreparedAnalysis:
    """Load, override and check a spec: everything ``conform fit`` does before any work.

    Parses the spec, applies ``--set`` overrides, resolves the plan (every stage's
    parameters complete), runs :func:`check_plan` (every cell's parameter values, paths,
    ROIs, features, aligner subject count), refuses an existing results folder without
    ``overwrite`` and a locked spec whose inputs changed, and refuses a cell whose predicted
    peak memory exceeds what one task may use (:func:`~.memory_check.check_memory`: ``mem`` bytes,
    default the memory available now, shared by ``workers`` tasks; with ``scheduler``,
    ``mem`` is each worker's memory and nothing is checked without it). ``conform fit
    --check`` stops here.

    ``subjects`` (``conform fit --subject``) runs only those of the analysis' subjects; a
    spec with aligners is refused then (an aligner needs every subject at once). An existing
    results folder that already holds exactly this run (:class:`AlreadyComplete`) is
    reported as such, after the plan is made; any other existing folder is refused at once.

    Raises
    ------
    AlreadyComplete
        The results folder is complete for this very run (same lock, no failed cell).
    SpecError
        For anything that would make the analysis fail or mislead.
    """
    from ..plugins import default_registry

    source = spec
    if not isinstance(spec, AnalysisSpec):
        spec = load_spec(spec)
    spec = apply_overrides(spec, list(overrides or []))
    name = str(
        spec.analysis.get("name")
        or (
            Path(str(source)).stem.replace(".lock", "")
            if not isinstance(source, AnalysisSpec)
            else "analysis"
        )
    )
    out_path = Path(out) if out is not None else Path("results") / name
    selected = list(dict.fromkeys(subjects or ()))
    if selected and spec.stages.get("aligner"):
        labels = ", ".join(e.label for e in spec.stages["aligner"])
        raise SpecError(
            f"--subject runs some subjects only, but this spec has an aligner stage ({labels}), "
            "which is scored leaving one subject out and fitted on all the others, so it needs "
            "every subject in one run. Run the whole analysis at once (spread it over a Dask "
            "cluster with --workers N or --scheduler ADDRESS), or drop the aligner from the "
            "spec to split the run by subject."
        )
    existing = out_path.exists() and not overwrite
    if existing and not _is_complete(out_path):
        raise SpecError(
            f"Results folder {str(out_path)!r} already exists. Pass --out NEW_FOLDER, or "
            "--overwrite to replace it."
        )
    registry = default_registry()
    check_spec(spec, registry)  # a misspelt plugin is reported before any file is hashed
    checksums = input_checksums(spec.location(), inputs=path_inputs(spec.stages))
    _check_lock_inputs(spec, checksums)  # before the dataset reads anything it may have changed
    plan = make_plan(spec, registry)
    subjects_all = plan.subjects
    if selected:
        plan = _select_subjects(plan, selected)
    job = PreparedAnalysis(
        name=name, out=out_path, plan=plan, registry=registry, checksums=checksums,
        subjects_all=subjects_all, selected=bool(selected),
    )
    if existing:
        _check_existing(job)
    memory = check_memory(plan, budget=mem, tasks_at_once=min(workers, _cells(plan)),
                          workers_known=scheduler is None)
    return replace(job, memory=memory)


def _cells(plan: Plan) -> int:
    """Tasks of ``plan`` that can run at once: one per subject, denoiser and aligner cell."""
    n_denoisers = max(len(plan.stages.get("denoiser", ())), 1)
    n_aligners = len(plan.stages.get("aligner", ()))
    return len(plan.subjects) * n_denoisers * (1 + n_aligners)


def _select_subjects(plan: Plan, selected: list[str]) -> Plan:
    """``plan`` restricted to the ``selected`` subjects (kept in the plan's order)."""
    unknown = [s for s in selected if s not in plan.subjects]
    if unknown:
        from ..validation import suggest

        raise SpecError(
            f"--subject {unknown[0]!r} is not a subject of this analysis."
            f"{suggest(unknown[0], list(plan.subjects))} Its subjects: "
            f"{', '.join(plan.subjects[:20])}{' ...' if len(plan.subjects) > 20 else ''}."
        )
    chosen = replace(plan, subjects=tuple(s for s in plan.subjects if s in selected))
    object.__setattr__(chosen, "_dataset", plan.dataset())  # same dataset: keep it
    return chosen


def _is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a results folder ``conform fit`` finished.

    Results folders are published whole (built under a temporary name, then renamed), so
    one that has its lock and results.csv has everything.
    """
    return (folder / "spec.lock.toml").is_file() and (folder / "results.csv").is_file()


def _dataset_params(plan: Plan) -> dict[str, Any]:
    """Return the dataset parameters that describe the data read (for lock and provenance)."""
    return {k: to_builtin(v) for k, v in plan.dataset().data_params().items() if k != "location"}


def _lock(job: PreparedAnalysis) -> str:
    return lock_text(job.plan, job.registry, name=job.name, checksums=job.checksums,
                     dataset_params=_dataset_params(job.plan))


def _check_existing(job: PreparedAnalysis) -> None:
    """Raise :class:`AlreadyComplete` when ``job.out`` holds this very run, else refuse it."""
    import csv

    from .merge import lock_differences

    written = (job.out / "spec.lock.toml").read_text(encoding="utf-8")
    differences = lock_differences(written, _lock(job))
    if differences:
        raise SpecError(
            f"Results folder {str(job.out)!r} already exists and holds another analysis (its "
            f"spec.lock.toml differs from this run's in {', '.join(differences[:5])}). Pass "
            "--out NEW_FOLDER, or --overwrite to replace it."
        )
    with open(job.out / "results.csv", newline="", encoding="utf-8") as handle:
        failed = sum(row.get("status") != "ok" for row in csv.DictReader(handle))
    if failed:
        raise SpecError(
            f"Results folder {str(job.out)!r} holds this analysis, but {failed} of its rows are "
            "failed cells. Pass --overwrite to run it again (or --out NEW_FOLDER)."
        )
    if job.selected and not has_parts(job.out):
        raise SpecError(
            f"Results folder {str(job.out)!r} holds these subjects but no parts/ for "
            "`conform fit --merge` (it was not written with --subject). Pass --overwrite to "
            "run it again with --subject, or --out NEW_FOLDER."
        )
    raise AlreadyComplete(job.out)


def fit_analysis(
    spec: AnalysisSpec | str | Path,
    *,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    threads: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    subjects: Sequence[str] | None = None,
    mem: int | None = None,
) -> tuple[Path, AnalysisResult]:
    """Run an analysis spec end to end and write its results folder.

    Parameters
    ----------
    spec : AnalysisSpec or path
        The spec (or a ``spec.lock.toml`` to re-run a locked analysis).
    overrides : list of str, optional
        ``--set`` values: ``STAGE=PLUGIN[,PLUGIN]``, ``STAGE.PARAM=VALUE`` or
        ``STAGE[LABEL].PARAM=VALUE``.
    out : path, optional
        Results folder (default ``results/<spec name>``); never silently overwritten.
    workers, scheduler, threads : see :func:`run_plan`.
    overwrite : bool, default=False
        Replace an existing results folder.
    progress : callable, optional
        Called with a label as each task finishes.
    on_plan : callable, optional
        Called with the checked :class:`Plan` before any work starts (e.g. to size a
        progress bar with :func:`~conform_core.analysis.runner.count_tasks`).
    subjects : sequence of str, optional
        Run only these of the analysis' subjects (``conform fit --subject``). The results
        folder then also holds ``parts/`` (:mod:`~conform_core.analysis.parts`), which
        :func:`~conform_core.analysis.merge.merge_results` combines into the folder of a
        single run of every subject. Refused for a spec with aligners.
    mem : int, optional
        Memory in bytes for the tasks that run at once (``conform fit --mem``; default: the
        memory available now); with ``scheduler``, each worker's memory. A cell whose
        predicted peak exceeds its share is refused before any work (:func:`check_memory`).

    Returns
    -------
    (Path, AnalysisResult)
        Cells that failed are rows with ``status`` ``"error: ..."`` (see
        ``AnalysisResult.failures``); the caller decides what that means (``conform fit``
        exits 3).

    Raises
    ------
    AlreadyComplete
        Before any work, when ``out`` already holds this very run (``conform fit`` then
        says so and exits 0); pass ``overwrite`` to run it again.
    SpecError
        Before any work, for a spec that cannot run (see :func:`prepare_analysis`).
    AnalysisFailedError
        When every subject failed: nothing is written and an existing results folder is
        left as it was, even with ``overwrite``.
    """
    started = time.time()
    job = prepare_analysis(spec, overrides=overrides, out=out, overwrite=overwrite,
                           subjects=subjects, mem=mem, workers=workers, scheduler=scheduler)
    plan = job.plan
    if on_plan is not None:
        on_plan(plan)
    result = run_plan(
        plan, workers=workers, scheduler=scheduler, threads=threads, progress=progress
    )
    if not succeeded_subjects(result):
        raise AnalysisFailedError(
            f"Every subject failed ({len(plan.subjects)} of {len(plan.subjects)}); nothing was "
            f"written{' and ' + repr(str(job.out)) + ' was left as it was' if job.out.exists() else ''}. "
            "The first error: "
            + (result.failures[0]["status"] if result.failures else "none recorded"),
            result=result,
        )
    dataset_params = _dataset_params(plan)
    lock = _lock(job)
    prov = provenance(plan.seed, started, time.time(), list(sys.argv))
    prov.update(
        {
            "workers": workers,
            "scheduler": scheduler,
            "blas_threads_per_task": threads,
            "nthreads": threads,
            "subjects": list(plan.subjects),
            "subject_selection": job.selected,
            "overrides": list(overrides or []),
            "dataset_location": plan.location,
            "dataset_params": dataset_params,
            "n_inputs_fingerprinted": len(job.checksums),
        }
    )
    write_results(
        job.out,
        result,
        name=job.name,
        lock=lock,
        prov=prov,
        metric_order=_metric_order(plan),
        overwrite=overwrite,
        extra=None if not job.selected else lambda folder: write_parts(
            folder, result, name=job.name, subjects=plan.subjects, subjects_all=job.subjects_all,
            denoisers=[e.label for e in plan.stages["denoiser"]],
            metric_order=_metric_order(plan)),
    )
    return job.out, result


@dataclass(frozen=True)
class PreparedAnalysis:
    """A checked analysis, ready to run: its name, results folder, plan and input fingerprints.

    ``subjects_all`` are every subject of the analysis; ``selected`` says whether ``plan``
    runs only some of them (``conform fit --subject``); ``memory`` is what the memory check
    found (``conform fit --check`` prints its summary).
    """

    name: str
    out: Path
    plan: Plan
    registry: Any
    checksums: dict[str, str]
    subjects_all: tuple[str, ...] = ()
    selected: bool = False
    memory: MemoryCheck | None = None


def succeeded_subjects(result: AnalysisResult) -> list[str]:
    """Subjects with at least one successful score (a noise ceiling alone does not count)."""
    return sorted(
        {
            r["subject"]
            for r in result.rows
            if r["status"] == "ok" and r["metric"] != "noise_ceiling"
        }
    )


def count_cells(plan: Plan, result: AnalysisResult) -> tuple[int, int]:
    """``(failed, total)`` cells of the grid that ``plan`` declares.

    The cells are subject x denoiser x encoder, plus subject x denoiser x aligner when
    aligners are compared. A cell succeeded when it has at least one score row with
    status ``ok`` and no ``error`` row; a cell that failed has an ``error`` row instead (a
    subject that could not be prepared, or a denoiser that failed, gives every cell that
    needed it one), or beside its other rows when one of its few-shot fits failed.
    """
    labels = {
        stage: [e.label for e in plan.stages.get(stage, ())]
        for stage in ("denoiser", "aligner", "encoder")
    }
    expected = {
        (s, d, "none", e)
        for s in plan.subjects
        for d in labels["denoiser"]
        for e in labels["encoder"]
    }
    expected |= {
        (s, d, a, "none")
        for s in plan.subjects
        for d in labels["denoiser"]
        for a in labels["aligner"]
    }
    ok = {
        (r["subject"], r["denoiser"], r["aligner"], r["encoder"])
        for r in result.rows
        if r["status"] == "ok"
    }
    # a few-shot fit (one n_context) can fail while the cell's other fits succeed
    failed = {
        (r["subject"], r["denoiser"], r["aligner"], r["encoder"])
        for r in result.rows
        if r["status"] != "ok"
    }
    return len((expected - ok) | (expected & failed)), len(expected)


def _metric_order(plan: Plan) -> tuple[str, ...]:
    return (*plan.metrics, "truth_r", "denoise_truth_nmse", "denoise_truth_r")
