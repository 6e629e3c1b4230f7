"""A resolved, picklable analysis plan: what each stage runs, with which parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..components import Component, Dataset, Encoder, Features
from ..data import StimulusSet
from ..exceptions import ConformError, SpecError
from ..io import to_builtin
from ..spec import DEFAULT_CONTEXT_DRAWS, STAGE_KIND, AnalysisSpec, StageEntry, check_spec, is_url
from ..validation import is_placeholder, suggest

__all__ = ["Plan", "make_plan", "check_plan", "MIN_ALIGNER_SUBJECTS"]

MIN_ALIGNER_SUBJECTS = 3
"""Leave-one-subject-out scoring fits an aligner on at least two subjects and predicts a third."""


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
        raise _stage_error(plan, stage, entry, exc) from None
    return component


def _stage_error(plan: Plan, stage: str, entry: StageEntry, exc: ConformError) -> SpecError:
    """``exc`` (a component's parameter error) reworded to name the stage and the --set fix."""
    param = getattr(exc, "param", None) or "PARAM"
    return SpecError(
        f"Stage {stage!r} ({entry.label}): {exc} Fix it in the spec, or with "
        f"--set {_set_target(plan, stage, entry)}.{param}=VALUE."
    )


def _check_dataset(plan: Plan) -> None:
    """Run the dataset's own checks, before it is asked for anything (its subjects, say)."""
    _check_no_placeholders(plan)
    if plan.location is not None and not is_url(plan.location) and not Path(plan.location).exists():
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
    labels = dataset.roi_labels()
    if plan.rois:
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
    if labels is not None:
        _check_roi_labels(plan, built, list(plan.rois) if plan.rois else list(labels))
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


def _check_roi_labels(plan: Plan, built: dict[str, list[Component]], labels: list[str]) -> None:
    """Each component's :meth:`Component.check_roi_labels`, its error naming the stage."""
    for stage, components in built.items():
        for entry, component in zip(plan.stages[stage], components):
            try:
                component.check_roi_labels(labels)
            except ConformError as exc:
                raise _stage_error(plan, stage, entry, exc) from None


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
