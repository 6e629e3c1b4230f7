"""stimulus_design: ``conform design``, from an image pool to a multi-site protocol package.

Flow: embeddings (the ``clip`` features plugin, or precomputed) -> coverage selection
(exact greedy k-center with FAISS) -> allocation (shared core, balanced partial overlap, or
LAION-fMRI prototypes) -> schedule (sessions, runs, null trials, repeat rules) -> package.
A running study (the registry's loop) keeps a :class:`StudyState` and allocates on request
(:func:`allocate_more`, :func:`write_protocol`, :func:`coverage_of`).
The command arrives through the ``conform_register_commands`` hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conform_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer

_LAZY = {
    "Allocation": "_allocate", "allocate_stimuli": "_allocate", "check_package": "_check",
    "DesignCheckError": "_design", "DesignInputs": "_design", "load_pool": "_design",
    "run_design": "_design", "compare_with_random": "_metrics", "coverage_summary": "_metrics",
    "diversity": "_metrics", "nearest_selected": "_metrics", "DesignParams": "_params",
    "Plan": "_params", "plan_design": "_params", "schedule_participant": "_schedule",
    "KCenterResult": "_select", "select_kcenter": "_select", "select_kcenter_numpy": "_select",
    "select_stratified": "_select",
    "AllocationConflictError": "_study", "StudyParticipant": "_study", "StudyState": "_study",
    "add_participants": "_study", "create_study": "_study", "record_collected": "_collected",
    "release_participants": "_collected", "allocate_more": "_incremental",
    "session_budget": "_incremental", "coverage_of": "_coverage", "write_protocol": "_protocol",
    "study_coverage_figure": "_figure",
}

__all__ = [
    "Allocation",
    "AllocationConflictError",
    "DesignCheckError",
    "DesignInputs",
    "DesignParams",
    "KCenterResult",
    "Plan",
    "StudyParticipant",
    "StudyState",
    "add_participants",
    "allocate_more",
    "allocate_stimuli",
    "check_package",
    "compare_with_random",
    "conform_register_commands",
    "coverage_of",
    "coverage_summary",
    "create_study",
    "diversity",
    "load_pool",
    "nearest_selected",
    "plan_design",
    "record_collected",
    "release_participants",
    "run_design",
    "schedule_participant",
    "select_kcenter",
    "select_kcenter_numpy",
    "select_stratified",
    "session_budget",
    "study_coverage_figure",
    "write_protocol",
]


@hookimpl
def conform_register_commands(app: typer.Typer) -> None:
    """Add ``conform design`` (and ``conform design check``) to the root app."""
    from ._cli import design_app

    app.add_typer(design_app, name="design")


def __getattr__(name: str) -> Any:
    """Import the public API lazily, so loading the plugin (for the CLI hook) stays cheap."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
