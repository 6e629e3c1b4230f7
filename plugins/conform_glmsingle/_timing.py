"""Event-table designs: onsets in seconds anywhere, per-trial durations, fine-grid regressors.

``GLM_single.fit`` also accepts, instead of 0/1 onset matrices, one event table per run
(a pandas DataFrame or a dict of arrays with ``onset`` and ``duration`` in seconds and
``condition``). Trial regressors are then built on a fine grid of ``dt`` seconds (0.1 s, or
``tr / ceil(tr / 0.1)`` when the TR is not a multiple of 0.1 s, so that every volume time
is a grid point):

* each trial is a boxcar from its onset to onset + duration, each fine sample weighted by
  the fraction of it the trial covers (durations shorter than ``dt`` count as ``dt``, as
  GLMsingle treats ``stimdur=0``);
* the boxcar is convolved with each HRF's impulse response at ``dt`` (the library's 0.1-s
  impulse responses, :func:`conform_core.hrf.library_fine` / :func:`~conform_core.hrf.canonical_fine`,
  or a 0.1-s table given as a path, PCHIP-resampled when ``dt`` is not 0.1 s) and sampled at
  the volume times ``0, tr, 2 tr, ...``;
* each HRF is divided by the TR-sampled peak of its response to a ``stimdur`` boxcar at
  onset 0, so a trial of duration ``stimdur`` on the TR grid peaks at 1 as in the matrix
  design, and gets the same regressor (to the float32 rounding of the official HRF
  resampling) when ``stimdur`` and the TR are multiples of 0.1 s (otherwise within 2 % of
  the peak: the official resampling rounds ``stimdur`` to 0.1 s and interpolates after
  convolving); longer trials get larger regressors, shorter ones smaller.

Tables whose onsets all lie on the TR grid (within 1 ms), one per TR, with every duration
equal to ``stimdur`` (within 1 ms) are turned into onset matrices instead and take the
matrix code path unchanged (bit-identical results).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError, ShapeError

__all__ = [
    "COLUMNS",
    "EventTables",
    "FineHRFs",
    "events_design",
    "fine_step",
    "is_table_design",
    "timed_regressors",
]

#: Columns every event table needs.
COLUMNS = ("onset", "duration", "condition")

#: Onsets within this many seconds of a volume time, and durations within this many seconds
#: of ``stimdur``, count as "on the grid" / "equal to stimdur".
GRID_TOLERANCE = 1e-3


def is_table_design(design: object) -> bool:
    """Return whether ``design`` is an event table or a list of them (not onset matrices)."""
    first = design[0] if isinstance(design, (list, tuple)) and design else design
    return _is_table(first)


def _is_table(obj: object) -> bool:
    return isinstance(obj, Mapping) or (hasattr(obj, "columns") and hasattr(obj, "__getitem__")
                                        and not hasattr(obj, "toarray"))


def _column_names(table: Any) -> list[str]:
    names = table.keys() if isinstance(table, Mapping) else table.columns
    return [str(n) for n in names]


@dataclass(frozen=True)
class EventTables:
    """Validated event tables, each run sorted by onset (stable).

    Attributes
    ----------
    onsets, durations : list of ndarray of shape (n_r,)
        Seconds from the first volume; durations as given (>= 0).
    conds : list of ndarray of shape (n_r,), int
        Condition index of each trial (into ``conditions``).
    conditions : ndarray of shape (n_conditions,)
        The sorted unique condition labels.
    """

    onsets: list[NDArray[np.float64]]
    durations: list[NDArray[np.float64]]
    conds: list[NDArray[np.int64]]
    conditions: NDArray[Any]

    @property
    def n_runs(self) -> int:
        return len(self.onsets)

    @property
    def all_durations(self) -> NDArray[np.float64]:
        return np.concatenate(self.durations)

    def median_duration(self) -> float:
        """Return the median duration over all trials (the default ``stimdur`` with tables)."""
        return float(np.median(self.all_durations))

    def on_grid_matrices(self, stimdur: float, tr: float,
                         n_times: list[int]) -> list[NDArray[np.float64]] | None:
        """Return 0/1 onset matrices when the tables fit the matrix design exactly, else None.

        Exact fit: every onset within :data:`GRID_TOLERANCE` of a volume time, at most one
        onset per volume in a run, every duration within the tolerance of ``stimdur``.
        """
        if np.any(np.abs(self.all_durations - stimdur) > GRID_TOLERANCE):
            return None
        out = []
        for ons, cond, n_t in zip(self.onsets, self.conds, n_times):
            idx = np.round(ons / tr).astype(np.int64)
            if np.any(np.abs(ons - idx * tr) > GRID_TOLERANCE) or np.any(idx >= n_t):
                return None
            if np.unique(idx).size != idx.size:
                return None
            m = np.zeros((n_t, self.conditions.size))
            m[idx, cond] = 1.0
            out.append(m)
        return out

    def as_dicts(self) -> list[dict[str, NDArray[Any]]]:
        """Return the tables as dicts of arrays (``onset``, ``duration``, ``condition`` labels)."""
        return [{"onset": o.copy(), "duration": d.copy(), "condition": self.conditions[c]}
                for o, d, c in zip(self.onsets, self.durations, self.conds)]


def check_tables(design: Any, n_runs: int, n_times: list[int], tr: float) -> EventTables:
    """Validate event tables against the runs; return them sorted by onset within each run.

    Parameters
    ----------
    design : DataFrame or dict, or list of them
        One table per run with ``onset`` (s), ``duration`` (s) and ``condition`` columns.
    n_runs : int
        Number of data runs.
    n_times : list of int
        Volumes per run.
    tr : float
        Seconds per volume.

    Returns
    -------
    EventTables

    Raises
    ------
    ShapeError
        For a wrong number of tables, a missing column, columns of different lengths or a
        run without trials.
    ParameterError
        For non-finite values, a negative duration, an onset before 0 or at/after the end of
        its run, two trials of a run starting at the same time, or conditions that cannot be
        sorted.
    """
    tables = list(design) if isinstance(design, (list, tuple)) else [design]
    if len(tables) != n_runs:
        raise ShapeError(
            f"design has {len(tables)} event table(s) but data has {n_runs} run(s). Pass one "
            "table (onset, duration, condition) per data run, in the same order."
        )
    raw: list[tuple[NDArray[np.float64], NDArray[np.float64], NDArray[Any]]] = []
    for r, table in enumerate(tables):
        if not _is_table(table):
            raise ShapeError(
                f"design[{r}] is not an event table (got {type(table).__name__}); every run needs "
                "a pandas DataFrame or a dict with 'onset', 'duration' and 'condition' columns "
                "(do not mix tables and onset matrices)."
            )
        names = _column_names(table)
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ShapeError(
                f"Event table of run {r} has no {', '.join(repr(m) for m in missing)} column "
                f"(columns: {names}). Each table needs onset (s), duration (s) and condition; "
                "rename your stimulus column (e.g. trial_type) to 'condition'."
            )
        try:
            ons = np.asarray(table["onset"], np.float64).ravel()
            dur = np.asarray(table["duration"], np.float64).ravel()
        except (TypeError, ValueError):
            raise ParameterError(
                f"Run {r}: onset and duration must be numbers of seconds. Convert the columns "
                "(e.g. replace 'n/a' by a duration) before fitting."
            ) from None
        cond = np.asarray(table["condition"]).ravel()
        if not ons.size == dur.size == cond.size:
            raise ShapeError(
                f"Event table of run {r} has columns of different lengths (onset {ons.size}, "
                f"duration {dur.size}, condition {cond.size}). Give every trial all three."
            )
        if ons.size == 0:
            raise ShapeError(
                f"Event table of run {r} has no trial. Drop run {r} (from both data and design) "
                "or add its events."
            )
        for name, vals in (("onset", ons), ("duration", dur)):
            if not np.all(np.isfinite(vals)):
                i = int(np.flatnonzero(~np.isfinite(vals))[0])
                raise ParameterError(
                    f"Run {r}, trial {i}: {name} is {float(vals[i])}; onsets and durations must be "
                    "finite seconds."
                )
        if np.any(dur < 0):
            i = int(np.flatnonzero(dur < 0)[0])
            raise ParameterError(
                f"Run {r}, trial {i}: duration {dur[i]:g} s is negative. Durations are seconds "
                ">= 0 (0 means a brief event)."
            )
        end = n_times[r] * tr
        bad = (ons < 0) | (ons >= end)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ParameterError(
                f"Run {r}, trial {i}: onset {ons[i]:g} s lies outside the run (0 to {end:g} s: "
                f"{n_times[r]} volumes of {tr:g} s). Check the TR and run {r}'s events, and "
                "that onsets count from the first volume."
            )
        order = np.argsort(ons, kind="stable")
        ons, dur, cond = ons[order], dur[order], cond[order]
        close = np.flatnonzero(np.diff(ons) < GRID_TOLERANCE)
        if close.size:
            i = int(close[0])
            raise ParameterError(
                f"Run {r}: two trials start at {ons[i]:g} s. GLMsingle estimates one beta per "
                "trial and cannot separate simultaneous trials: merge them into one event or "
                "drop one."
            )
        raw.append((ons, dur, cond))
    try:
        conditions = np.unique(np.concatenate([c for _, _, c in raw]))
    except TypeError:
        raise ParameterError(
            "Event-table conditions cannot be sorted (mixed types?). Use labels of one type, "
            "e.g. all strings."
        ) from None
    conds = [np.searchsorted(conditions, c).astype(np.int64) for _, _, c in raw]
    return EventTables(onsets=[o for o, _, _ in raw], durations=[d for _, d, _ in raw],
                       conds=conds, conditions=conditions)


def events_design(
    onsets: Sequence[Any],
    durations: Sequence[Any],
    ids: Sequence[Any],
    n_times: Sequence[int],
    tr: float,
) -> tuple[list[dict[str, NDArray[Any]]], NDArray[np.str_]]:
    """Turn per-run onsets, durations and stimulus ids into an event-table design.

    The result is what :meth:`GLM_single.fit <conform_glmsingle.GLM_single.fit>` takes as
    ``design`` for onsets anywhere in seconds and per-trial durations (no TR grid needed).

    Parameters
    ----------
    onsets, durations : list of array-like of shape (n_r,)
        Per run, each event's onset and duration in seconds (onsets from the first volume).
    ids : list of array-like of shape (n_r,)
        Per run, each event's stimulus id (converted to str); each distinct id is a condition.
    n_times : list of int
        Volumes per run.
    tr : float
        Seconds per volume.

    Returns
    -------
    tables : list of dict
        Per run, ``{"onset", "duration", "condition"}`` arrays sorted by onset (stable). The
        betas GLMsingle returns follow this order, run after run.
    conditions : ndarray of str
        Sorted unique ids: the condition order (``np.searchsorted(conditions, condition)``
        is a trial's condition index).

    Raises
    ------
    ShapeError, ParameterError
        For runs without events, lists or columns of different lengths, non-finite values,
        negative durations, onsets outside their run or simultaneous trials; each names the
        run and the fix.

    Examples
    --------
    >>> tables, conds = events_design([[0.0, 7.3]], [[2.0, 2.5]], [["a", "b"]], [40], 1.5)
    >>> tables[0]["onset"].tolist(), conds.tolist()
    ([0.0, 7.3], ['a', 'b'])
    """
    n_runs = len(n_times)
    for name, seq in (("onsets", onsets), ("durations", durations), ("ids", ids)):
        if len(seq) != n_runs:
            raise ShapeError(f"{name} has {len(seq)} run(s) but n_times has {n_runs}. Pass one "
                             "array per run, in run order.")
    try:
        t = float(tr)
    except (TypeError, ValueError):
        t = math.nan
    if not math.isfinite(t) or t <= 0:
        raise ParameterError(f"tr must be a positive number of seconds; got {tr!r}.")
    given = [{"onset": np.asarray(o, np.float64), "duration": np.asarray(d, np.float64),
              "condition": np.asarray(i).astype(str)}
             for o, d, i in zip(onsets, durations, ids)]
    ev = check_tables(given, n_runs, [int(n) for n in n_times], t)
    return ev.as_dicts(), ev.conditions.astype(str)


def fine_step(tr: float) -> tuple[float, int]:
    """Return the fine grid step ``dt`` (s) and the number of steps per TR.

    ``dt = tr / ceil(tr / 0.1)``: 0.1 s when the TR is a multiple of 0.1 s, finer otherwise,
    so volume times fall on grid points.
    """
    n = max(1, math.ceil(tr / 0.1 - 1e-9))
    return tr / n, n


def _at_step(fine: NDArray[np.float64], dt: float) -> NDArray[np.float64]:
    """Impulse responses given every 0.1 s, resampled (PCHIP) to ``dt``."""
    from conform_core.hrf import FINE_DT

    if abs(dt - FINE_DT) < 1e-12:
        return fine
    from scipy.interpolate import PchipInterpolator

    t_in = np.arange(fine.shape[0]) * FINE_DT
    t_out = np.arange(math.floor(t_in[-1] / dt + 1e-9) + 1) * dt
    return PchipInterpolator(t_in, fine, axis=0)(t_out) * (dt / FINE_DT)


def _boxcar(onset: float, duration: float, dt: float) -> tuple[int, NDArray[np.float64]]:
    """First fine index and weights of the boxcar [onset, onset + max(duration, dt))."""
    a = onset / dt
    b = (onset + max(duration, dt)) / dt
    a = round(a) if abs(a - round(a)) < 1e-6 else a
    b = round(b) if abs(b - round(b)) < 1e-6 else b
    j0, j1 = math.floor(a), math.ceil(b)
    j = np.arange(j0, j1)
    w = np.clip(np.minimum(b, j + 1) - np.maximum(a, j), 0.0, 1.0)
    return j0, w


@dataclass(frozen=True)
class FineHRFs:
    """Impulse responses on the fine grid, scaled for ``stimdur`` (see the module docstring).

    Attributes
    ----------
    h : ndarray of shape (L, n_hrfs)
        Scaled impulse responses at ``dt``.
    dt : float
        Fine step (s).
    steps : int
        Fine steps per TR.
    """

    h: NDArray[np.float64]
    dt: float
    steps: int

    @classmethod
    def build(cls, fine_01: NDArray[np.floating], stimdur: float, tr: float) -> FineHRFs:
        """Resample 0.1-s impulse responses to the fine step and scale them for ``stimdur``.

        Raises
        ------
        ParameterError
            If an HRF's response to a ``stimdur`` boxcar has no positive sample at the TR.
        """
        arr = np.asarray(fine_01, np.float64)
        arr = arr[:, None] if arr.ndim == 1 else arr
        dt, steps = fine_step(tr)
        h = _at_step(arr, dt)
        _, box = _boxcar(0.0, stimdur, dt)  # the boxcar a trial of duration stimdur gets
        ref = np.stack([np.convolve(h[:, j], box) for j in range(h.shape[1])], axis=1)
        peak = ref[::steps].max(axis=0)
        if np.any(peak <= 0):
            raise ParameterError(
                f"tr={tr!r} s is too coarse to sample the HRF (a column has no positive sample). "
                "Use a TR below about 10 s."
            )
        return cls(h=h / peak, dt=dt, steps=steps)


def timed_regressors(onsets: NDArray[np.float64], durations: NDArray[np.float64], n_time: int,
                     hrfs: FineHRFs) -> NDArray[np.float64]:
    """Return one run's trial regressors for every HRF, sampled at the volume times.

    Parameters
    ----------
    onsets, durations : ndarray of shape (n_r,)
        Seconds.
    n_time : int
        Volumes in the run.
    hrfs : FineHRFs
        Scaled impulse responses on the fine grid.

    Returns
    -------
    ndarray of shape (n_hrfs, n_time, n_r)
        Causal responses, truncated at the end of the run.
    """
    h, steps = hrfs.h, hrfs.steps
    length, n_h = h.shape
    out = np.zeros((n_h, n_time, onsets.size))
    for i, (o, d) in enumerate(zip(onsets, durations)):
        j0, w = _boxcar(float(o), float(d), hrfs.dt)
        k_first = -(-j0 // steps)  # ceil
        k_last = min(n_time - 1, (j0 + w.size - 1 + length - 1) // steps)
        if k_last < k_first:
            continue
        k = np.arange(k_first, k_last + 1)
        lag = k[:, None] * steps - (j0 + np.arange(w.size))[None, :]  # (n_k, m)
        valid = (lag >= 0) & (lag < length)
        vals = h[np.clip(lag, 0, length - 1)] * (w[None, :] * valid)[:, :, None]  # (n_k, m, H)
        out[:, k, i] = vals.sum(axis=1).T
    return out


def fine_impulse_responses(raw: Mapping[str, Any]) -> tuple[NDArray[np.float64],
                                                            NDArray[np.float64]]:
    """Return the 0.1-s impulse responses (library, assumed HRF) for an event-table design.

    ``hrflibrary`` / ``hrftoassume``: None uses :func:`conform_core.hrf.library_fine` /
    :func:`~conform_core.hrf.canonical_fine`; a path loads a 0.1-s table. With
    ``wantlibrary=0`` the library is the assumed HRF.

    Raises
    ------
    ParameterError
        For an HRF given as an array sampled at the TR (it cannot be placed off the grid).
    """
    from conform_core.hrf import canonical_fine, library_fine

    from ._options import load_hrf_table

    def get(key: str, default: NDArray[np.float64]) -> NDArray[np.float64]:
        val = raw[key]
        if val is None:
            return default
        if isinstance(val, (str, os.PathLike)):
            return load_hrf_table(os.fspath(val))
        raise ParameterError(
            f"{key} was given as an array sampled at the TR, which cannot be shifted to onsets "
            "off the TR grid or to other durations. With event tables pass the path of a "
            "0.1-s impulse-response table (time x HRFs) or None for the built-in HRFs."
        )

    assumed = get("hrftoassume", canonical_fine()[:, None])
    assumed = assumed[:, :1] if assumed.ndim == 2 else assumed[:, None]
    library = get("hrflibrary", library_fine()) if raw["wantlibrary"] else assumed
    library = library[:, None] if library.ndim == 1 else library
    return library, assumed
