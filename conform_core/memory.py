"""Memory known before work: data sizes, memory sizes as text, and the memory available.

A dataset tells the size of a subject's data without loading it
(:meth:`~conform_core.components.Dataset.data_size`, a :class:`DataSize`); a component
tells the peak memory it needs for data of that size
(:meth:`~conform_core.components.Component.peak_memory`); ``conform fit`` compares the two
with the memory each task may use before any work starts (``--mem``, else
:func:`available_bytes`). Sizes are in binary units: 1 GB = 1024³ bytes, as SLURM's
``--mem``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from .exceptions import ParameterError

__all__ = ["DataSize", "available_bytes", "format_bytes", "parse_bytes"]

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2,
          "MIB": 1024**2, "G": 1024**3, "GB": 1024**3, "GIB": 1024**3, "T": 1024**4,
          "TB": 1024**4, "TIB": 1024**4}


@dataclass(frozen=True)
class DataSize:
    """The size of one subject's data as a stage sees it.

    Attributes
    ----------
    n_units : int
        Units (voxels, vertices, grayordinates).
    n_conditions : int
        Distinct stimuli the stage is fitted on (the training stimuli).
    n_trials : int
        Trials per condition (the most repeats of any condition).
    n_subjects : int, default=1
        Subjects fitted together (aligners: every subject of the analysis).
    n_timepoints : int, default=0
        Volumes over all runs, for the GLM stage (0: no time series).
    n_runs : int, default=0
        Runs of the time series.
    n_events : int, default=0
        Trials over all runs, for the GLM stage.
    """

    n_units: int
    n_conditions: int
    n_trials: int
    n_subjects: int = 1
    n_timepoints: int = 0
    n_runs: int = 0
    n_events: int = 0

    def describe(self, stage: str = "denoiser") -> str:
        """Describe the size as a reader wants it: ``5000 units x 800 conditions x 3 trials``.

        ``stage`` ``"glm"`` describes the time series instead (``... x 1200 time points in
        6 runs, 480 trials``) when there is one; ``"aligner"`` adds the subjects fitted
        together.
        """
        if stage == "glm" and self.n_timepoints:
            text = f"{self.n_units} units x {self.n_timepoints} time points"
            if self.n_runs:
                text += f" in {self.n_runs} run(s)"
            return text + (f", {self.n_events} trials" if self.n_events else "")
        text = f"{self.n_units} units x {self.n_conditions} conditions x {self.n_trials} trials"
        if stage == "aligner" and self.n_subjects > 1:
            text += f" x {self.n_subjects} subjects"
        return text


def available_bytes() -> int:
    """Return the memory available to new processes now, in bytes.

    psutil's ``virtual_memory().available`` (installed with dask.distributed), else the
    system's count of available pages; 0 when neither can be read.
    """
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError, AttributeError):  # pragma: no cover - psutil comes with dask
        pass
    try:  # pragma: no cover
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


def parse_bytes(text: str) -> int:
    """Parse a memory size such as ``8GB``, ``500M``, ``1.5GiB`` or ``1048576`` (bytes).

    Units are binary (1 GB = 1024³ bytes, as SLURM's ``--mem``).

    Raises
    ------
    ParameterError
        For anything else, with examples.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _UNITS or not math.isfinite(float(match.group(1))) \
            or float(match.group(1)) <= 0:
        raise ParameterError(f"--mem must be a memory size such as 8GB, 500MB or 1.5G; got "
                             f"{text!r}.")
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(n: float) -> str:
    """Return ``n`` bytes as a short text: ``1.23 GB`` (binary units, as :func:`parse_bytes`)."""
    for unit, size in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"
