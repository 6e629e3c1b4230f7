"""``conform fit``'s memory check: every cell's predicted peak against the budget, before work.

Components declare their peak (:meth:`~conform_core.components.base.Component.peak_memory`)
and datasets the size of a subject's data (:meth:`~conform_core.components.Dataset.data_size`);
:func:`check_memory` compares each cell with ``--mem`` (or the memory available now) shared by
the tasks that run at once, and refuses the plan with the figure and the fixes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from sklearn.base import clone

from ..components import Component
from ..exceptions import SpecError
from ..memory import DataSize, available_bytes, format_bytes
from ..spec import StageEntry
from .plan import Plan

__all__ = ["MemoryCheck", "check_memory"]


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
    target = f"{stage}[{entry.label}]" if len(plan.stages[stage]) > 1 else stage
    lighter = _lighter_that_fit(cell, per_task, target)
    if lighter:
        fixes.append(f"a lighter mode of {entry.plugin!r}: {lighter}")
    failing = {id(c.entry) for c in too_big if c.stage == stage}
    others = [repr(e.label) for e in plan.stages[stage] if id(e) not in failing]
    fixes.append(("another" if lighter else f"a lighter mode of {entry.plugin!r} (--set "
                  f"{target}.PARAM=VALUE) or another") + f" {stage} (--set {stage}=PLUGIN)"
                 + (f"; this spec's {', '.join(others)} {'fits' if len(others) == 1 else 'fit'}"
                    if others else ""))
    text += ";".join(f" ({i}) {fix}" for i, fix in enumerate(fixes, 1)) + "."
    if len(too_big) > 1:
        text += f" {len(too_big) - 1} other cell(s) do not fit either."
    return text


def _lighter_that_fit(cell: _Cell, per_task: int, target: str) -> str:
    """Name the component's lighter settings that fit in ``per_task``, with their figures."""
    found = []
    for settings in cell.component.lighter_settings(cell.size):
        need = clone(cell.component).set_params(**settings).peak_memory(cell.size)
        if need is not None and need <= per_task:
            flags = " ".join(f"--set {target}.{k}={_flag_value(v)}" for k, v in settings.items())
            found.append(f"{flags} (about {format_bytes(int(need))})")
    return " or ".join(found)


def _flag_value(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


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
