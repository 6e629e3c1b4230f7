"""Design handling: validation, single-trial expansion, bookkeeping, convolution.

GLMsingle's single-trial design is block diagonal across runs: each trial's regressor lives
in its own run only. We never build the (sum of T) x (n_trials) matrix; every run keeps its
own ``T_r x n_r`` block (glmsingle.md sections 4.2 and 4.3).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ConformWarning, ParameterError, ShapeError

__all__ = ["TrialLayout", "build_layout", "check_design", "convolve_runs", "window_index"]

if TYPE_CHECKING:
    from ._timing import EventTables, FineHRFs


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_design(design: object, n_runs: int, n_times: list[int]) -> list[NDArray[np.float64]]:
    """Validate the per-run 0/1 onset matrices against the data runs.

    Parameters
    ----------
    design : ndarray or sparse matrix or list of them
        One ``T_r x n_conditions`` matrix per run (a single matrix is one run).
    n_runs : int
        Number of data runs.
    n_times : list of int
        Number of time points of each data run.

    Returns
    -------
    list of ndarray of shape (T_r, n_conditions)
        Dense float64 copies.

    Raises
    ------
    ShapeError
        If a run count, a length, the number of conditions or a value is wrong, if two
        conditions start on the same TR, if a run has no trial or if a condition never occurs.
    """
    runs = design if isinstance(design, (list, tuple)) else [design]
    if len(runs) != n_runs:
        raise ShapeError(
            f"design has {len(runs)} run(s) but data has {n_runs}. Pass one design matrix "
            "(time x conditions) per data run, in the same order."
        )
    out: list[NDArray[np.float64]] = []
    n_cond = None
    for i, run in enumerate(runs):
        if hasattr(run, "toarray"):
            run = run.toarray()
        arr = np.asarray(run)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ShapeError(
                f"design[{i}] must be a 2-D matrix (time x conditions); got {_describe(arr)}. "
                "Mark each trial onset with a 1 in its condition's column."
            )
        if n_cond is None:
            n_cond = arr.shape[1]
        elif arr.shape[1] != n_cond:
            raise ShapeError(
                f"design[{i}] has {arr.shape[1]} conditions but design[0] has {n_cond}. All "
                "runs need the same condition columns (a condition may be absent from a run)."
            )
        if arr.shape[0] != n_times[i]:
            raise ShapeError(
                f"Run {i}: design has {arr.shape[0]} time points but data has {n_times[i]}. "
                "Trim or pad the design (or the data) so that both have one row per volume."
            )
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ShapeError(f"design[{i}] must be numeric 0/1; got dtype {arr.dtype}.") from None
        bad = ~np.isin(arr, (0.0, 1.0))
        if bad.any():
            t, c = np.argwhere(bad)[0]
            raise ShapeError(
                f"design[{i}] must contain only 0s and 1s; got {arr[t, c]!r} at time {t}, "
                f"condition {c}. Put a 1 at each trial's onset TR and 0 elsewhere."
            )
        per_tr = arr.sum(axis=1)
        if per_tr.max() > 1:
            t = int(np.argmax(per_tr > 1))
            raise ShapeError(
                f"design[{i}] has {int(per_tr[t])} conditions starting on time point {t}; "
                "GLMsingle allows one onset per TR. Resample the data to a finer TR or move one "
                "of the onsets."
            )
        if per_tr.sum() == 0:
            raise ShapeError(
                f"design[{i}] has no trial. Drop run {i} (from both data and design) or "
                "add its trial onsets."
            )
        if per_tr.min() == 1:
            raise ShapeError(
                f"design[{i}] has a trial onset on every time point; GLMsingle needs some "
                "empty TRs. Do not code blank or fixation periods as conditions."
            )
        out.append(arr)
    total = np.sum([a.sum(axis=0) for a in out], axis=0)
    never = np.flatnonzero(total == 0)
    if never.size:
        raise ShapeError(
            f"Condition(s) {never[:10].tolist()} never occur in any run ({never.size} in all). "
            "Remove those columns from every run's design matrix."
        )
    return out


@dataclass
class TrialLayout:
    """Bookkeeping of the single-trial design (chronological, run-major trial order).

    Attributes
    ----------
    onsets : list of ndarray
        Per run, the onset time point of each of its trials.
    stimorder : ndarray of shape (n_trials,)
        Condition of each trial.
    trial_run : ndarray of shape (n_trials,)
        Run of each trial.
    validcolumns : list of ndarray
        Per run, the indices of its trials.
    onset_s, duration_s : list of ndarray or None
        Event-table designs only: per run, each trial's onset and duration in seconds
        (``onsets`` then holds the nearest volume, used by the FIR diagnostic and
        ``designSINGLE``). None for onset matrices.
    """

    onsets: list[NDArray[np.int64]]
    stimorder: NDArray[np.int64]
    trial_run: NDArray[np.int64]
    validcolumns: list[NDArray[np.int64]]
    n_conditions: int
    n_times: list[int]
    tr: float
    endbuffers: list[float] = field(default_factory=list)
    onset_s: list[NDArray[np.float64]] | None = None
    duration_s: list[NDArray[np.float64]] | None = None

    @property
    def timed(self) -> bool:
        """Whether the layout comes from event tables (onsets in seconds, own durations)."""
        return self.onset_s is not None

    @property
    def n_runs(self) -> int:
        return len(self.onsets)

    @property
    def n_trials(self) -> int:
        return int(self.stimorder.shape[0])

    @property
    def numtrialrun(self) -> list[int]:
        return [int(o.shape[0]) for o in self.onsets]

    @property
    def stimix(self) -> list[NDArray[np.int64]]:
        return [self.stimorder[c] for c in self.validcolumns]

    @property
    def condcounts(self) -> list[int]:
        return np.bincount(self.stimorder, minlength=self.n_conditions).tolist()

    @property
    def condinruns(self) -> list[int]:
        present = np.zeros((self.n_runs, self.n_conditions), bool)
        for r, ix in enumerate(self.stimix):
            present[r, ix] = True
        return present.sum(axis=0).tolist()

    def design_single(self) -> list[NDArray[np.float32]]:
        """Return the official ``designSINGLE`` (per run, T_r x n_trials)."""
        out = []
        for r, (ons, cols) in enumerate(zip(self.onsets, self.validcolumns)):
            m = np.zeros((self.n_times[r], self.n_trials), np.float32)
            m[ons, cols] = 1
            out.append(m)
        return out


def build_layout(design: list[NDArray[np.float64]] | EventTables, tr: float,
                 n_times: list[int] | None = None) -> TrialLayout:
    """Expand validated onset matrices (or event tables) into the single-trial layout.

    glmsingle.md 4.2. Event tables (:class:`~._timing.EventTables`, already sorted by onset)
    need ``n_times``; their trials keep their onsets and durations in seconds.
    """
    if not isinstance(design, list):
        if n_times is None:
            raise TypeError("build_layout needs n_times with event tables")
        return _build_timed_layout(design, tr, n_times)
    onsets, conds, runs, cols = [], [], [], []
    start = 0
    endbuffers = []
    for r, arr in enumerate(design):
        t_idx, c_idx = np.nonzero(arr)
        order = np.argsort(t_idx, kind="stable")
        t_idx, c_idx = t_idx[order], c_idx[order]
        onsets.append(t_idx.astype(np.int64))
        conds.append(c_idx.astype(np.int64))
        runs.append(np.full(t_idx.shape[0], r, np.int64))
        cols.append(np.arange(start, start + t_idx.shape[0], dtype=np.int64))
        start += t_idx.shape[0]
        endbuffers.append(float((arr.shape[0] - t_idx[-1] - 1) * tr))
    layout = TrialLayout(
        onsets=onsets,
        stimorder=np.concatenate(conds),
        trial_run=np.concatenate(runs),
        validcolumns=cols,
        n_conditions=int(design[0].shape[1]),
        n_times=[int(a.shape[0]) for a in design],
        tr=float(tr),
        endbuffers=endbuffers,
    )
    _warn_endbuffers(endbuffers)
    return layout


def _build_timed_layout(ev: EventTables, tr: float, n_times: list[int]) -> TrialLayout:
    cols, start = [], 0
    for ons in ev.onsets:
        cols.append(np.arange(start, start + ons.size, dtype=np.int64))
        start += ons.size
    layout = TrialLayout(
        onsets=[np.minimum(np.round(o / tr).astype(np.int64), n - 1)
                for o, n in zip(ev.onsets, n_times)],
        stimorder=np.concatenate(ev.conds).astype(np.int64),
        trial_run=np.concatenate([np.full(o.size, r, np.int64) for r, o in enumerate(ev.onsets)]),
        validcolumns=cols,
        n_conditions=int(ev.conditions.size),
        n_times=[int(n) for n in n_times],
        tr=float(tr),
        endbuffers=[float((n - 1) * tr - o[-1]) for o, n in zip(ev.onsets, n_times)],
        onset_s=[np.asarray(o, np.float64) for o in ev.onsets],
        duration_s=[np.asarray(d, np.float64) for d in ev.durations],
    )
    _warn_endbuffers(layout.endbuffers)
    return layout


def _warn_endbuffers(endbuffers: list[float]) -> None:
    if min(endbuffers) < 8:
        warnings.warn(
            "Some trials start less than 8 s before the end of their run (end buffers "
            f"{[round(b, 2) for b in endbuffers]} s); their responses are cut off and their "
            "betas are poorly estimated. Consider omitting those trials from the design.",
            ConformWarning,
            stacklevel=4,
        )


def window_index(onsets: NDArray[np.int64], n_time: int, length: int) -> NDArray[np.int64]:
    """Return ``(n_trials, length)`` time indices of each trial's response window.

    Indices past the end of the run point at ``n_time`` (a zero pad sample).
    """
    idx = onsets[:, None] + np.arange(length)[None, :]
    return np.minimum(idx, n_time)


def convolve_runs(
    layout: TrialLayout, hrfs: NDArray[np.floating], fine: FineHRFs | None = None
) -> list[NDArray[np.float64]]:
    """Convolve each run's single-trial design with every HRF.

    Parameters
    ----------
    layout : TrialLayout
        Single-trial layout.
    hrfs : ndarray of shape (length, n_hrfs)
        HRFs sampled at the TR, first sample at onset.
    fine : FineHRFs or None
        For event-table layouts: the same HRFs as impulse responses on the fine grid
        (``hrfs`` is then ignored); see :mod:`._timing`.

    Returns
    -------
    list of ndarray of shape (n_hrfs, T_r, n_r)
        Per run, the convolved trial regressors (causal, truncated at the end of the run).
    """
    if layout.timed:
        from ._timing import timed_regressors

        if fine is None:
            raise TypeError("convolve_runs needs the fine-grid HRFs for an event-table layout")
        assert layout.onset_s is not None and layout.duration_s is not None
        return [timed_regressors(o, d, n, fine)
                for o, d, n in zip(layout.onset_s, layout.duration_s, layout.n_times)]
    hrfs = np.asarray(hrfs, np.float64)
    length = hrfs.shape[0]
    out = []
    for ons, n_time in zip(layout.onsets, layout.n_times):
        lag = np.arange(n_time)[:, None] - ons[None, :]
        valid = (lag >= 0) & (lag < length)
        lagc = np.clip(lag, 0, length - 1)
        x = hrfs[lagc].transpose(2, 0, 1) * valid[None]
        out.append(x)
    return out


def check_run_count_for_xval(layout: TrialLayout, need_xval: bool) -> None:
    """Raise if cross-validation is requested but no condition repeats across runs."""
    if not need_xval:
        return
    if layout.n_runs < 2:
        raise ParameterError(
            "Cross-validation (GLMdenoise PC count and ridge fraction) needs at least 2 runs; "
            "got 1. Pass more runs, or set wantglmdenoise=0 and wantfracridge=0 (or fix "
            "pcstop=-K and a single fraction in fracs) to skip cross-validation."
        )
    if max(layout.condinruns) <= 1:
        raise ParameterError(
            "Cross-validation needs conditions repeated across runs, but no condition occurs "
            "in more than one run. Repeat some conditions in different runs, or set "
            "wantglmdenoise=0 and wantfracridge=0 (or pcstop=-K and a single fraction)."
        )
