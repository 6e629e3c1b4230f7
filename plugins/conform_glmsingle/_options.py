"""GLMsingle options: the official names and defaults, and what each value may be.

Every option is declared once, in :data:`OPTION_CONSTRAINTS`, and checked by
:mod:`conform_core.constraints` (unknown names get the closest valid one). Only the rule
between ``pcstop`` and ``n_pcs`` and the checks that need the runs (one value per run,
HRFs sampled at the TR) are written out here.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.constraints import (
    AnyValue,
    Boolean,
    Constraint,
    InstanceOf,
    Interval,
    PathLike,
    check_constraints,
)
from conform_core.constraints import Options as OneOf
from conform_core.exceptions import DataFileError, ParameterError, ShapeError

__all__ = ["DEFAULTS", "IGNORED", "OFFICIAL_UNUSED", "OPTION_CONSTRAINTS", "OPTION_FIXES", "Options",
           "check_options", "check_pcstop", "Fractions", "load_hrf_table", "resolve_options"]

#: Official defaults (glmsingle.md section 3; Python package values).
DEFAULTS: dict[str, Any] = {
    "wantlibrary": 1,
    "wantglmdenoise": 1,
    "wantfracridge": 1,
    "chunklen": 50000,
    "xvalscheme": None,
    "sessionindicator": None,
    "wantfileoutputs": [1, 1, 1, 1],
    "wantmemoryoutputs": [1, 1, 1, 1],
    "wanthdf5": 0,
    "extra_regressors": False,
    "maxpolydeg": None,
    "wantpercentbold": 1,
    "hrftoassume": None,
    "hrflibrary": None,
    "wantlss": 0,
    "n_pcs": 10,
    "brainthresh": [99.0, 0.1],
    "brainR2": [],
    "brainexclude": False,
    "pcR2cutoff": [],
    "pcR2cutoffmask": 1,
    "pcstop": 1.05,
    "fracs": None,  # linspace(1, 0.05, 20)
    "wantautoscale": 1,
    "firdelay": 30,
    "firpct": 99,
    # ours
    "engine": "native",
    "verbose": True,
    "quirks": "official",
    "random_state": 0,
    "blas_threads": 1,
    "outputformat": None,
}

#: Accepted for compatibility, never used by GLM_single (glmsingle.md section 3).
IGNORED = ("numforhrf", "hrfthresh", "hrffitmask", "R2thresh", "hrfmodel", "n_jobs", "n_boots",
           "wantparametric", "lambda", "seed", "suppressoutput")

#: The official defaults of the options in :data:`IGNORED` (its ``params`` always holds them;
#: its ``seed`` default is the time it was imported, ours None).
OFFICIAL_UNUSED: dict[str, Any] = {
    "numforhrf": 50, "hrfthresh": 0.5, "hrffitmask": 1, "R2thresh": 0, "hrfmodel": "optimise",
    "n_jobs": 1, "n_boots": 100, "wantparametric": 0, "seed": None, "suppressoutput": 0,
    "lambda": 0,
}


def _floats(value: Any) -> NDArray[np.float64]:
    """``value`` as a flat float array (NaN when it holds something that is not a number)."""
    try:
        return np.atleast_1d(np.asarray(value, np.float64)).ravel()
    except (TypeError, ValueError):
        return np.array([np.nan])


class _TypeFlags(Constraint):
    """Four 0/1 flags, one per GLMsingle type (A, B, C, D)."""

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)):
            return False
        arr = _floats(value)
        return arr.size == 4 and bool(np.all(np.isin(arr, (0, 1))))

    def describe(self) -> str:
        return "four 0/1 flags for types A, B, C, D"

    def invalid_value(self) -> Any:
        return [1, 1]


class Fractions(Constraint):
    """A non-empty list (or one number) of ridge fractions in (0, 1]."""

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)) or np.ndim(value) > 1:
            return False
        arr = _floats(value)
        return arr.size > 0 and bool(np.all(np.isfinite(arr) & (arr > 0) & (arr <= 1)))

    def describe(self) -> str:
        return "a non-empty list of fractions in (0, 1]"

    def invalid_value(self) -> Any:
        return [0.0]


class _BrainThresh(Constraint):
    """``[percentile, fraction]``: the brain mask's intensity percentile (0-100) and fraction."""

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)):
            return False
        arr = _floats(value)
        return arr.size == 2 and bool(0 <= arr[0] <= 100)

    def describe(self) -> str:
        return "[percentile, fraction] with the percentile in [0, 100]"

    def invalid_value(self) -> Any:
        return [101, 0.1]


_FLAG: list[Any] = [OneOf((0, 1, True, False))]
_FLAGS = ("wantlibrary", "wantglmdenoise", "wantfracridge", "wantpercentbold", "wantlss",
          "wanthdf5", "wantautoscale")
_HRFS: list[Any] = [PathLike("file"), InstanceOf((np.ndarray, list, tuple), "an array of HRF "
                                                 "samples (time x HRFs)"), None]

#: Every option GLM_single accepts, and what its value may be (glmsingle.md section 3).
OPTION_CONSTRAINTS: dict[str, list[Any]] = {
    **{flag: _FLAG for flag in _FLAGS},
    "chunklen": [Interval(int, 1, None)],
    "xvalscheme": [AnyValue("a list of groups of 0-based run indices, or None")],
    "sessionindicator": [AnyValue("one positive int per run, or None")],
    "wantfileoutputs": [_TypeFlags()],
    "wantmemoryoutputs": [_TypeFlags()],
    "extra_regressors": [AnyValue("False, or one time x k array per run")],
    "maxpolydeg": [AnyValue("an int >= 0 or one per run, or None")],
    "hrftoassume": _HRFS,
    "hrflibrary": _HRFS,
    "n_pcs": [Interval(int, 0, None)],
    "brainthresh": [_BrainThresh()],
    "brainR2": [AnyValue("[] (automatic) or an R² threshold in percent")],
    "brainexclude": [AnyValue("False, or a 0/1 mask of the units to exclude")],
    "pcR2cutoff": [AnyValue("[] (automatic) or an R² cutoff in percent")],
    "pcR2cutoffmask": [AnyValue("1, or a 0/1 mask of the units")],
    "pcstop": [Interval(float, None, None)],
    "fracs": [Fractions(), None],
    "firdelay": [Interval(float, 0, None)],
    "firpct": [Interval(float, 0, 100)],
    "engine": [OneOf(("native", "official"))],
    "verbose": [Boolean(), OneOf((0, 1))],
    "quirks": [OneOf(("official", "fixed"))],
    "random_state": [Interval(int, 0, 2**32 - 1),
                     InstanceOf(np.random.RandomState, "a numpy RandomState"), None],
    "blas_threads": [Interval(int, 1, None), None],
    "outputformat": [OneOf(("npy", "hdf5", "npy-pickle")), None],
    **{name: [AnyValue("any value (accepted for compatibility, never used)")] for name in IGNORED},
}

_HRF_FIX = ("Pass a time x HRFs table sampled every 0.1 s (TSV, CSV or .npy), or an array "
            "sampled at the TR.")
#: How to fix a bad value of an option.
OPTION_FIXES: dict[str, str] = {
    **{flag: "Use 0 or 1." for flag in _FLAGS},
    "chunklen": "It bounds memory (units per chunk); results do not depend on it.",
    "wantfileoutputs": "Example: [0, 0, 0, 1] keeps type D only.",
    "wantmemoryoutputs": "Example: [0, 0, 0, 1] keeps type D only.",
    "hrftoassume": _HRF_FIX,
    "hrflibrary": _HRF_FIX,
    "brainthresh": "Use e.g. [99, 0.1] (the default).",
    "pcstop": "Use a number >= 1 (the stopping rule), or -K to keep exactly K PCs.",
    "fracs": "Use None for numpy.linspace(1, 0.05, 20).",
    "quirks": "'official' reproduces the official package's numbers.",
    "blas_threads": "Use None to leave BLAS as it is.",
    "outputformat": ("None writes the official files (pickled .npy, or .hdf5 with wanthdf5=1); "
                     "'npy' a folder of plain .npy per file (no pickle, any size)."),
}


def check_pcstop(pcstop: float, n_pcs: int, *, owner: Any) -> None:
    """Check ``pcstop`` against ``n_pcs``: ``pcstop <= 0`` asks for exactly ``-pcstop`` PCs.

    Raises
    ------
    ParameterError
        If ``-pcstop`` is not a whole number, or more PCs than ``n_pcs``.
    """
    if pcstop > 0:
        return
    allowed = (f"a number >= 1 (the stopping rule) or -K with K a whole number of PCs <= "
               f"$n_pcs={n_pcs}")
    if float(-pcstop) != int(-pcstop):
        raise ParameterError(param="pcstop", value=pcstop, owner=owner, allowed=allowed,
                             fix="Pass -K to keep exactly K PCs.")
    if -pcstop > n_pcs:
        raise ParameterError(param="pcstop", value=pcstop, owner=owner, allowed=allowed,
                             fix=f"Raise $n_pcs to at least {int(-pcstop)}, or keep fewer PCs.")


def check_options(params: dict[str, Any] | None) -> dict[str, Any]:
    """Check GLM_single's options without the data; return them merged with the defaults.

    Names (unknown ones with the closest valid name) and values against
    :data:`OPTION_CONSTRAINTS`, ``pcstop`` against ``n_pcs``, and that HRF table paths
    exist. Flags come back as ints. ``GLM_single`` runs it when built, and
    ``GLMsingleDenoiser.check_params`` before any work.

    Raises
    ------
    ParameterError
        For an unknown name or a bad value, naming the option, the value and the fix.
    DataFileError
        For an HRF table path that does not exist.
    """
    given = dict(params or {})
    check_constraints(OPTION_CONSTRAINTS, given, owner="GLM_single", fixes=OPTION_FIXES,
                      reject_unknown=True)
    raw = copy.deepcopy(DEFAULTS)
    raw.update(given)
    check_pcstop(raw["pcstop"], raw["n_pcs"], owner="GLM_single")
    for key in _FLAGS:
        raw[key] = int(raw[key])
    for key in ("wantfileoutputs", "wantmemoryoutputs"):
        raw[key] = [int(a) for a in _floats(raw[key])]
    return raw


def load_hrf_table(path: str | Path) -> NDArray[np.float64]:
    """Load an HRF table (time x n_hrfs at 0.1 s, e.g. the official TSV) from a text or .npy file.

    Raises
    ------
    DataFileError
        If the file is missing or not a numeric 2-D table.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"HRF library file {str(p)!r} does not exist. Pass the path of a "
                            "time x HRFs table sampled every 0.1 s (TSV, CSV or .npy).")
    try:
        if p.suffix == ".npy":
            table = np.load(p, allow_pickle=False)
        else:
            delim = "," if p.suffix == ".csv" else None
            table = np.loadtxt(p, delimiter=delim, ndmin=2)
    except (ValueError, OSError) as exc:
        raise DataFileError(f"Could not read HRF library {str(p)!r}: {exc}. It must be a numeric "
                            "table, one row per 0.1-s sample and one column per HRF.") from None
    return np.asarray(table, np.float64)


@dataclass
class Options:
    """Validated options (official names), plus the resolved HRFs."""

    raw: dict[str, Any]
    hrftoassume: NDArray[np.float64]
    hrflibrary: NDArray[np.float64]
    fracs: NDArray[np.float64]
    maxpolydeg: list[int]
    sessionindicator: NDArray[np.int64]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]


def _check_hrfs(arr: Any, name: str, n_cols: int | None = None) -> NDArray[np.float64]:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 1:
        raise ShapeError(f"{name} must be a time x HRFs array with at least 2 time points; got "
                         f"shape {np.shape(arr)}. Sample each HRF at the TR, first sample at onset.")
    if n_cols is not None and a.shape[1] != n_cols:
        raise ShapeError(f"{name} must have {n_cols} column(s); got shape {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ShapeError(f"{name} contains NaN or Inf; pass finite HRF samples.")
    peak = a.max(axis=0)
    if np.any(peak <= 0):
        bad = np.flatnonzero(peak <= 0)[:5].tolist()
        raise ShapeError(
            f"{name} column(s) {bad} have no positive value; an HRF must peak above 0. "
            "Check that the array is time x HRFs, not HRFs x time."
        )
    return a / peak


def resolve_options(
    params: dict[str, Any] | None, *, stimdur: float, tr: float, n_times: list[int]
) -> Options:
    """Merge ``params`` with the defaults, check them, and resolve the HRFs and fractions.

    The options are checked alone (:func:`check_options`) and against the runs (one value per
    run, polynomial degrees, HRFs).

    Raises
    ------
    ParameterError, ShapeError, DataFileError
        Naming the option, the value and the fix.
    """
    from ._hrf import official_canonical, official_library, resample_canonical, resample_library
    from ._nuisance import default_maxpolydeg

    raw = check_options(params)
    n_runs = len(n_times)
    fr = np.linspace(1, 0.05, 20) if raw["fracs"] is None else _floats(raw["fracs"])
    fracs = np.unique(fr)[::-1]

    if raw["maxpolydeg"] is None:
        degs = [default_maxpolydeg(t, tr) for t in n_times]
    else:
        md = np.atleast_1d(np.asarray(raw["maxpolydeg"]))
        if md.size == 1:
            md = np.repeat(md, n_runs)
        if md.size != n_runs or np.any(md < 0) or np.any(md != np.round(md)):
            raise ParameterError(
                param="maxpolydeg",
                value=raw["maxpolydeg"],
                owner="GLM_single",
                allowed=f"an int >= 0, or one per run ({n_runs}), or None",
                fix="Use None for the default degree of each run.",
            )
        degs = [int(d) for d in md]
    for r, (d, t) in enumerate(zip(degs, n_times)):
        if d + 1 >= t:
            raise ParameterError(
                f"Run {r} has {t} time points, too few for polynomial degree {d}. "
                "Lower maxpolydeg or drop the run."
            )

    si = raw["sessionindicator"]
    sess = np.ones(n_runs, np.int64) if si is None else np.atleast_1d(np.asarray(si)).ravel()
    if sess.size != n_runs or np.any(sess < 1) or np.any(sess != np.round(sess)):
        raise ParameterError(
            param="sessionindicator",
            value=si,
            owner="GLM_single",
            allowed=f"one positive int per run ({n_runs}), or None",
            fix="Example for 2 sessions of 3 runs: [1, 1, 1, 2, 2, 2].",
        )
    sess = sess.astype(np.int64)

    if isinstance(raw["hrftoassume"], (str, os.PathLike)):
        hta = resample_canonical(load_hrf_table(raw["hrftoassume"])[:, 0], stimdur, tr)
    elif raw["hrftoassume"] is None:
        hta = official_canonical(stimdur, tr)
    else:
        hta = raw["hrftoassume"]
    hrftoassume = _check_hrfs(hta, "hrftoassume", n_cols=1)[:, 0]
    lib = raw["hrflibrary"]
    if isinstance(lib, (str, os.PathLike)):
        lib = resample_library(load_hrf_table(lib), stimdur, tr)
    elif lib is None:
        lib = official_library(stimdur, tr)
    hrflibrary = _check_hrfs(lib, "hrflibrary")
    if not raw["wantlibrary"]:
        hrflibrary = hrftoassume[:, None]
    return Options(
        raw=raw,
        hrftoassume=hrftoassume,
        hrflibrary=hrflibrary,
        fracs=fracs,
        maxpolydeg=degs,
        sessionindicator=sess,
    )
