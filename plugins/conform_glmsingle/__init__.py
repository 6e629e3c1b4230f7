"""GLMsingle for conform: single-trial fMRI betas, natively and fast.

Two faces:

* :class:`GLMsingleDenoiser` (registered as the ``glmsingle`` denoiser): TimeSeriesData in,
  TrialData (percent signal change, one beta per trial with its stimulus id) out;
* :class:`GLM_single`: a drop-in for the official ``GLM_single(params).fit(design, data,
  stimdur, tr, outputdir=...)`` with the official options and output names.

The command ``conform glmsingle RUNS... --events EVENTS... --out OUT`` runs it on NIfTI,
GIFTI or CIFTI runs with BIDS events files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from ._quirks import OfficialQuirkWarning
from ._timing import events_design
from .api import GLM_single
from .component import GLMsingleDenoiser

if TYPE_CHECKING:
    import typer

    from conform_core import ComponentRegistry

__all__ = ["GLM_single", "GLMsingleDenoiser", "OfficialQuirkWarning", "conform_register",
           "conform_register_commands", "events_design"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``glmsingle`` denoiser."""
    registry.add("denoiser", "glmsingle", GLMsingleDenoiser)


@hookimpl
def conform_register_commands(app: typer.Typer) -> None:
    """Add ``conform glmsingle``."""
    from .cli import register

    register(app)
