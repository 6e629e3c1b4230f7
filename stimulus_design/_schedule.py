"""Schedule: each participant's presentations into sessions, runs and trial slots.

Rules (checked again by ``conform design check``):

- every run has the same number of slots; stimulus trials per run differ by at most one
  over the whole study, the rest are null (blank) trials spread evenly, first and last slot
  included;
- the shared core is shown only in sessions ``1..core_sessions`` (NSD lost half of its
  shared-image repeats to participants who stopped early);
- an image with ``r >= 3`` presentations has exactly one within-session pair (GLMsingle
  cross-validates on such repeats) and its other presentations in other sessions; with
  ``r == 2`` every other image gets a within-session pair and the rest are split over two
  sessions; within-session pairs fall in different runs when there are several runs;
- the same image is never shown in two consecutive stimulus trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

from ._params import DesignParams, Plan

__all__ = ["ParticipantSchedule", "null_positions", "run_capacities", "schedule_participant"]

NULL = -1


@dataclass(frozen=True)
class ParticipantSchedule:
    """One participant's trials.

    Attributes
    ----------
    slots : ndarray of shape (n_sessions, n_runs, trials_per_run), dtype int64
        Stimulus index (row of stimuli.tsv) per slot, or -1 for a null trial.
    """

    slots: NDArray[np.int64]


def run_capacities(presentations: int, sessions: int, runs: int) -> NDArray[np.int64]:
    """Stimulus trials per run, shape (sessions, runs): equal, the first runs one more."""
    base, extra = divmod(presentations, sessions * runs)
    caps = np.full(sessions * runs, base, np.int64)
    caps[:extra] += 1
    return caps.reshape(sessions, runs)


def null_positions(n_slots: int, n_null: int) -> NDArray[np.int64]:
    """Slots of the null trials: evenly spread, first and last slot included when >= 2."""
    if n_null <= 0:
        return np.empty(0, np.int64)
    if n_null == 1:
        return np.array([n_slots - 1], np.int64)
    return np.round(np.linspace(0, n_slots - 1, n_null)).astype(np.int64)


def _pick_sessions(count: int, allowed: NDArray[np.int64], remaining: NDArray[np.int64],
                   avoid: list[int], rng: np.random.Generator) -> list[int]:
    """``count`` distinct sessions from ``allowed``: most free capacity, far from ``avoid``."""
    chosen: list[int] = []
    for _ in range(count):
        options = np.array([s for s in allowed if remaining[s] > 0 and s not in chosen + avoid])
        if options.size == 0:   # more presentations than sessions: allow a repeat session
            options = np.array([s for s in allowed if remaining[s] > 0])
        if options.size == 0:
            raise _Retry()
        taken = chosen + avoid
        spread = (np.min(np.abs(options[:, None] - np.array(taken)[None, :]), axis=1)
                  if taken else np.zeros(options.size))
        key = np.lexsort((rng.random(options.size), -spread, -remaining[options]))
        s = int(options[key[0]])
        chosen.append(s)
        remaining[s] -= 1
    return chosen


class _Retry(Exception):
    """The greedy placement painted itself into a corner; try another random order."""


def _sessions_for(images: list[tuple[int, int, bool]], caps: NDArray[np.int64], window: int,
                  rng: np.random.Generator) -> list[list[int]]:
    n_sessions = caps.shape[0]
    remaining = caps.sum(axis=1).astype(np.int64)
    per_session: list[list[int]] = [[] for _ in range(n_sessions)]
    cursors = {True: 0, False: 0}
    cycles = {True: rng.permutation(window), False: rng.permutation(n_sessions)}
    # most constrained first: core, then images with a within-session pair, then the rest
    order = sorted(range(len(images)), key=lambda i: (not images[i][2], -images[i][1]))
    n_pairs_two = 0
    for i in order:
        stim, reps, is_core = images[i]
        allowed = np.arange(window if is_core else n_sessions)
        if is_core or reps != 2:
            pair = reps >= 2
        else:
            pair = n_pairs_two % 2 == 0
            n_pairs_two += 1
        chosen: list[int] = []
        if pair:
            cycle = cycles[is_core]
            for step in range(cycle.size):
                s = int(cycle[(cursors[is_core] + step) % cycle.size])
                if remaining[s] >= 2:
                    cursors[is_core] = (cursors[is_core] + step + 1) % cycle.size
                    break
            else:
                raise _Retry()
            remaining[s] -= 2
            chosen = [s, s]
            chosen += _pick_sessions(reps - 2, allowed, remaining, [s], rng)
        else:
            chosen = _pick_sessions(reps, allowed, remaining, [], rng)
        for s in chosen:
            per_session[s].append(stim)
    return per_session


def _runs_for(items: list[int], caps: NDArray[np.int64],
              rng: np.random.Generator) -> list[list[int]]:
    remaining = caps.astype(np.int64).copy()
    runs: list[list[int]] = [[] for _ in range(caps.size)]
    values, counts = np.unique(np.array(items, np.int64), return_counts=True)
    multi = values[counts > 1][rng.permutation(int((counts > 1).sum()))]
    for stim in multi:
        n = int(counts[values == stim][0])
        for _ in range(n):
            free = np.flatnonzero(remaining > 0)
            used = [r for r in range(caps.size) if stim in runs[r]]
            fresh = np.setdiff1d(free, used) if np.setdiff1d(free, used).size else free
            if fresh.size == 0:
                raise _Retry()
            key = np.lexsort((rng.random(fresh.size), -remaining[fresh]))
            r = int(fresh[key[0]])
            runs[r].append(int(stim))
            remaining[r] -= 1
    singles = values[counts == 1][rng.permutation(int((counts == 1).sum()))]
    pos = 0
    for r in range(caps.size):
        take = int(remaining[r])
        runs[r].extend(int(v) for v in singles[pos: pos + take])
        pos += take
    return runs


def _order_run(items: list[int], rng: np.random.Generator) -> NDArray[np.int64]:
    seq = np.array(items, np.int64)[rng.permutation(len(items))]
    for _ in range(50 * max(len(items), 1)):
        bad = np.flatnonzero(seq[1:] == seq[:-1]) + 1
        if bad.size == 0:
            return seq
        t, u = int(bad[0]), int(rng.integers(len(seq)))
        seq[t], seq[u] = seq[u], seq[t]
    raise _Retry()


def schedule_participant(core: NDArray[np.int64], others: NDArray[np.int64], params: DesignParams,
                         plan: Plan, seed: list[int]) -> ParticipantSchedule:
    """Place one participant's presentations into sessions, runs and trial slots.

    Parameters
    ----------
    core, others : ndarray of int
        Stimulus indices of the participant's core and non-core images.
    params, plan : DesignParams, Plan
        The design and its checked sizes.
    seed : list of int
        Entropy for this participant's generator (the design seed plus the participant).

    Raises
    ------
    ParameterError
        If no placement satisfying the rules is found in 20 attempts.
    """
    images = [(int(s), params.core_repeats, True) for s in core]
    images += [(int(s), params.repeats, False) for s in others]
    caps = run_capacities(plan.presentations, params.sessions, params.runs)
    nulls_at = [null_positions(plan.trials_per_run, plan.trials_per_run - int(c))
                for c in caps.reshape(-1)]
    for attempt in range(20):
        rng = np.random.default_rng([*seed, attempt])
        try:
            per_session = _sessions_for(images, caps, plan.core_sessions, rng)
            slots = np.full((params.sessions, params.runs, plan.trials_per_run), NULL, np.int64)
            for s, items in enumerate(per_session):
                for r, run_items in enumerate(_runs_for(items, caps[s], rng)):
                    seq = _order_run(run_items, rng)
                    mask = np.ones(plan.trials_per_run, bool)
                    mask[nulls_at[s * params.runs + r]] = False
                    slots[s, r, mask] = seq
            return ParticipantSchedule(slots)
        except _Retry:
            continue
    raise ParameterError(
        f"Could not schedule {plan.presentations} presentations into $sessions={params.sessions} "
        f"x $runs={params.runs} runs while keeping repeats in separate sessions and runs.",
        param="sessions", owner="DesignParams",
        fix="Add sessions or runs, or lower $core_repeats or $repeats.")
