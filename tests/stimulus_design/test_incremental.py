"""Protocols on request: budgets from session length, quotas, the allocation rule, conflicts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conform_core.exceptions import ParameterError
from stimulus_design import (
    AllocationConflictError,
    DesignParams,
    add_participants,
    allocate_more,
    create_study,
    nearest_selected,
    plan_design,
    record_collected,
    session_budget,
)

from .conftest import clustered

PARAMS = DesignParams(sites=2, participants_per_site=3, core=6, overlap=2, core_repeats=2,
                      repeats=2, sessions=2, runs=2, core_sessions=1, min_session_repeats=1,
                      seed=3)
X = clustered(500)
IDS = [f"img{i:04d}" for i in range(500)]


@pytest.fixture
def state():
    """A fresh study over the 500-image pool."""
    return create_study(IDS, X, PARAMS)


def _slot_seconds(params: DesignParams) -> float:
    return params.stim_duration + params.iti


@pytest.mark.parametrize("minutes", [2.0, 3.5, 10.0])
def test_budget_is_the_largest_that_conform_design_fits_in_the_session(minutes):
    n, plan = session_budget(PARAMS, minutes, 500)
    full = plan_design(replace(PARAMS, participants_per_site=1, overlap=1, per_participant=n), 500)
    assert (full.trials_per_run, full.stim_per_run) == (plan.trials_per_run, plan.stim_per_run)
    assert PARAMS.runs * plan.trials_per_run * _slot_seconds(PARAMS) <= 60 * minutes
    longer = plan_design(replace(PARAMS, participants_per_site=1, overlap=1,
                                 per_participant=n + 1), 500)
    assert PARAMS.runs * longer.trials_per_run * _slot_seconds(PARAMS) > 60 * minutes


def test_session_too_short_for_the_core_names_the_value_and_the_fix(state):
    with pytest.raises(ParameterError, match=r"session_minutes=0.5 is too short.*Offer at least"):
        allocate_more(state, X, 2, 0.5, site="oxford", seed=0)


def test_new_participants_get_the_core_and_continue_the_numbering(state):
    first, state = allocate_more(state, X, 3, 2.0, site="oxford", seed=0)
    second, state = allocate_more(state, X, 2, 3.5, site="site-07", seed=0)
    assert [p.label for p in first + second] == ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"]
    assert [p.site for p in first + second] == ["oxford"] * 3 + ["07"] * 2
    assert [p.request for p in first + second] == [1, 1, 1, 2, 2]
    budget = session_budget(PARAMS, 3.5, 500)[0]
    for p in second:
        assert p.per_participant == budget and len(p.images) == budget - PARAMS.core
        assert not set(p.images) & set(state.core)
    assert state.revision == 2


def test_quotas_are_never_exceeded_and_partly_filled_images_come_first(state):
    rng = np.random.default_rng(0)
    for i, n in enumerate([1, 2, 3, 1, 4, 1, 2]):
        quota, counts = state.quotas(), state.allocated_counts()
        partial = set(np.flatnonzero((quota > 0) & (counts > 0) & (counts < quota)).tolist())
        new, state = allocate_more(state, X, n, 2.0 + i % 2, site=f"s{i}", seed=i)
        counts = state.allocated_counts()
        assert (counts[quota >= 0] <= quota[quota >= 0]).all()
        slots = sum(len(p.images) for p in new)
        given = {r for p in new for r in p.images}
        if slots >= len(partial) * min(n, 2):   # room for all of them: every one is completed
            assert partial <= given
            assert (counts[list(partial)] == 2).all()
        for p in new:
            assert len(set(p.images)) == len(p.images)
            if rng.random() < 0.5:
                state = record_collected(state, p.label, {IDS[r]: 2 for r in p.images})


def test_partly_filled_images_farthest_from_collected_are_completed_first(state):
    first, state = allocate_more(state, X, 1, 3.5, site="a", seed=0)
    partial = np.array(first[0].images)
    # data from elsewhere near half of them
    near = [int(np.argsort(np.linalg.norm(X - X[r], axis=1))[1]) for r in partial[::2]]
    state = record_collected(state, "lab-x", {IDS[r]: 1 for r in near})
    d_collected = nearest_selected(X, np.array(near))[partial]
    second, state = allocate_more(state, X, 1, 2.0, site="b", seed=0)
    k = len(second[0].images)
    assert k < partial.size
    farthest = partial[np.argsort(-d_collected, kind="stable")[:k]]
    assert set(second[0].images) == set(farthest.tolist())


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_first_new_image_has_the_largest_weighted_gap(state, weight):
    """The documented rule: gap = min(d_collected, d_allocated / pending_weight)."""
    first, state = allocate_more(state, X, 2, 2.0, site="a", seed=0)
    state = record_collected(state, first[0].label, {IDS[r]: 2 for r in first[0].images})
    new, _ = allocate_more(state, X, 1, 2.0, site="b", seed=0, pending_weight=weight)
    collected = np.array(first[0].images)
    allocated = np.array(sorted(set(first[1].images) | set(state.core)))
    gap = np.minimum(nearest_selected(X, collected), nearest_selected(X, allocated) / weight)
    gap[state.allocated_counts() > 0] = -1
    assert new[0].images[0] == int(np.argmax(gap))


def test_same_seed_same_allocation_and_the_state_is_not_changed(state):
    _, state = allocate_more(state, X, 2, 2.0, site="a", seed=0)
    before = state.to_json()
    one = allocate_more(state, X, 3, 2.0, site="b", seed=5)
    two = allocate_more(state, X, 3, 2.0, site="b", seed=5)
    assert one == two
    assert state.to_json() == before


def test_two_requests_from_one_state_do_not_both_commit(state):
    """Slot accounting is exact: a request computed from a stale state is refused."""
    _, state = allocate_more(state, X, 1, 2.0, site="a", seed=0)    # 20 partly filled images
    a, after_a = allocate_more(state, X, 2, 2.0, site="b", seed=1)
    stale, _ = allocate_more(state, X, 2, 2.0, site="c", seed=2)
    with pytest.raises(AllocationConflictError, match="numbering"):
        add_participants(after_a, stale)
    relabelled = [replace(p, label=after_a.label(len(after_a.participants) + i + 1))
                  for i, p in enumerate(stale)]
    with pytest.raises(AllocationConflictError, match="beyond their quota"):
        add_participants(after_a, relabelled)
    b, after_b = allocate_more(after_a, X, 2, 2.0, site="c", seed=2)
    before = state.allocated_counts()
    given_a = after_a.allocated_counts() - before
    given_b = after_b.allocated_counts() - after_a.allocated_counts()
    quota = state.quotas()
    free = quota >= 0
    assert (before[free] + given_a[free] + given_b[free] <= quota[free]).all()
    # the partly filled images went to the first request; the second took none of them
    partial = np.flatnonzero(free & (before == 1))
    assert (given_a[partial] == 1).all() and (given_b[partial] == 0).all()


@pytest.mark.parametrize("site", ["Oxford Uni", "site_x", "", "ox-ford", 7])
def test_unknown_site_format_is_refused(state, site):
    with pytest.raises(ParameterError, match="letters and digits only"):
        allocate_more(state, X, 1, 2.0, site=site, seed=0)


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_participants_below_one_are_refused(state, n):
    with pytest.raises(ParameterError, match="'n_participants'.*at least 1"):
        allocate_more(state, X, n, 2.0, site="a", seed=0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"pending_weight": 0}, "pending_weight"), ({"pending_weight": 1.5}, "pending_weight"),
    ({"seed": "x"}, "'seed'")])
def test_bad_options_are_refused(state, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        allocate_more(state, X, 1, 2.0, **{"site": "a", "seed": 0, **kwargs})


@pytest.mark.parametrize("minutes", [0, -3, float("nan"), "long"])
def test_bad_session_minutes_are_refused(state, minutes):
    with pytest.raises(ParameterError, match="session_minutes"):
        allocate_more(state, X, 1, minutes, site="a", seed=0)


def test_a_full_pool_is_refused_with_the_slots_left():
    small = create_study(IDS[:60], X[:60], PARAMS)     # 54 non-core images x 2 = 108 slots
    _, small = allocate_more(small, X[:60], 4, 2.0, site="a", seed=0)     # 80 slots
    with pytest.raises(ParameterError, match=r"room for 28 more.*n_participants"):
        allocate_more(small, X[:60], 2, 2.0, site="b", seed=0)
