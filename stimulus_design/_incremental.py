"""Protocols on request: allocate more participants to a running study.

A site asks for ``n_participants`` and the session length it can offer.
:func:`session_budget` turns the minutes into images per participant with the same
arithmetic as ``conform design`` (:func:`plan_design`). :func:`allocate_more` then gives each
new participant the shared core plus non-core images, never beyond an image's quota:

1. **Complete partly filled images first** (given to fewer participants than their quota),
   so the overlap target is met; farthest from the collected data first, ties to the image
   allocated earliest.
2. **Then new images by weighted farthest-first** (greedy k-center, the batched exact passes
   of :func:`select_kcenter`), starting from what is already covered. An image with data
   covers its neighbourhood fully; an image only allocated (its data may never come) covers
   it as if it were ``1 / pending_weight`` times farther away. The gap of pool image ``x``
   is ``min(d_collected(x), d_allocated(x) / pending_weight)``, and each pick is the
   eligible image with the largest gap. New picks are themselves only allocated.

Each image goes to ``min(quota, n_participants)`` of the new participants (fewer for the
last one when the slots run out), always the least loaded, ties to the pairs sharing the
fewest images: every participant ends with exactly ``per_participant - core`` images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError

from ._metrics import nearest_selected
from ._params import DesignParams, Plan, plan_design
from ._select import _next_picks, _update
from ._study import (
    StudyParticipant,
    StudyState,
    add_participants,
    check_embeddings,
    check_site,
)

__all__ = ["allocate_more", "session_budget"]

_OWNER = "allocate_more"


def _single(params: DesignParams, per_participant: int) -> DesignParams:
    """Return the design of one participant (quotas are the study's business, not the plan's)."""
    return replace(params, sites=1, participants_per_site=1, overlap=1,
                   per_participant=per_participant)


def _session_seconds(params: DesignParams, plan: Plan) -> float:
    return params.runs * plan.trials_per_run * (params.stim_duration + params.iti)


def session_budget(params: DesignParams, session_minutes: float, n_pool: int) -> tuple[int, Plan]:
    """Return the most images per participant whose sessions fit in ``session_minutes``.

    Parameters
    ----------
    params : DesignParams
        The study design: core, repeats, sessions, runs, trials and timing.
    session_minutes : float
        Scanning time of one session (its ``params.runs`` runs back to back, without setup
        or breaks); each participant comes for ``params.sessions`` sessions.
    n_pool : int
        Pool size (a participant cannot see more distinct images).

    Returns
    -------
    per_participant : int
        Distinct images per participant, core included: the largest value for which
        ``conform design`` would plan runs of ``trials_per_run`` slots that fit the session.
    plan : Plan
        :func:`plan_design`'s sizes for one participant with that budget.

    Raises
    ------
    ParameterError
        If the session is too short for the core plus one further image (with the minutes
        needed), or the design cannot be scheduled at that length.
    """
    minutes = session_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, Real) or not 0 < minutes < math.inf:
        raise ParameterError(param="session_minutes", value=minutes, owner=_OWNER,
                             allowed="a positive number of minutes")
    seconds = 60.0 * float(minutes)
    lo = params.core + 1
    if lo > n_pool:
        raise ParameterError(f"The pool of {n_pool} images has no room beyond the $core of "
                             f"{params.core}.", param="core", value=params.core, owner=_OWNER,
                             fix="Supply a larger pool.")
    # Only the trial count decides the session length; the repeat rules are checked at the end.
    relaxed = replace(params, min_session_repeats=0, core_sessions=params.sessions)

    def fits(n: int) -> bool:
        try:
            plan = plan_design(_single(relaxed, n), n)
        except ParameterError:      # more trials than a fixed $trials_per_run holds
            return False
        return _session_seconds(params, plan) <= seconds + 1e-6

    if not fits(lo):
        need = _session_seconds(params, plan_design(_single(relaxed, lo), lo)) / 60.0
        raise ParameterError(
            f"$session_minutes={float(minutes):g} is too short: the shared core ({params.core} "
            f"images x {params.core_repeats} presentations) plus one further image needs "
            f"{params.sessions} session(s) of {params.runs} runs, {need:.1f} minutes each.",
            param="session_minutes", value=minutes, owner=_OWNER,
            fix=f"Offer at least {math.ceil(need * 10) / 10:g} minutes per session, or create the "
                "study with a smaller core, fewer core repeats or more sessions.")
    slot = params.stim_duration + params.iti
    per_run = int(seconds // (params.runs * slot))
    most = per_run * params.sessions * params.runs - params.core * params.core_repeats
    hi = min(n_pool, max(lo, params.core + most // params.repeats))
    while lo < hi:                  # largest n that fits (fits is monotone in n)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    try:
        plan = plan_design(_single(params, lo), n_pool)
    except ParameterError as exc:
        raise ParameterError(
            f"With $session_minutes={float(minutes):g} each participant would see {lo} images, "
            f"but the design cannot be scheduled: {ParameterError.quote(str(exc))}",
            param="session_minutes", value=minutes, owner=_OWNER) from None
    return lo, plan


def _assign(sizes: list[int], n_participants: int,
            rng: np.random.Generator) -> list[list[int]]:
    """Members of each image: the least loaded, then the pairs sharing least, then priority."""
    counts = np.zeros(n_participants, np.int64)
    pairs = np.zeros((n_participants, n_participants), np.int64)
    priority = rng.permutation(n_participants)
    out = []
    for k in sizes:
        chosen: list[int] = []
        free = np.ones(n_participants, bool)
        for _ in range(k):
            pool = np.flatnonzero(free & (counts == counts[free].min()))
            if chosen:
                shared = pairs[np.ix_(pool, np.asarray(chosen))].sum(axis=1)
                pool = pool[shared == shared.min()]
            p = int(pool[np.argmin(priority[pool])])
            chosen.append(p)
            free[p] = False
        counts[chosen] += 1
        pairs[np.ix_(chosen, chosen)] += 1
        priority = np.roll(priority, 1)
        out.append(sorted(chosen))
    return out


def _farthest_first(x: NDArray[np.float32], gap: NDArray[np.float32],
                    eligible: NDArray[np.bool_], rng: np.random.Generator) -> Iterator[int]:
    """Yield eligible rows in greedy k-center order from the initial distances ``gap``.

    ``gap`` is changed in place (ineligible rows are set to 0 so they are never picked).
    Rows at distance 0 (duplicates of covered images) come last, in row order.
    """
    gap[~eligible] = 0.0
    owner = np.zeros(gap.size, np.int32)
    unbounded = np.flatnonzero(np.isinf(gap))
    if unbounded.size:                      # nothing covered yet: a seeded first pick
        first = int(rng.choice(unbounded))
        yield first
        gap[first] = 0.0
        eligible[first] = False
        _update(x, gap, owner, x[[first]], 0, None)
    while True:
        picks, _ = _next_picks(x, gap, min(gap.size, 2048), 512)
        if picks.size == 0:
            break
        yield from (int(p) for p in picks)
        _update(x, gap, owner, x[picks], 0, None)
        gap[picks] = 0.0
        eligible[picks] = False
    yield from (int(r) for r in np.flatnonzero(eligible & (gap == 0.0)))


def allocate_more(state: StudyState, embeddings: NDArray[np.floating], n_participants: int,
                  session_minutes: float, *, site: str, seed: int,
                  pending_weight: float = 0.5) -> tuple[tuple[StudyParticipant, ...], StudyState]:
    """Allocate images to ``n_participants`` new participants of one site.

    Parameters
    ----------
    state : StudyState
        The study now (not modified).
    embeddings : ndarray of shape (n_pool, n_features)
        The pool's features, as passed to :func:`create_study`.
    n_participants : int
        New participants, at least 1. They are labelled after the study's last participant.
    session_minutes : float
        Scanning time the site offers per session (see :func:`session_budget`).
    site : str
        The site's label: letters and digits (``oxford``; ``site-oxford`` is accepted).
    seed : int
        Seeds the tie breaks; the same state, arguments and seed give the same allocation.
    pending_weight : float, default=0.5
        In (0, 1]: how much an allocated image without data counts as coverage (its distance
        is divided by this). 1 counts it like collected data.

    Returns
    -------
    participants : tuple of StudyParticipant
        The new participants, each with ``per_participant - core`` non-core images.
    state : StudyState
        ``state`` with them committed (:func:`add_participants`).

    Raises
    ------
    ParameterError
        For a bad site label, ``n_participants`` below 1, a session too short for the core,
        a bad ``pending_weight``, or a pool without enough free slots.
    ShapeError
        If ``embeddings`` is not the study's shape.

    Notes
    -----
    Allocation rule (module docstring): partly filled images first, farthest from the
    collected data first; then new images by weighted farthest-first, with the gap
    ``min(d_collected, d_allocated / pending_weight)``. Cost: one exact search of the pool
    against the collected and against the allocated images (FAISS), plus about
    ``n_pool x n_new_images x d`` multiply-adds for the picks.
    """
    label = check_site(site, owner=_OWNER)
    n_new = n_participants
    if isinstance(n_new, bool) or not isinstance(n_new, Integral) or n_new < 1:
        raise ParameterError(param="n_participants", value=n_new, owner=_OWNER,
                             allowed="an int of at least 1")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ParameterError(param="seed", value=seed, owner=_OWNER, allowed="an int")
    if isinstance(pending_weight, bool) or not isinstance(pending_weight, Real) \
            or not 0 < pending_weight <= 1:
        raise ParameterError(param="pending_weight", value=pending_weight, owner=_OWNER,
                             allowed="a number in (0, 1]")
    n_new = int(n_new)
    per_participant, _ = session_budget(state.params, session_minutes, state.n_pool)
    x = check_embeddings(state, embeddings)
    quota, counts = state.quotas(), state.allocated_counts()
    remaining = np.where(quota >= 0, quota - counts, 0)
    left = n_new * (per_participant - state.params.core)
    capacity = int(np.minimum(remaining, n_new).sum())
    if capacity < left:
        raise ParameterError(
            f"The pool has room for {capacity} more non-core slots for $n_participants={n_new} "
            f"new participant(s), but they need {n_new} x {per_participant - state.params.core} "
            f"= {left} (each image at most once per participant, and within its quota).",
            param="n_participants", value=n_new, owner=_OWNER,
            fix="Ask for fewer participants or shorter sessions, or raise the overlap quota.")
    rng = np.random.default_rng([state.params.seed, 3, int(seed), len(state.participants)])
    collected = state.rows_of("collected")
    d_collected = (nearest_selected(x, collected) if collected.size
                   else np.full(state.n_pool, np.inf, np.float32))
    images: list[int] = []
    sizes: list[int] = []

    def take(row: int) -> None:
        nonlocal left
        k = min(int(remaining[row]), n_new, left)
        images.append(row)
        sizes.append(k)
        left -= k

    first_seen = np.zeros(state.n_pool, np.int64)     # position of an image's first allocation
    history = np.asarray([r for p in state.active() for r in p.images], np.int64)
    seen, where = np.unique(history, return_index=True)
    first_seen[seen] = where
    partial = np.flatnonzero((quota > 0) & (counts > 0) & (remaining > 0))
    for row in partial[np.lexsort((first_seen[partial], -d_collected[partial]))]:
        if left == 0:
            break
        take(int(row))
    if left:
        pending = np.union1d(state.rows_of("allocated"),
                             np.asarray(list(state.core) + images, np.int64))
        d_pending = (nearest_selected(x, pending) if pending.size
                     else np.full(state.n_pool, np.inf, np.float32))
        gap = np.minimum(np.float32(pending_weight) * d_collected, d_pending).astype(np.float32)
        eligible = (counts == 0) & (remaining > 0)
        eligible[images] = False
        for row in _farthest_first(x, gap, eligible, rng):
            take(row)
            if left == 0:
                break
    assert left == 0, "capacity was checked above"
    own: list[list[int]] = [[] for _ in range(n_new)]
    for row, members in zip(images, _assign(sizes, n_new, rng)):
        for m in members:
            own[m].append(row)
    base = len(state.participants)
    request = 1 + max((p.request for p in state.participants), default=0)
    new = tuple(StudyParticipant(state.label(base + i + 1), label, tuple(own[i]),
                                 per_participant, float(session_minutes), request)
                for i in range(n_new))
    return new, add_participants(state, new)
