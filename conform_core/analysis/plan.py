"""A resolved, picklable analysis plan: what each stage runs, with which parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..components import Component, Dataset, Encoder, Features
from ..data import StimulusSet
from ..exceptions import ConformError, SpecError
from ..io import to_builtin
from ..memory import DataSize, available_bytes, format_bytes
from ..spec import DEFAULT_CONTEXT_DRAWS, STAGE_KIND, AnalysisSpec, StageEntry, check_spec
from ..validation import is_placeholder, suggest

__all__ = ["Plan", "make_plan", "check_plan", "check_memory", "MemoryCheck",
           "MIN_ALIGNER_SUBJECTS"]


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to run its part of an analysis.

    A plan is picklable, so Dask can send it to worker processes: its component classes
    travel by reference (module and name) and the dataset a plan builds for itself
    (:meth:`dataset`) is left behind; a worker that receives a plan builds its own.

    Attributes
    ----------
    stages : dict of str to tuple of StageEntry
        Entries of every stage, parameters complete (defaults filled in).
    location : str or None
        Resolved dataset location.
    subjects : tuple of str
        Subjects to analyse.
    rois : tuple of str
        ROI labels to keep and report on (empty: all units).
    seed : int
        Analysis seed; components with a ``random_state`` get it unless set explicitly.
    metrics : tuple of str
        Metrics to report.
    classes : mapping of (str, str) to type
        ``(kind, plugin name)`` -> component class, for every entry of ``stages``: the
        classes of the registry the plan was made with (:func:`make_plan`).
    test_fraction : float
        Share of stimuli held out when a dataset has no split of its own.
    context_sizes : tuple of int
        ``[evaluation] context_sizes``: numbers N of training stimuli every encoder is also
        fitted on, ascending (empty: only the fit on all training stimuli).
    context_draws : int
        ``[evaluation] context_draws``: draws of N training stimuli per size.
    """

    stages: dict[str, tuple[StageEntry, ...]]
    location: str | None
    subjects: tuple[str, ...]
    rois: tuple[str, ...]
    seed: int
    metrics: tuple[str, ...]
    classes: Mapping[tuple[str, str], type[Component]]
    test_fraction: float = 0.2
    context_sizes: tuple[int, ...] = ()
    context_draws: int = DEFAULT_CONTEXT_DRAWS

    def build(self, stage: str, entry: StageEntry) -> Component:
        """Instantiate ``entry`` of ``stage`` with the class the plan resolved for it.

        Raises
        ------
        KeyError
            If ``entry``'s plugin is not among :attr:`classes` (the plan was not made by
            :func:`make_plan` from a spec that has it).
        """
        kind = STAGE_KIND[stage]
        try:
            cls = self.classes[kind, entry.plugin]
        except KeyError:
            raise KeyError(f"This plan has no {kind} class {entry.plugin!r} (it has "
                           f"{sorted(self.classes)}). Make plans with make_plan(spec, registry), "
                           "which resolves every stage's class.") from None
        params = dict(entry.params)
        if stage == "dataset" and self.location is not None:
            params["location"] = self.location
        return cls(**params)

    def dataset(self) -> Dataset:
        """Return the dataset component, built on first use and then kept by this plan.

        So the process that checks and runs a plan builds its dataset once (an in-memory
        simulation keeps the subjects it made). A pickled plan leaves it behind.
        """
        built = self.__dict__.get("_dataset")
        if built is None:
            built = self.build("dataset", self.stages["dataset"][0])
            assert isinstance(built, Dataset)
            object.__setattr__(self, "_dataset", built)  # a cache, not part of the value
        return built

    def __getstate__(self) -> dict[str, Any]:
        """Return the plan's fields, without the dataset it built (see :meth:`dataset`)."""
        return {k: v for k, v in self.__dict__.items() if k != "_dataset"}


def _complete_params(cls: Any, entry: StageEntry, seed: int) -> dict[str, Any]:
    """Return the entry's params with defaults filled in and a seed for ``random_state``."""
    params = dict(entry.params)
    if "random_state" in cls.param_names() and "random_state" not in params:
        params["random_state"] = seed
    instance = cls(**params)
    full = instance.get_params(deep=False)
    return {k: to_builtin(v) for k, v in full.items() if k != "location"}


def make_plan(spec: AnalysisSpec, registry: Any) -> Plan:
    """Check ``spec`` and resolve it into a :class:`Plan` (subjects listed, params complete).

    Every stage's class comes from ``registry`` (a :class:`~conform_core.ComponentRegistry`)
    and is kept in :attr:`Plan.classes`, so the plan builds its components with them,
    in this process and on Dask workers alike.
    """
    check_spec(spec, registry)
    spec = spec.copy()
    rois = spec.dataset.get("rois", [])
    dataset_entry = spec.stages["dataset"][0]
    if rois and "rois" in registry.get("dataset", dataset_entry.plugin).param_names():
        # the dataset reads only these units itself (e.g. MOSAIC's ROI names or vertex indices)
        dataset_entry.params["rois"] = rois
        rois = []
    stages: dict[str, tuple[StageEntry, ...]] = {}
    classes: dict[tuple[str, str], type[Component]] = {}
    for stage, entries in spec.stages.items():
        kind = STAGE_KIND[stage]
        resolved = []
        for entry in entries:
            cls = classes[kind, entry.plugin] = registry.get(kind, entry.plugin)
            resolved.append(StageEntry(entry.plugin, _complete_params(cls, entry, spec.seed), entry.label))
        stages[stage] = tuple(resolved)
    _check_via_encoder(stages.get("aligner", ()), registry)
    plan = Plan(
        stages=stages,
        location=spec.location(),
        subjects=(),
        rois=(),
        seed=spec.seed,
        metrics=spec.metrics,
        classes=classes,
        test_fraction=float(spec.evaluation.get("split_fallback_test_fraction", 0.2)),
        context_sizes=spec.context_sizes,
        context_draws=spec.context_draws,
    )
    _check_dataset(plan)
    dataset = plan.dataset()
    available = dataset.subjects()
    wanted = spec.dataset.get("subjects", "all")
    if wanted in ("all", None):
        subjects = tuple(available)
    else:
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        for name in wanted:
            if name not in available:
                raise SpecError(
                    f"[dataset] subjects: no subject {name!r} in this dataset."
                    f"{suggest(name, available)} Subjects: {', '.join(available[:10])}."
                )
        subjects = tuple(wanted)
    plan = replace(plan, subjects=subjects, rois=(rois,) if isinstance(rois, str) else tuple(rois))
    object.__setattr__(plan, "_dataset", dataset)  # same dataset entry and location: keep it
    _check_stages(plan)  # the dataset's own checks ran above, before it listed its subjects
    return plan


def _check_via_encoder(entries: tuple[StageEntry, ...], registry: Any) -> None:
    """Refuse an aligner whose ``via_encoder`` names no installed encoder (before any work)."""
    for entry in entries:
        name = entry.params.get("via_encoder")
        if not isinstance(name, str):
            continue
        try:
            registry.get("encoder", name)
        except ConformError as exc:
            raise SpecError(
                f"Stage 'aligner' ({entry.label}): via_encoder = {name!r}: {exc} Fix it in the "
                f"spec, or with --set aligner[{entry.label}].via_encoder=\"ridge\"."
            ) from None


def _placeholders(value: Any) -> list[str]:
    """Return the strings in ``value`` that look like a template's placeholder path.

    ``value`` is a parameter, possibly a list or table; placeholders are paths such as
    ``/path/to/mosaic`` or ``<DATA_DIR>``.
    """
    if isinstance(value, str):
        return [value] if is_placeholder(value) else []
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _placeholders(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _placeholders(v)]
    return []


def _check_no_placeholders(plan: Plan) -> None:
    if plan.location is not None and _placeholders(plan.location):
        raise SpecError(
            f"[dataset] location still holds the placeholder {plan.location!r} of the "
            "example spec. Point it at your data: edit the spec, or pass "
            "--set dataset.location=DIR."
        )
    for stage, entries in plan.stages.items():
        for entry in entries:
            for param, value in entry.params.items():
                found = _placeholders(value)
                if found:
                    raise SpecError(
                        f"Stage {stage!r} ({entry.label}): parameter {param!r} still holds the "
                        f"placeholder {found[0]!r} of the example spec. Set it in the spec, or pass "
                        f"--set {_set_target(plan, stage, entry)}.{param}=VALUE."
                    )


def _set_target(plan: Plan, stage: str, entry: StageEntry) -> str:
    """How ``--set`` names ``entry``: ``stage`` alone, or ``stage[label]`` in a compared list."""
    return f"{stage}[{entry.label}]" if len(plan.stages.get(stage, ())) > 1 else stage


def _checked(plan: Plan, stage: str, entry: StageEntry, component: Component) -> Component:
    """``component`` after its ``check_params``, whose error is reworded to name the stage."""
    try:
        component.check_params()
    except ConformError as exc:
        param = getattr(exc, "param", None) or "PARAM"
        raise SpecError(
            f"Stage {stage!r} ({entry.label}): {exc} Fix it in the spec, or with "
            f"--set {_set_target(plan, stage, entry)}.{param}=VALUE."
        ) from None
    return component


def _check_dataset(plan: Plan) -> None:
    """Run the dataset's own checks, before it is asked for anything (its subjects, say)."""
    _check_no_placeholders(plan)
    if plan.location is not None and not Path(plan.location).exists():
        raise SpecError(
            f"[dataset] location {plan.location!r} does not exist. Check the path, or "
            "pass --set dataset.location=DIR."
        )
    _checked(plan, "dataset", plan.stages["dataset"][0], plan.dataset())


def check_plan(plan: Plan) -> None:
    """Check everything about ``plan`` that can be checked before any work starts.

    Every cell's parameter values (each component's ``check_params``), template
    placeholders left in paths, the dataset location, ROI names against the dataset's
    labels, that the features can be computed for the dataset's stimuli, and that
    every aligner has enough subjects to be scored leaving one out. ``conform fit
    --check`` runs only this.

    Raises
    ------
    SpecError
        Naming the stage, the entry, the value and the fix.
    """
    _check_dataset(plan)
    _check_stages(plan)


def _check_stages(plan: Plan) -> None:
    """Run the checks of :func:`check_plan` that come after the dataset's own."""
    built: dict[str, list[Component]] = {}
    for stage, entries in plan.stages.items():
        if stage != "dataset":
            built[stage] = [
                _checked(plan, stage, entry, plan.build(stage, entry)) for entry in entries
            ]
    dataset = plan.dataset()
    if plan.rois:
        labels = dataset.roi_labels()
        if labels is not None:
            missing = [r for r in plan.rois if r not in labels]
            if missing:
                shown = (
                    ", ".join(sorted(labels)[:20])
                    if labels
                    else "none (its units carry no ROI labels)"
                )
                raise SpecError(
                    f"[dataset] rois: {missing[0]!r} is not an ROI of this dataset."
                    f"{suggest(missing[0], list(labels))} Its ROI labels: {shown}. "
                    "Remove [dataset] rois to analyse every unit."
                )
    stimuli = dataset.stimulus_set()
    if stimuli is not None:
        _check_context_sizes(plan, stimuli.n_stimuli)
        for entry, features in zip(plan.stages["features"], built["features"]):
            try:
                features.check_stimuli(stimuli)
            except ConformError as exc:
                raise SpecError(f"Stage 'features' ({entry.label}): {exc}") from None
            _check_encoders_read(plan, built["encoder"], features, stimuli)
    aligners = plan.stages.get("aligner", ())
    if aligners and len(plan.subjects) < MIN_ALIGNER_SUBJECTS:
        raise SpecError(
            f"Stage 'aligner' ({', '.join(e.label for e in aligners)}): scoring an aligner leaves "
            f"one subject out and fits on the others, which needs at least {MIN_ALIGNER_SUBJECTS} "
            f"subjects; this analysis has {len(plan.subjects)}. Add subjects ([dataset] subjects), "
            "or remove the aligner stage from the spec."
        )


def _check_encoders_read(
    plan: Plan, encoders: list[Component], features: Component, stimuli: StimulusSet
) -> None:
    """Each encoder's :meth:`Encoder.check_features` on the features' space and dimension."""
    if not isinstance(features, Features):
        return
    try:
        features.fit(stimuli)
    except ConformError:
        return  # the features' own problem is reported when they run
    space = str(getattr(features, "feature_space_", ""))
    n_features = features.output_dim(stimuli)
    for entry, encoder in zip(plan.stages["encoder"], encoders):
        if not isinstance(encoder, Encoder):
            continue
        try:
            encoder.check_features(space, n_features)
        except ConformError as exc:
            raise SpecError(f"Stage 'encoder' ({entry.label}): {exc}") from None


def _check_context_sizes(plan: Plan, n_stimuli: int) -> None:
    """Refuse a context size that no subject can have fewer training stimuli than.

    A subject's training stimuli are some of the dataset's ``n_stimuli`` (its test stimuli
    are others), so a size of ``n_stimuli`` or more would be skipped for every subject. A
    size that only some subjects cannot fit is skipped for those at run time instead,
    since their split is known only once they are loaded.
    """
    too_large = [n for n in plan.context_sizes if n >= n_stimuli]
    if too_large:
        fitting = ",".join(str(n) for n in plan.context_sizes if n < n_stimuli) or ",".join(
            str(n) for n in (10, 20, 50, 100) if n < n_stimuli // 2
        ) or "2"
        raise SpecError(
            f"[evaluation] context_sizes: {too_large[0]} is not smaller than the dataset's "
            f"{n_stimuli} stimuli, so no subject has that many training stimuli (they are fewer "
            "than the stimuli, some of which are held out for testing). Use sizes below the "
            f"number of training stimuli, e.g. context_sizes = [{fitting.replace(',', ', ')}] "
            f"(or --set evaluation.context_sizes=[{fitting}])."
        )


@dataclass(frozen=True)
class MemoryCheck:
    """What :func:`check_memory` found when every known estimate fits.

    Attributes
    ----------
    budget : int
        Bytes for all the tasks that run at once (``--mem``, else the memory available).
    tasks_at_once : int
        Tasks that share the budget (``--workers``; 1 in serial).
    n_checked : int
        Cells (stage entry x subject) whose size and estimate were known.
    largest : int
        The largest estimate, in bytes (0 when none was known).
    where : str
        The cell of the largest estimate, e.g. ``denoiser 'psn' on 'sub-01'``.
    skipped : str
        Why nothing was checked (empty when the check ran).
    """

    budget: int
    tasks_at_once: int
    n_checked: int = 0
    largest: int = 0
    where: str = ""
    skipped: str = ""

    @property
    def per_task(self) -> int:
        """Bytes each task may use."""
        return self.budget // max(self.tasks_at_once, 1)

    def summary(self) -> str:
        """One line for ``conform fit --check``."""
        if self.skipped:
            return f"Memory: not checked ({self.skipped})."
        if not self.n_checked:
            return ("Memory: not checked (no stage of this analysis knows its peak memory for "
                    "this data).")
        return (f"Memory: the largest peak predicted is {format_bytes(self.largest)} "
                f"({self.where}), within {format_bytes(self.per_task)} per task "
                f"({self.n_checked} cell(s) checked).")


_MEMORY_STAGES = ("glm", "denoiser", "aligner", "encoder")


def check_memory(plan: Plan, *, budget: int | None = None, tasks_at_once: int = 1,
                 workers_known: bool = True) -> MemoryCheck:
    """Refuse ``plan`` if a cell's predicted peak memory exceeds what one task may use.

    For every subject whose size the dataset knows without loading it
    (:meth:`~conform_core.components.Dataset.data_size`) and every entry of the ``glm``,
    ``denoiser``, ``aligner`` and ``encoder`` stages whose component knows its peak
    (:meth:`~conform_core.components.Component.peak_memory`; aligners see every subject
    at once), the peak is compared with ``budget / tasks_at_once``. Unknown sizes and
    estimates are skipped; with ``[dataset] rois`` that the dataset does not read itself,
    only the GLM stage is checked (the units left after the ROIs are not known before
    loading). Costs milliseconds: nothing is loaded or fitted.

    Parameters
    ----------
    plan : Plan
        A plan from :func:`make_plan`.
    budget : int or None
        Bytes for all the tasks that run at once (``conform fit --mem``); None: the memory
        available now (:func:`~conform_core.memory.available_bytes`).
    tasks_at_once : int, default=1
        Tasks that share the budget (``--workers``).
    workers_known : bool, default=True
        False when the tasks run elsewhere (``--scheduler``): then ``budget`` is each
        worker's memory, and without it nothing is checked.

    Returns
    -------
    MemoryCheck
        The largest estimate and where, for ``conform fit --check``'s line.

    Raises
    ------
    SpecError
        Naming the stage, entry, plugin, subject, the data size, the memory needed, the
        budget and the fixes (fewer units, fewer workers, ``--mem``, another plugin).
    """
    if not workers_known:
        if budget is None:
            return MemoryCheck(0, 1, skipped="the workers of --scheduler are elsewhere; pass "
                                             "--mem with each worker's memory to check")
        tasks_at_once = 1
    source = "given by --mem" if budget is not None else "available now"
    budget = int(available_bytes() if budget is None else budget)
    tasks_at_once = max(int(tasks_at_once), 1)
    check = MemoryCheck(budget, tasks_at_once)
    if budget <= 0:
        return replace(check, skipped="the memory available could not be read; pass --mem")
    dataset = plan.dataset()
    sizes = {s: size for s in plan.subjects if (size := dataset.data_size(s)) is not None}
    if not sizes:
        return check
    per_task = check.per_task
    built: dict[tuple[str, int], Component] = {}
    known: list[_Cell] = []
    for subject, size in sizes.items():
        for stage in _MEMORY_STAGES:
            if stage != "glm" and plan.rois:
                continue  # the units left after plan.rois are known only once loaded
            for i, entry in enumerate(plan.stages.get(stage, ())):
                staged = replace(size, n_subjects=len(plan.subjects)) if stage == "aligner" else size
                component = built.get((stage, i))
                if component is None:
                    component = built[stage, i] = plan.build(stage, entry)
                need = component.peak_memory(staged)
                if need is not None:
                    known.append(_Cell(int(need), stage, entry, subject, staged, component))
    if not known:
        return check
    too_big = [c for c in known if c.need > per_task]
    if too_big:
        raise SpecError(_memory_message(plan, max(too_big, key=lambda c: c.need), check, source,
                                        too_big))
    worst = max(known, key=lambda c: c.need)
    return replace(check, n_checked=len(known), largest=worst.need,
                   where=f"{worst.stage} {worst.entry.label!r} on {worst.subject!r}")


@dataclass(frozen=True)
class _Cell:
    """One stage entry on one subject, with its predicted peak (:func:`check_memory`)."""

    need: int
    stage: str
    entry: StageEntry
    subject: str
    size: DataSize
    component: Component


def _memory_message(plan: Plan, cell: _Cell, check: MemoryCheck, source: str,
                    too_big: list[_Cell]) -> str:
    """Return the refusal of :func:`check_memory`: the cell, the figures and the fixes."""
    stage, entry, per_task = cell.stage, cell.entry, check.per_task
    plugin = entry.plugin if entry.plugin == entry.label else f"{entry.label}, plugin {entry.plugin}"
    shared = (f"{format_bytes(check.budget)} {source} / {check.tasks_at_once} tasks at once"
              if check.tasks_at_once > 1 else f"{format_bytes(check.budget)} {source}")
    text = (f"Stage {stage!r} ({plugin}) on subject {cell.subject!r} "
            f"({cell.size.describe(stage)}) would need about {format_bytes(cell.need)} of "
            f"memory at its peak, but a task may use {format_bytes(per_task)} ({shared}). "
            "Nothing was run. Fixes:")
    fitting = _units_that_fit(cell.component, cell.size, per_task)
    where = ("a smaller mask, or ROIs the dataset reads itself ([dataset] rois of a dataset "
             "with a 'rois' parameter; the GLM runs before other ROIs are taken)"
             if stage == "glm" else "[dataset] rois = [...] (or --set dataset.rois=[...]) or a "
             "smaller mask")
    fixes = [f"analyse fewer units: {where}{f'; about {fitting} units fit' if fitting else ''}"]
    if check.tasks_at_once > 1 and check.budget // max(cell.need, 1) >= 1:
        fixes.append(f"run fewer tasks at once: --workers {check.budget // cell.need}")
    fixes.append(f"pass --mem {_mem_option(cell.need * check.tasks_at_once)} if that much "
                 "memory is free (with --scheduler: each worker's memory)")
    failing = {id(c.entry) for c in too_big if c.stage == stage}
    others = [repr(e.label) for e in plan.stages[stage] if id(e) not in failing]
    target = f"{stage}[{entry.label}]" if len(plan.stages[stage]) > 1 else stage
    fixes.append(f"a lighter mode of {entry.plugin!r} (--set {target}.PARAM=VALUE) or another "
                 f"{stage} (--set {stage}=PLUGIN)"
                 + (f"; this spec's {', '.join(others)} {'fits' if len(others) == 1 else 'fit'}"
                    if others else ""))
    text += ";".join(f" ({i}) {fix}" for i, fix in enumerate(fixes, 1)) + "."
    if len(too_big) > 1:
        text += f" {len(too_big) - 1} other cell(s) do not fit either."
    return text


def _mem_option(n: int) -> str:
    """Return ``n`` bytes as a ``--mem`` value, rounded up: ``12GB``, ``300MB``."""
    if n >= 1024**3:
        return f"{math.ceil(n / 1024**3)}GB"
    return f"{max(math.ceil(n / 1024**2), 1)}MB"


def _units_that_fit(component: Component, size: DataSize, per_task: int) -> int:
    """Return the most units whose estimate fits ``per_task`` (0 if not even one; a hint only)."""
    low, high = 0, size.n_units
    while low < high:  # estimates grow with the units: bisect on them
        middle = (low + high + 1) // 2
        need = component.peak_memory(replace(size, n_units=middle))
        if need is not None and need <= per_task:
            low = middle
        else:
            high = middle - 1
    return low


MIN_ALIGNER_SUBJECTS = 3
"""Leave-one-subject-out scoring fits an aligner on at least two subjects and predicts a third."""
