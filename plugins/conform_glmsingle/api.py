"""Drop-in replacement for ``glmsingle.GLM_single``: same arguments, same output names.

Porting a script means changing one import::

    from conform_glmsingle import GLM_single   # was: from glmsingle.glmsingle import GLM_single
    results = GLM_single(params).fit(design, data, stimdur, tr, outputdir="out")

Differences from the official package (glmsingle.md section 10), all deliberate:

* no directory is ever deleted; ``outputdir=None`` writes no file (the official package then
  writes into ``./GLMestimatesingletrialoutputs`` after deleting it); ``figuredir`` is
  accepted and ignored (no figures);
* bad input raises a :class:`~conform_core.exceptions.ConformError` naming the run and the fix
  before any file is written (instead of truncating mismatched runs or crashing later), and
  an ``outputdir`` that is a file is refused before the fit;
* ``xvalscheme`` may be a list of lists; ``brainexclude`` follows MATLAB (1 = exclude);
  ``wantlibrary=0`` works without requesting type B; the run-wise FIR diagnostic
  (``RUNWISEFIR.npy``) is computed only when ``outputdir`` is given;
* ``params["quirks"] = "fixed"`` includes extra regressors consistently (official: dropped
  from the K = 0 model and a pcnum = 0 fit), gives each run its own nuisance regressors in
  LSS (official: run 0's) and refuses a design without repeats across runs when C or D
  need cross-validation (official: switched off with a warning); the default
  ``"official"`` reproduces the official numbers, warning (``OfficialQuirkWarning``) where
  a quirk changes them;
* ``design`` may also be one event table per run (``onset`` and ``duration`` in seconds,
  ``condition``): onsets anywhere, per-trial durations, regressors built on a fine grid
  (:mod:`._timing`);
* with ``extra_regressors`` every returned type has ``extrabetas``: their coefficients.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.constraints import InstanceOf, validate_params
from conform_core.exceptions import DataFileError, ParameterError, ShapeError

from ._design import TrialLayout, check_design
from ._options import Options, check_options, resolve_options
from ._pipeline import MAX_BLOCK
from ._timing import EventTables, check_tables, is_table_design

__all__ = ["GLM_single", "check_outputdir", "check_timing", "designinfo_params", "prepare_data"]

_FILES = ("TYPEA_ONOFF", "TYPEB_FITHRF", "TYPEC_FITHRF_GLMDENOISE", "TYPED_FITHRF_GLMDENOISE_RR")
_KEYS = ("typea", "typeb", "typec", "typed")


def prepare_data(data: Any) -> tuple[list[NDArray[np.float32]], tuple[int, ...], bool]:
    """Flatten runs to ``units x time`` float32; return (runs, spatial shape, is_volume).

    Raises
    ------
    ShapeError
        For 3-D runs, runs whose spatial shapes differ, empty runs or non-finite values.
    """
    runs = list(data) if isinstance(data, (list, tuple)) else [data]
    if not runs:
        raise ShapeError(
            "data is empty. Pass one array per run (units x time or X x Y x Z x time)."
        )
    out = []
    shape0: tuple[int, ...] | None = None
    for i, run in enumerate(runs):
        arr = np.asarray(run)
        if arr.ndim == 3:
            raise ShapeError(
                f"data[{i}] has shape {arr.shape}: 3-D runs are ambiguous. Pass units x time, or "
                "X x Y x Z x time (for a single slice add an axis: data[..., None, :])."
            )
        if arr.ndim not in (2, 4) or arr.shape[-1] < 2 or arr.size == 0:
            raise ShapeError(
                f"data[{i}] must be units x time or X x Y x Z x time; got shape {arr.shape}."
            )
        if shape0 is None:
            shape0 = arr.shape[:-1]
        elif arr.shape[:-1] != shape0:
            raise ShapeError(
                f"data[{i}] has spatial shape {arr.shape[:-1]} but data[0] has "
                f"{shape0}. Every run must cover the same units in the same order."
            )
        flat = np.asarray(arr.reshape(-1, arr.shape[-1]), dtype=np.float32)
        finite = np.isfinite(flat)
        if not finite.all():
            n_bad = int((~finite).sum())
            unit = int(np.argwhere(~finite)[0][0])
            raise ShapeError(
                f"data[{i}] (run {i}) has {n_bad} NaN/Inf value(s), first in unit {unit}. Replace "
                "them (e.g. set units lacking full data to 0 in every run and mask them afterwards)."
            )
        out.append(flat)
    assert shape0 is not None
    return out, tuple(shape0), len(shape0) == 3


def check_timing(stimdur: Any, tr: Any, n_times: list[int]) -> tuple[float, float]:
    """Validate ``stimdur`` and ``tr`` (seconds) against the run lengths."""
    try:
        sd, t = float(stimdur), float(tr)
    except (TypeError, ValueError):
        raise ParameterError(
            f"stimdur and tr must be numbers of seconds; got stimdur={stimdur!r}, tr={tr!r}."
        ) from None
    if not math.isfinite(t) or t <= 0 or t > 30:
        raise ParameterError(
            f"tr must be the sampling interval in seconds, in (0, 30]; got {tr!r}. "
            "Pass the repetition time of the data, e.g. tr=1.6."
        )
    shortest = min(n_times) * t
    if not math.isfinite(sd) or sd < 0 or sd >= shortest:
        raise ParameterError(
            f"stimdur must be >= 0 s and shorter than the shortest run "
            f"({shortest:g} s); got {stimdur!r}. Pass the expected duration of "
            "neural activity per trial in seconds, e.g. stimdur=3."
        )
    return sd, t


def _shape_outputs(res: dict[str, Any], spatial: tuple[int, ...], volume: bool) -> dict[str, Any]:
    sp = spatial if volume else (spatial[0], 1, 1)
    # extrabetas: units first for 2-D data (V x k), X x Y x Z x k for volumes
    sp_extra = spatial if volume else (spatial[0],)
    per_unit = {
        "onoffR2",
        "meanvol",
        "betasmd",
        "FitHRFR2",
        "FitHRFR2run",
        "HRFindex",
        "HRFindexrun",
        "R2",
        "R2run",
        "noisepool",
        "pcvoxels",
        "glmbadness",
        "rrbadness",
        "FRACvalue",
        "scaleoffset",
    }
    out: dict[str, Any] = {}
    for key, val in res.items():
        if key in per_unit and isinstance(val, np.ndarray) and val.ndim >= 1 and val.size:
            out[key] = val.reshape(sp + val.shape[1:])
        elif key == "extrabetas":
            out[key] = [b.reshape(sp_extra + b.shape[1:]) for b in val]
        else:
            out[key] = val
    return out


def check_outputdir(outputdir: str | Path | None) -> Path | None:
    """Check that ``outputdir`` can be a folder of outputs, before any work; return it.

    It may exist (as a folder: nothing in it is deleted) or not (it is created, with its
    missing parents, when the outputs are written).

    Raises
    ------
    DataFileError
        If it, or the nearest existing folder above it, is a file, or that folder cannot be
        written.
    """
    import os

    if outputdir is None:
        return None
    path = Path(outputdir)
    if path.exists() and not path.is_dir():
        raise DataFileError(
            f"outputdir {str(path)!r} is an existing file, not a folder; nothing was fitted. "
            "Pass the path of a folder (created if needed; nothing in it is deleted), e.g. "
            "outputdir='glmsingle_out', or move the file away.")
    above = path
    while not above.exists() and above != above.parent:
        above = above.parent
    if above.exists() and not above.is_dir():
        raise DataFileError(
            f"outputdir {str(path)!r} cannot be created: {str(above)!r} is a file, not a "
            "folder; nothing was fitted. Pass a path under an existing folder.")
    if above.exists() and not os.access(above, os.W_OK | os.X_OK):
        raise DataFileError(
            f"outputdir {str(path)!r} cannot be written: no permission to write in "
            f"{str(above)!r}; nothing was fitted. Choose a folder you can write to.")
    return path


def designinfo_params(params: dict[str, Any], opts: Options, n_runs: int) -> dict[str, Any]:
    """Return the resolved options, as the official ``DESIGNINFO['params']`` holds them.

    The user's options merged with the defaults (the official-only options that GLM_single
    never uses included), with ``xvalscheme``, ``sessionindicator``, ``maxpolydeg`` (one per
    run), ``hrftoassume`` and ``hrflibrary`` (sampled at the TR, peak 1; the assumed HRF
    when ``wantlibrary=0``), ``fracs`` (unique, descending), ``extra_regressors`` (a list)
    and the flags switched off for a design without repeats. ``brainR2`` and ``pcR2cutoff``
    stay as given ([] = automatic: the official file is written before they are set; the
    values used are in ``GLM_single.thresholds_``). conform's own options (``quirks``,
    ``engine``, ...) are kept.
    """
    from ._options import OFFICIAL_UNUSED

    out: dict[str, Any] = {**OFFICIAL_UNUSED, **opts.raw}
    if out["xvalscheme"] is None:
        out["xvalscheme"] = np.arange(n_runs)
    if out["sessionindicator"] is None:
        out["sessionindicator"] = np.ones((1, n_runs), dtype=int)
    out["maxpolydeg"] = list(opts.maxpolydeg)
    out["hrftoassume"] = np.asarray(opts.hrftoassume, np.float32)
    out["hrflibrary"] = np.asarray(opts.hrflibrary, np.float32)
    out["fracs"] = np.asarray(opts.fracs)
    er = out["extra_regressors"]
    out["extra_regressors"] = list(er) if isinstance(er, (list, tuple)) else [er]
    if not isinstance(out["random_state"], (int, np.integer, type(None))):
        out["random_state"] = repr(out["random_state"])  # a RandomState: not storable as is
    for key in ("hrftoassume", "hrflibrary"):
        if isinstance(params.get(key), (str, Path)):
            out[f"{key}_file"] = str(params[key])
    return out


def _onset_matrices(layout: TrialLayout) -> list[NDArray[np.float64]]:
    """0/1 matrices of an event-table design with onsets rounded to the nearest volume."""
    out = []
    for ons, cols, n_t in zip(layout.onsets, layout.validcolumns, layout.n_times):
        m = np.zeros((n_t, layout.n_conditions))
        m[ons, layout.stimorder[cols]] = 1.0
        out.append(m)
    return out


def _write_runwisefir(
    outputdir: Path,
    runs: list[NDArray[np.float32]],
    ctx: Any,
    tr: float,
    opts: Any,
    spatial: tuple[int, ...],
    volume: bool,
) -> Path:
    """Compute the run-wise FIR diagnostic and save ``RUNWISEFIR.npy`` (official shapes)."""
    from ._fir import runwise_fir
    from ._io import save_output

    fir = runwise_fir(
        runs,
        ctx.layout.onsets,
        tr,
        opts.maxpolydeg,
        ctx.extras,
        firdelay=float(opts["firdelay"]),
        firpct=float(opts["firpct"]),
        wantpercentbold=bool(opts["wantpercentbold"]),
        quirks=opts["quirks"],
        block=max(1, min(int(opts["chunklen"]), MAX_BLOCK)),
    )
    sp = spatial if volume else (spatial[0], 1, 1)
    n_runs, n_lags = fir["firavg"].shape
    out = {
        "firR2": fir["firR2"].astype(np.float32).reshape((n_runs, *sp)),
        "firtcs": fir["firtcs"].astype(np.float32).reshape((n_runs, *sp, 1, n_lags)),
        "firavg": fir["firavg"],
        "firgrandavg": fir["firgrandavg"],
    }
    return save_output(outputdir, "RUNWISEFIR", out, opts["outputformat"] or "npy-pickle")


class GLM_single:
    """Single-trial GLM (types A-D), a drop-in for the official ``GLM_single``.

    Parameters
    ----------
    params : dict or None, default=None
        Official option names and defaults (see ``DEFAULTS``), plus ``engine``
        ({"native", "official"}), ``verbose``, ``quirks`` ({"official", "fixed"}) and
        ``random_state`` (seed of the GMM behind the automatic R² threshold; 0 reproduces the
        official package run after ``numpy.random.seed(0)``) and ``blas_threads`` (BLAS threads
        during the fit, default 1: faster than 2 for these matrix sizes; None leaves BLAS as is).
        ``engine="official"`` runs the official ``glmsingle`` package when it is installed
        (for comparison; conform never installs it) in a private temporary folder, without
        figures, with numpy seeded by ``random_state`` (None: not seeded) and BLAS pinned to
        ``blas_threads``; ``quirks`` does not apply to it.

    Attributes
    ----------
    written_ : list of Path
        Files written into ``outputdir`` by the last ``fit``.
    timings_ : dict
        Seconds per stage of the last ``fit`` (``{"total": ...}`` for the official engine).

    Raises
    ------
    ParameterError
        For an unknown option name (with the closest valid one) or a bad value
        (``OPTION_CONSTRAINTS`` in ``conform_glmsingle._options`` declares them).
    DataFileError
        For an HRF table path that does not exist.
    """

    @validate_params(
        {"params": [InstanceOf(dict, "a dict of GLMsingle options"), None]},
        fixes={"params": "Pass e.g. {'wantlibrary': 0, 'n_pcs': 5}."},
        owner="GLM_single",
    )
    def __init__(self, params: dict[str, Any] | None = None) -> None:
        check_options(params)
        self.params = dict(params or {})

    def fit(
        self,
        design: Any,
        data: Any,
        stimdur: float | None,
        tr: float,
        outputdir: str | Path | None = None,
        figuredir: str | Path | None = None,
        *,
        _force: dict[str, Any] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Fit GLMsingle and return ``{'typea': ..., 'typeb': ..., 'typec': ..., 'typed': ...}``.

        Parameters
        ----------
        design : ndarray or list of ndarray of shape (T_r, n_conditions), or event tables
            0/1 onset matrices, one per run (scipy.sparse accepted); or one event table per
            run (pandas DataFrame or dict of arrays) with ``onset`` and ``duration`` in
            seconds and ``condition`` (conditions = the sorted unique labels): onsets
            anywhere, each trial its own duration (see ``docs/glmsingle.md``, "Timing").
            Trials are ordered by onset within each run (stable), runs in order.
        data : ndarray or list of ndarray of shape (n_units, T_r) or (X, Y, Z, T_r)
            Time series, one array per run.
        stimdur : float or None
            Duration of neural activity per trial, in seconds. With event tables, the
            duration the HRFs are scaled for (a trial that long on the TR grid gets the
            matrix design's regressor); None takes the median duration.
        tr : float
            Sampling interval of data and design, in seconds.
        outputdir : path-like or None, default=None
            Folder for the official output files (created if needed, never emptied). None
            writes nothing.
        figuredir : path-like or None, default=None
            Accepted for compatibility; no figures are made.

        Returns
        -------
        dict
            The types requested in ``wantmemoryoutputs``, each a dict with the official keys
            and shapes (``V x 1 x 1 x ...`` for 2-D input, ``X x Y x Z x ...`` for volumes).
            With ``extra_regressors`` (native engine) each type also has ``extrabetas``:
            per run, the extra regressors' coefficients in that type's final model
            (``V x k`` for 2-D input, ``X x Y x Z x k`` for volumes; percent signal change
            per regressor unit when ``wantpercentbold``, else data units; NaN where the
            model left them out).

        Raises
        ------
        ShapeError, ParameterError
            For inconsistent runs, bad designs, non-finite data, nonsense stimdur/tr, too few
            runs or repeats for cross-validation (``quirks="fixed"``; ``"official"`` then
            leaves types C and D out with an ``OfficialQuirkWarning``, as the official
            package), or an HRF library of the wrong shape; raised before any file is written.
        DataFileError
            If ``outputdir`` is a file (or lies under one) or cannot be written; checked first.
        """
        check_outputdir(outputdir)
        runs, spatial, volume = prepare_data(data)
        n_times = [r.shape[1] for r in runs]
        tables = None
        if is_table_design(design):
            _, t = check_timing(0.0 if stimdur is None else stimdur, tr, n_times)
            tables = check_tables(design, len(runs), n_times, t)
            if stimdur is None:
                stimdur = tables.median_duration()
            sd, t = check_timing(stimdur, tr, n_times)
            grid = tables.on_grid_matrices(sd, t, n_times)
            design_runs: Any = tables if grid is None else check_design(grid, len(runs), n_times)
        else:
            design_runs = check_design(design, len(runs), n_times)
            sd, t = check_timing(stimdur, tr, n_times)
        timed = isinstance(design_runs, EventTables)
        opts = resolve_options(self.params, stimdur=sd, tr=t, n_times=n_times)
        if timed and opts["engine"] == "official":
            raise ParameterError(
                "engine='official' needs onsets on the TR grid with every duration equal to "
                "stimdur; these event tables are not. Use the native engine (the default)."
            )
        if opts["engine"] == "official":
            from ._official import fit_official

            if _force is not None:
                raise ParameterError("Forced choices (_force) need engine='native'.")
            res, info = fit_official(
                self.params, opts, design_runs, runs, spatial, volume, sd, t, outputdir
            )
            self.written_ = info["written"]
            self.timings_ = info["timings"]
            self.thresholds_ = {}
            self.official_version_ = info["version"]
            return res
        from ._native import fit_native

        flat, ctx = fit_native(runs, design_runs, t, opts, force=_force, stimdur=sd)
        self.written_: list[Path] = []
        self.timings_ = dict(ctx.timings)
        self.thresholds_ = dict(ctx.thresholds)
        shaped = {k: _shape_outputs(v, spatial, volume) for k, v in flat.items()}
        if outputdir is not None:
            from ._io import write_outputs

            info = {
                "design": _onset_matrices(ctx.layout) if timed else design_runs,
                "stimdur": sd,
                "tr": t,
                "params": designinfo_params(self.params, opts, len(runs)),
                "designSINGLE": ctx.layout.design_single(),
                "stimorder": ctx.layout.stimorder.tolist(),
                "numtrialrun": ctx.layout.numtrialrun,
                "condcounts": ctx.layout.condcounts,
                "condinruns": ctx.layout.condinruns,
                "endbuffers": ctx.layout.endbuffers,
            }
            if timed:
                info["onsets_s"] = ctx.layout.onset_s
                info["durations_s"] = ctx.layout.duration_s
            files = {
                f: shaped[k]
                for f, k, w in zip(_FILES, _KEYS, opts["wantfileoutputs"])
                if w and k in shaped
            }
            self.written_ = write_outputs(Path(outputdir), files, info, hdf5=bool(opts["wanthdf5"]),
                                          fmt=opts["outputformat"])
            self.written_.append(
                _write_runwisefir(Path(outputdir), runs, ctx, t, opts, spatial, volume)
            )
        return {k: shaped[k] for k, w in zip(_KEYS, opts["wantmemoryoutputs"]) if w and k in shaped}
