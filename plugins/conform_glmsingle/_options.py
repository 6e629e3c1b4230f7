"""GLMsingle options: the official names and defaults, validated with clear messages."""

from __future__ import annotations

import copy
import difflib
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError, ParameterError, ShapeError

__all__ = ["DEFAULTS", "IGNORED", "Options", "check_static_options", "load_hrf_table",
           "resolve_options"]

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
}

#: Accepted for compatibility, never used by GLM_single (glmsingle.md section 3).
IGNORED = ("numforhrf", "hrfthresh", "hrffitmask", "R2thresh", "hrfmodel", "n_jobs", "n_boots",
           "wantparametric", "lambda", "seed", "suppressoutput")


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


def _flags(value: Any, name: str) -> list[int]:
    arr = np.atleast_1d(np.asarray(value)).astype(float).ravel()
    if arr.size != 4 or not np.all(np.isin(arr, (0, 1))):
        raise ParameterError(f"{name} must be four 0/1 flags for types A, B, C, D; got {value!r}. "
                             "Example: [0, 0, 0, 1] keeps type D only.")
    return [int(a) for a in arr]


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
        raise ShapeError(f"{name} column(s) {bad} have no positive value; an HRF must peak above 0. "
                         "Check that the array is time x HRFs, not HRFs x time.")
    return a / peak


def check_static_options(params: dict[str, Any] | None) -> dict[str, Any]:
    """Merge ``params`` with the defaults and validate what needs neither data nor timing.

    Names, flags, engine, PC and ridge settings, ``brainthresh``, and that HRF table paths
    exist. Returns the merged options (flags as ints). :func:`resolve_options` starts with
    it; ``GLMsingleDenoiser.check_params`` runs it before any work.
    """
    given = dict(params or {})
    unknown = [k for k in given if k not in DEFAULTS and k not in IGNORED]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(DEFAULTS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ParameterError(f"Unknown GLMsingle option {unknown[0]!r}.{hint} Valid options: "
                             f"{', '.join(sorted(DEFAULTS))}.")
    raw = copy.deepcopy(DEFAULTS)
    raw.update(given)
    for key in ("wantlibrary", "wantglmdenoise", "wantfracridge", "wantpercentbold", "wantlss",
                "wanthdf5", "wantautoscale"):
        if raw[key] not in (0, 1, True, False):
            raise ParameterError(f"{key} must be 0 or 1; got {raw[key]!r}.")
        raw[key] = int(raw[key])
    raw["wantfileoutputs"] = _flags(raw["wantfileoutputs"], "wantfileoutputs")
    raw["wantmemoryoutputs"] = _flags(raw["wantmemoryoutputs"], "wantmemoryoutputs")
    if raw["engine"] not in ("native", "official"):
        raise ParameterError(f"engine must be 'native' or 'official'; got {raw['engine']!r}.")
    if raw["quirks"] not in ("official", "fixed"):
        raise ParameterError(f"quirks must be 'official' or 'fixed'; got {raw['quirks']!r}. "
                             "'official' reproduces the official package's numbers.")
    bt = raw["blas_threads"]
    if bt is not None and (not isinstance(bt, (int, np.integer)) or isinstance(bt, bool) or bt < 1):
        raise ParameterError(f"blas_threads must be a positive int or None (leave BLAS as it is); "
                             f"got {bt!r}.")
    chunk = raw["chunklen"]
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise ParameterError(f"chunklen must be a positive int (units per chunk); got {chunk!r}.")
    n_pcs = raw["n_pcs"]
    if not isinstance(n_pcs, (int, np.integer)) or isinstance(n_pcs, bool) or n_pcs < 0:
        raise ParameterError(f"n_pcs must be an int >= 0; got {n_pcs!r}.")
    pcstop = raw["pcstop"]
    if isinstance(pcstop, (bool, np.bool_)) or not isinstance(pcstop, numbers.Real) \
            or not np.isfinite(pcstop):
        raise ParameterError(f"pcstop must be a number (>= 1: stopping rule; <= 0: use -pcstop PCs); "
                             f"got {pcstop!r}.")
    if pcstop <= 0 and -pcstop > n_pcs:
        raise ParameterError(f"pcstop={pcstop} asks for {-pcstop} PCs but n_pcs is {n_pcs}. "
                             f"Raise n_pcs to at least {-pcstop}.")
    if pcstop <= 0 and float(-pcstop) != int(-pcstop):
        raise ParameterError(f"pcstop <= 0 must be minus a whole number of PCs; got {pcstop!r}.")

    fr = np.linspace(1, 0.05, 20) if raw["fracs"] is None else _floats(raw["fracs"])
    if fr.size == 0 or not np.all(np.isfinite(fr)) or np.any(fr <= 0) or np.any(fr > 1):
        raise ParameterError(f"fracs must be fractions in (0, 1]; got {raw['fracs']!r}. "
                             "Default: numpy.linspace(1, 0.05, 20).")
    bt = _floats(raw["brainthresh"])
    if bt.size != 2 or not (0 <= bt[0] <= 100):
        raise ParameterError(f"brainthresh must be [percentile, fraction]; got {raw['brainthresh']!r}.")
    for key in ("hrftoassume", "hrflibrary"):
        if isinstance(raw[key], (str, Path)) and not Path(raw[key]).is_file():
            load_hrf_table(raw[key])  # raises, naming the file and the fix
    return raw


def _floats(value: Any) -> NDArray[np.float64]:
    """``value`` as a flat float array (NaN when it holds something that is not a number)."""
    try:
        return np.atleast_1d(np.asarray(value, np.float64)).ravel()
    except (TypeError, ValueError):
        return np.array([np.nan])


def resolve_options(params: dict[str, Any] | None, *, stimdur: float, tr: float,
                    n_times: list[int]) -> Options:
    """Merge ``params`` with the defaults and validate everything that does not need the data."""
    from conform_core.hrf import canonical_hrf, hrf_library, resample_hrf

    from ._nuisance import default_maxpolydeg

    raw = check_static_options(params)
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
            raise ParameterError(f"maxpolydeg must be an int >= 0 or one per run ({n_runs}); got "
                                 f"{raw['maxpolydeg']!r}.")
        degs = [int(d) for d in md]
    for r, (d, t) in enumerate(zip(degs, n_times)):
        if d + 1 >= t:
            raise ParameterError(f"Run {r} has {t} time points, too few for polynomial degree {d}. "
                                 "Lower maxpolydeg or drop the run.")

    si = raw["sessionindicator"]
    sess = np.ones(n_runs, np.int64) if si is None else np.atleast_1d(np.asarray(si)).ravel()
    if sess.size != n_runs or np.any(sess < 1) or np.any(sess != np.round(sess)):
        raise ParameterError(f"sessionindicator must hold one positive int per run ({n_runs}); "
                             f"got {si!r}. Example for 2 sessions of 3 runs: [1, 1, 1, 2, 2, 2].")
    sess = sess.astype(np.int64)

    if isinstance(raw["hrftoassume"], (str, Path)):
        hta = resample_hrf(load_hrf_table(raw["hrftoassume"])[:, 0], stimdur, tr)
    elif raw["hrftoassume"] is None:
        hta = canonical_hrf(stimdur, tr)
    else:
        hta = raw["hrftoassume"]
    hrftoassume = _check_hrfs(hta, "hrftoassume", n_cols=1)[:, 0]
    lib = raw["hrflibrary"]
    if isinstance(lib, (str, Path)):
        lib = resample_hrf(load_hrf_table(lib), stimdur, tr)
    elif lib is None:
        lib = hrf_library(stimdur, tr)
    hrflibrary = _check_hrfs(lib, "hrflibrary")
    if not raw["wantlibrary"]:
        hrflibrary = hrftoassume[:, None]
    return Options(raw=raw, hrftoassume=hrftoassume, hrflibrary=hrflibrary, fracs=fracs,
                   maxpolydeg=degs, sessionindicator=sess)
