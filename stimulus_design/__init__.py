"""stimulus_design: ``conform design``, from an image pool to a multi-site protocol package.

Flow: embeddings (the ``clip`` features plugin, or precomputed) -> coverage selection
(exact greedy k-center with FAISS) -> allocation (shared core, balanced partial overlap, or
LAION-fMRI prototypes) -> schedule (sessions, runs, null trials, repeat rules) -> package.
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
}

__all__ = [
    "Allocation",
    "DesignCheckError",
    "DesignInputs",
    "DesignParams",
    "KCenterResult",
    "Plan",
    "allocate_stimuli",
    "check_package",
    "compare_with_random",
    "conform_register_commands",
    "coverage_summary",
    "diversity",
    "load_pool",
    "nearest_selected",
    "plan_design",
    "run_design",
    "schedule_participant",
    "select_kcenter",
    "select_kcenter_numpy",
    "select_stratified",
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
