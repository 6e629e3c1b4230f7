"""``conform fit``: run a declared analysis and compare denoisers x aligners x encoders."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..exceptions import SpecError
from ..spec import AnalysisSpec, apply_overrides, load_spec
from .lock import input_checksums, lock_text
from .plan import Plan, make_plan
from .report import provenance, summary_table, write_results
from .runner import AnalysisResult, Progress, run_plan

__all__ = ["fit_analysis", "make_plan", "run_plan", "Plan", "AnalysisResult", "summary_table"]


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


def fit_analysis(spec: AnalysisSpec | str | Path, *, overrides: list[str] | None = None,
                 out: str | Path | None = None, workers: int = 1, scheduler: str | None = None,
                 threads: int = 1, overwrite: bool = False,
                 progress: Progress | None = None) -> tuple[Path, AnalysisResult]:
    """Run an analysis spec end to end and write its results folder.

    Parameters
    ----------
    spec : AnalysisSpec or path
        The spec (or a ``spec.lock.toml`` to re-run a locked analysis).
    overrides : list of str, optional
        ``--set`` values: ``STAGE=PLUGIN[,PLUGIN]`` or ``STAGE.PARAM=VALUE``.
    out : path, optional
        Results folder (default ``results/<spec name>``); never silently overwritten.
    workers, scheduler, threads : see :func:`run_plan`.
    overwrite : bool, default=False
        Replace an existing results folder.
    progress : callable, optional
        Called with a label as each task finishes.

    Returns
    -------
    (Path, AnalysisResult)
    """
    from ..plugins import default_registry

    started = time.time()
    source = spec
    if not isinstance(spec, AnalysisSpec):
        spec = load_spec(spec)
    spec = apply_overrides(spec, list(overrides or []))
    name = str(spec.analysis.get("name") or (Path(str(source)).stem.replace(".lock", "")
                                              if not isinstance(source, AnalysisSpec) else "analysis"))
    out_path = Path(out) if out is not None else Path("results") / name
    if out_path.exists() and not overwrite:
        raise SpecError(f"Results folder {str(out_path)!r} already exists. Pass --out NEW_FOLDER, or "
                        "--overwrite to replace it.")
    registry = default_registry()
    plan = make_plan(spec, registry)
    checksums = input_checksums(plan.location)
    _check_lock_inputs(spec, checksums)
    result = run_plan(plan, workers=workers, scheduler=scheduler, threads=threads, progress=progress)
    lock = lock_text(plan, registry, name=name, checksums=checksums, dataset_extra={})
    prov = provenance(plan.seed, started, time.time(), list(sys.argv))
    prov.update({"workers": workers, "scheduler": scheduler, "blas_threads_per_task": threads,
                 "overrides": list(overrides or [])})
    write_results(out_path, result, name=name, lock=lock, prov=prov, metric_order=_metric_order(plan),
                  overwrite=overwrite)
    return out_path, result


def _metric_order(plan: Plan) -> tuple[str, ...]:
    return (*plan.metrics, "truth_r", "denoise_truth_nmse", "denoise_truth_r")
