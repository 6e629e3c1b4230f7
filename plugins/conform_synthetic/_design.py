"""Who sees what, in which order: allocation, split, trial order, runs and event timing."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._params import SimulationParams

__all__ = ["StudySplit", "SubjectDesign", "split_study", "design_subject", "stimulus_ids"]


def stimulus_ids(n_stimuli: int) -> NDArray[np.str_]:
    """Return study stimulus ids ``stim-0000``, ``stim-0001``, ..."""
    width = max(4, len(str(n_stimuli - 1)))
    return np.array([f"stim-{i:0{width}d}" for i in range(n_stimuli)])


@dataclass(frozen=True, eq=False)
class StudySplit:
    """Study-level allocation: shared stimuli and the held-out (test) stimuli.

    Attributes
    ----------
    shared : ndarray of int
        Positions of the stimuli every subject sees (sorted).
    is_test : ndarray of bool, shape (n_stimuli,)
        Held-out stimuli: shared ones first, then (if more are needed) others.
    own : tuple of ndarray of int, or None
        With ``stimulus_overlap``: the positions of each subject's own stimuli (sorted,
        disjoint between subjects); None otherwise (each subject draws its own).
    """

    shared: NDArray[np.intp]
    is_test: NDArray[np.bool_]
    own: tuple[NDArray[np.intp], ...] | None = None


def split_study(params: SimulationParams, rng: np.random.Generator) -> StudySplit:
    """Choose the shared stimuli and the test stimuli of the study.

    With ``stimulus_overlap`` the one permutation of the stimuli is cut into blocks: the
    shared held-out ones, the shared training ones, then for each subject its own held-out
    and its own training ones (the rest, if any, is seen by nobody).
    """
    order = rng.permutation(params.n_stimuli)
    if params.stimulus_overlap is not None:
        return _overlap_split(params, order)
    shared = np.sort(order[:params.n_shared])
    n_test = params.n_test
    test_pos = order[:n_test]  # the shared block comes first in `order`
    is_test = np.zeros(params.n_stimuli, bool)
    is_test[test_pos] = True
    return StudySplit(shared=shared, is_test=is_test)


def _overlap_split(params: SimulationParams, order: NDArray[np.intp]) -> StudySplit:
    a = params.overlap_allocation
    bounds = np.cumsum([0, a.shared_test, a.shared_train]
                       + [a.own_test, a.own_train] * params.n_subjects)
    blocks = [order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    is_test = np.zeros(params.n_stimuli, bool)
    for block in blocks[0::2]:  # shared held-out, then each subject's own held-out
        is_test[block] = True
    shared = np.sort(np.concatenate(blocks[:2])).astype(np.intp)
    own = tuple(np.sort(np.concatenate(blocks[2 + 2 * i:4 + 2 * i])).astype(np.intp)
                for i in range(params.n_subjects))
    return StudySplit(shared=shared, is_test=is_test, own=own)


@dataclass(frozen=True, eq=False)
class SubjectDesign:
    """One subject's stimuli and trials.

    Attributes
    ----------
    stimuli : ndarray of int
        Positions (in the study) of the stimuli this subject sees, sorted.
    trial_stimulus : ndarray of int, shape (n_trials,)
        Position in ``stimuli`` of each kept trial, runs in order, time order within a run.
    trial_run, trial_session : ndarray of int, shape (n_trials,)
    run_sessions : ndarray of int, shape (n_runs,)
    onsets_volume : ndarray of int, shape (n_trials,)
        Onset of each kept trial in volumes from the start of its run (time series only).
    run_volumes : ndarray of int, shape (n_runs,)
        Length of each run in volumes (time series only).
    """

    stimuli: NDArray[np.intp]
    trial_stimulus: NDArray[np.intp]
    trial_run: NDArray[np.int64]
    trial_session: NDArray[np.int64]
    run_sessions: NDArray[np.int64]
    onsets_volume: NDArray[np.int64]
    run_volumes: NDArray[np.int64]

    @property
    def n_trials(self) -> int:
        """Number of kept trials."""
        return int(self.trial_stimulus.shape[0])


def _subject_stimuli(params: SimulationParams, split: StudySplit, rng: np.random.Generator,
                     index: int | None) -> NDArray[np.intp]:
    if split.own is not None and index is not None:
        return np.sort(np.concatenate([split.shared, split.own[index]])).astype(np.intp)
    others = np.setdiff1d(np.arange(params.n_stimuli), split.shared)
    if split.own is not None:  # a fresh subject: as many own stimuli as a study subject
        n_own = int(split.own[0].size) if split.own else 0
    else:
        n_own = others.size if params.stimuli_per_subject is None else params.stimuli_per_subject
    own = rng.choice(others, size=n_own, replace=False) if n_own < others.size else others
    return np.sort(np.concatenate([split.shared, own])).astype(np.intp)


def _drop_trials(stim: NDArray[np.intp], fraction: float,
                 rng: np.random.Generator) -> NDArray[np.bool_]:
    """Mask of trials kept: each dropped with probability ``fraction``, one per stimulus kept."""
    keep = rng.random(stim.size) >= fraction
    if fraction > 0:
        guard = rng.permutation(stim.size)  # a random trial of each stimulus is always kept
        first = np.full(stim.max() + 1, -1)
        first[stim[guard[::-1]]] = guard[::-1]
        keep[first[first >= 0]] = True
    return keep


def design_subject(params: SimulationParams, split: StudySplit, rng: np.random.Generator,
                   index: int | None = None) -> SubjectDesign:
    """Allocate one subject's stimuli, order its trials and lay them into runs.

    ``index`` is the subject's 0-based position in the study (None for a fresh subject of
    the population, which draws its own stimuli from those no study subject shares).
    """
    stimuli = _subject_stimuli(params, split, rng, index)
    planned = rng.permutation(np.repeat(np.arange(stimuli.size), params.n_repeats))
    n_planned = planned.size
    n_runs = (math.ceil(n_planned / params.trials_per_run) if params.n_runs is None
              else min(params.n_runs, n_planned))
    planned_run = (np.arange(n_planned) * n_runs) // n_planned  # near-equal, contiguous runs
    keep = _drop_trials(planned, params.missing_fraction, rng)

    onsets = np.zeros(n_planned, np.int64)
    run_volumes = np.zeros(n_runs, np.int64)
    if params.timeseries:
        lead_in, tail = 8.0, 20.0
        for r in range(n_runs):
            in_run = np.flatnonzero(planned_run == r)
            n_slots = in_run.size + int(round(params.null_fraction * in_run.size))
            is_null = np.zeros(n_slots, bool)
            is_null[rng.choice(n_slots, size=n_slots - in_run.size, replace=False)] = True
            times = lead_in + np.arange(n_slots) * params.iti
            event_times = times[~is_null]
            onsets[in_run] = np.round(event_times / params.tr).astype(np.int64)
            end = (times[-1] if n_slots else 0.0) + params.stimdur + tail
            run_volumes[r] = int(math.ceil(end / params.tr))
    run_sessions = (np.arange(n_runs) // params.runs_per_session).astype(np.int64)
    trial_run = planned_run[keep].astype(np.int64)
    return SubjectDesign(
        stimuli=stimuli,
        trial_stimulus=planned[keep].astype(np.intp),
        trial_run=trial_run,
        trial_session=run_sessions[trial_run],
        run_sessions=run_sessions,
        onsets_volume=onsets[keep],
        run_volumes=run_volumes,
    )
