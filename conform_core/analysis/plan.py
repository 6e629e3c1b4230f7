"""A resolved, picklable analysis plan: what each stage runs, with which parameters."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


from ..components import Component
from ..exceptions import SpecError
from ..io import to_builtin
from ..spec import STAGE_KIND, AnalysisSpec, StageEntry, check_spec
from ..validation import suggest

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to run its part of an analysis (no classes, only names).

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
    test_fraction : float
        Share of stimuli held out when a dataset has no split of its own.
    """

    stages: dict[str, tuple[StageEntry, ...]]
    location: str | None
    subjects: tuple[str, ...]
    rois: tuple[str, ...]
    seed: int
    metrics: tuple[str, ...]
    test_fraction: float = 0.2
    extra: dict[str, Any] = field(default_factory=dict)

    def build(self, stage: str, entry: StageEntry) -> Component:
        """Instantiate ``entry`` of ``stage`` through the registry."""
        from ..plugins import default_registry

        cls = default_registry().get(STAGE_KIND[stage], entry.plugin)
        params = dict(entry.params)
        if stage == "dataset" and self.location is not None:
            params["location"] = self.location
        return cls(**params)

    def dataset(self) -> Component:
        """The dataset component (one instance per process, so in-memory data is made once)."""
        entry = self.stages["dataset"][0]
        key = (entry.plugin, repr(sorted(entry.params.items())), self.location)
        if key not in _DATASETS:
            _DATASETS.clear()
            _DATASETS[key] = self.build("dataset", entry)
        return _DATASETS[key]


_DATASETS: dict[tuple[Any, ...], Component] = {}


def _complete_params(cls: Any, entry: StageEntry, seed: int) -> dict[str, Any]:
    """The entry's params with defaults filled in and a seed for ``random_state``."""
    params = dict(entry.params)
    if "random_state" in cls._get_param_names() and "random_state" not in params:
        params["random_state"] = seed
    instance = cls(**params)
    full = instance.get_params(deep=False)
    return {k: to_builtin(v) for k, v in full.items() if k != "location"}


def make_plan(spec: AnalysisSpec, registry: Any) -> Plan:
    """Check ``spec`` and resolve it into a :class:`Plan` (subjects listed, params complete)."""
    check_spec(spec, registry)
    spec = spec.copy()
    rois = spec.dataset.get("rois", [])
    dataset_entry = spec.stages["dataset"][0]
    if rois and "rois" in registry.get("dataset", dataset_entry.plugin)._get_param_names():
        # the dataset reads only these units itself (e.g. MOSAIC's ROI names or vertex indices)
        dataset_entry.params["rois"] = rois
        rois = []
    stages: dict[str, tuple[StageEntry, ...]] = {}
    for stage, entries in spec.stages.items():
        kind = STAGE_KIND[stage]
        resolved = []
        for entry in entries:
            cls = registry.get(kind, entry.plugin)
            resolved.append(StageEntry(entry.plugin, _complete_params(cls, entry, spec.seed), entry.label))
        stages[stage] = tuple(resolved)
    plan = Plan(stages=stages, location=spec.location(), subjects=(), rois=(), seed=spec.seed,
                metrics=spec.metrics,
                test_fraction=float(spec.evaluation.get("split_fallback_test_fraction", 0.2)))
    available = plan.dataset().subjects()
    wanted = spec.dataset.get("subjects", "all")
    if wanted in ("all", None):
        subjects = tuple(available)
    else:
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        for name in wanted:
            if name not in available:
                raise SpecError(f"[dataset] subjects: no subject {name!r} in this dataset."
                                f"{suggest(name, available)} Subjects: {', '.join(available[:10])}.")
        subjects = tuple(wanted)
    return replace(plan, subjects=subjects, rois=(rois,) if isinstance(rois, str) else tuple(rois))
