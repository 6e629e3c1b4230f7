"""Coverage feedback, and the study loop: allocate_more shrinks the collected radius faster than random."""

from __future__ import annotations

import numpy as np
import pytest

from conform_core.exceptions import ParameterError
from stimulus_design import (
    DesignParams,
    StudyParticipant,
    add_participants,
    allocate_more,
    coverage_of,
    create_study,
    record_collected,
    release_participants,
    session_budget,
)

from .conftest import clustered

PARAMS = DesignParams(sites=2, participants_per_site=3, core=6, overlap=2, core_repeats=2,
                      repeats=2, sessions=2, runs=2, core_sessions=1, min_session_repeats=1,
                      seed=3)
X = clustered(500)
IDS = [f"img{i:04d}" for i in range(500)]


def _radius(x: np.ndarray, rows: list[int]) -> float:
    """Covering radius by brute force (the reference for the FAISS search)."""
    d = np.sqrt(np.maximum(2 - 2 * x.astype(np.float64) @ x[rows].T.astype(np.float64), 0))
    return float(d.min(axis=1).max())


def test_an_empty_set_has_no_radius():
    cov = coverage_of(create_study(IDS, X, PARAMS), X)
    assert cov["n_images"] == 0 and cov["radius"] is None and cov["table"] == []


def test_allocated_coverage_counts_participants_and_planned_presentations():
    state = create_study(IDS, X, PARAMS)
    new, state = allocate_more(state, X, 3, 2.0, site="a", seed=0)
    cov = coverage_of(state, X, "allocated")
    rows = sorted(set(state.core) | {r for p in new for r in p.images})
    assert cov["n_images"] == len(rows) and cov["n_participants"] == 3
    assert cov["radius"] == pytest.approx(_radius(X, rows), abs=1e-5)
    assert cov["p95"] <= cov["p99"] <= cov["radius"]
    # core: 3 participants x 2 repeats; the rest: 2 participants x 2 repeats (overlap 2)
    assert cov["by_participants"] == {"2": len(rows) - 6, "3": 6}
    assert cov["table"] == [{"participants": 2, "presentations": 4, "images": len(rows) - 6},
                            {"participants": 3, "presentations": 6, "images": 6}]


def test_collected_coverage_follows_the_recorded_data():
    state = create_study(IDS, X, PARAMS)
    new, state = allocate_more(state, X, 2, 2.0, site="a", seed=0)
    state = record_collected(state, new[0].label, {IDS[r]: 2 for r in new[0].images})
    state = record_collected(state, "lab-x", {IDS[new[0].images[0]]: 1, IDS[7]: 3})
    cov = coverage_of(state, X, "collected")
    rows = sorted(set(new[0].images) | {7})
    assert cov["n_images"] == len(rows) and cov["n_participants"] == 2
    assert cov["radius"] == pytest.approx(_radius(X, rows), abs=1e-5)
    assert cov["by_participants"] == {"1": len(rows) - 1, "2": 1}
    assert cov["by_presentations"] == {"2": len(rows) - 2, "3": 2}


def test_unknown_which_is_refused():
    with pytest.raises(ParameterError, match="'collected', 'allocated'"):
        coverage_of(create_study(IDS, X, PARAMS), X, "everything")


# --- the study loop -------------------------------------------------------------------------

LOOP = DesignParams(core=10, overlap=2, core_repeats=2, repeats=1, sessions=1, runs=2,
                    min_session_repeats=2, seed=1)
MINUTES = 3.6       # 40 images per participant: the core + 30 (two runs of 27 four-second slots)
N_SITES, PER_SITE, RETURN = 8, 3, 0.6


def _random_request(state, n: int, per_participant: int, rng: np.random.Generator):
    """The null: each new participant gets images drawn at random among those with room left."""
    room = np.where(state.quotas() >= 0, state.quotas() - state.allocated_counts(), 0)
    new = []
    for i in range(n):
        rows = rng.choice(np.flatnonzero(room > 0), per_participant - LOOP.core, replace=False)
        room[rows] -= 1
        new.append(StudyParticipant(state.label(len(state.participants) + i + 1), "random",
                                    tuple(int(r) for r in rows), per_participant, MINUTES, 1))
    return tuple(new), add_participants(state, new)


def _study_loop(seed: int, strategy: str) -> list[float]:
    """Sites arrive one by one; 60% of participants return data; collected radius after each.

    A participant who does not return data is released before the next site asks (the
    registry's deadline), so the images only they held can be allocated again.
    """
    x = clustered(3000, seed=seed)
    ids = [f"s{j}" for j in range(x.shape[0])]
    state = create_study(ids, x, LOOP)
    returns = np.random.default_rng([seed, 1])      # the same participants return in both arms
    rng = np.random.default_rng([seed, 2])
    per_participant = session_budget(LOOP, MINUTES, x.shape[0])[0]
    radii = []
    for site in range(N_SITES):
        if strategy == "allocate_more":
            new, state = allocate_more(state, x, PER_SITE, MINUTES, site=f"s{site}", seed=site)
        else:
            new, state = _random_request(state, PER_SITE, per_participant, rng)
        lost = []
        for p, draw in zip(new, returns.random(len(new))):
            if draw < RETURN:
                shown = {ids[r]: LOOP.core_repeats for r in state.core}
                state = record_collected(state, p.label, shown | {ids[r]: 1 for r in p.images})
            else:
                lost.append(p.label)
        state = release_participants(state, lost)
        radii.append(coverage_of(state, x, "collected")["radius"])
    return radii


def test_collected_radius_shrinks_faster_than_with_random_allocation():
    """3,000 clustered 32-d points, 8 sites x 3 participants, 60% return their data.

    Greedy k-center covers a clustered pool with a radius well below a random subset of the
    same size, and allocate_more keeps aiming at the gaps the collected data leave. Measured
    over 15 seeds (five triples of seeds): the mean radius of allocate_more was 0.81 of the
    random arm's after the first site and 0.66 after the eighth; over triples, the ratio of
    means was at most 0.92 from the second site on and at most 0.69 at the last; per seed,
    the last ratio was at most 0.78. The bounds below (0.95, 0.8, 0.85) leave room for seed
    noise; the first site is not compared (one site's few returns decide it).
    """
    seeds = range(3)
    greedy = np.array([_study_loop(s, "allocate_more") for s in seeds])
    random = np.array([_study_loop(s, "random") for s in seeds])
    ratio = greedy.mean(axis=0) / random.mean(axis=0)
    assert (ratio[1:] < 0.95).all(), (greedy.mean(axis=0), random.mean(axis=0))
    assert ratio[-1] < 0.8, ratio
    assert (greedy[:, -1] < 0.85 * random[:, -1]).all(), greedy[:, -1] / random[:, -1]
    assert (np.diff(greedy, axis=1) <= 1e-9).all()      # never grows: data only accumulate


def test_the_study_figure_draws_allocated_and_collected_images_deterministically():
    from stimulus_design import study_coverage_figure

    state = create_study(IDS, X, PARAMS)
    empty = study_coverage_figure(state, X)
    assert b"nothing allocated yet" in empty and b"<svg" in empty
    new, state = allocate_more(state, X, 2, 2.0, site="a", seed=0)
    state = record_collected(state, new[0].label, {IDS[r]: 2 for r in new[0].images})
    svg = study_coverage_figure(state, X)
    radius = coverage_of(state, X, "collected")["radius"]
    # the legend states the radius to 3 decimals, as coverage_of computes it
    assert f"collected: radius {radius:.3f}".encode() in svg and b"allocated: radius" in svg
    assert study_coverage_figure(state, X) == svg  # byte-identical: pages can cache it
    png = study_coverage_figure(state, X, fmt="png")
    assert png.startswith(b"\x89PNG")
    with pytest.raises(ParameterError, match="fmt"):
        study_coverage_figure(state, X, fmt="gif")
