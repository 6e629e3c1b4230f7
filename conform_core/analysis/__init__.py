"""``conform fit``: run a declared analysis and compare denoisers x aligners x encoders."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import AnalysisFailedError, SpecError
from ..io import to_builtin
from ..spec import AnalysisSpec, apply_overrides, check_spec, load_spec
from .lock import input_checksums, lock_text, path_inputs
from .plan import Plan, make_plan
from .report import provenance, summary_table, write_results
from .runner import AnalysisResult, Progress, run_plan
from .subject import split_stimuli

__all__ = [
    "succeeded_subjects",
    "count_cells",
    "fit_analysis",
    "prepare_analysis",
    "PreparedAnalysis",
    "make_plan",
    "run_plan",
    "Plan",
    "AnalysisResult",
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
) -> PreparedAnalysis:
    """Load, override and check a spec: everything ``conform fit`` does before any work.

    Parses the spec, applies ``--set`` overrides, resolves the plan (every stage's
    parameters complete), runs :func:`check_plan` (every cell's parameter values, paths,
    ROIs, features, aligner subject count), refuses an existing results folder without
    ``overwrite`` and a locked spec whose inputs changed. ``conform fit --check`` stops here.

    Raises
    ------
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
    if out_path.exists() and not overwrite:
        raise SpecError(
            f"Results folder {str(out_path)!r} already exists. Pass --out NEW_FOLDER, or "
            "--overwrite to replace it."
        )
    registry = default_registry()
    check_spec(spec, registry)  # a misspelt plugin is reported before any file is hashed
    checksums = input_checksums(spec.location(), inputs=path_inputs(spec.stages))
    _check_lock_inputs(spec, checksums)  # before the dataset reads anything it may have changed
    plan = make_plan(spec, registry)
    return PreparedAnalysis(
        name=name, out=out_path, plan=plan, registry=registry, checksums=checksums
    )


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

    Returns
    -------
    (Path, AnalysisResult)
        Cells that failed are rows with ``status`` ``"error: ..."`` (see
        ``AnalysisResult.failures``); the caller decides what that means (``conform fit``
        exits 3).

    Raises
    ------
    SpecError
        Before any work, for a spec that cannot run (see :func:`prepare_analysis`).
    AnalysisFailedError
        When every subject failed: nothing is written and an existing results folder is
        left as it was, even with ``overwrite``.
    """
    started = time.time()
    job = prepare_analysis(spec, overrides=overrides, out=out, overwrite=overwrite)
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
    dataset_params = {
        k: to_builtin(v) for k, v in plan.dataset().data_params().items() if k != "location"
    }
    lock = lock_text(
        plan, job.registry, name=job.name, checksums=job.checksums, dataset_params=dataset_params
    )
    prov = provenance(plan.seed, started, time.time(), list(sys.argv))
    prov.update(
        {
            "workers": workers,
            "scheduler": scheduler,
            "blas_threads_per_task": threads,
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
    )
    return job.out, result


@dataclass(frozen=True)
class PreparedAnalysis:
    """A checked analysis, ready to run: its name, results folder, plan and input fingerprints."""

    name: str
    out: Path
    plan: Plan
    registry: Any
    checksums: dict[str, str]


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
