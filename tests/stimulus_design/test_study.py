"""The study state: created from a pool, saved as JSON and reloaded exactly, moved by pure functions."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conform_core.exceptions import DataFileError, ParameterError, ShapeError
from stimulus_design import (
    DesignInputs,
    DesignParams,
    StudyState,
    allocate_more,
    create_study,
    record_collected,
    release_participants,
    run_design,
)

from .conftest import clustered, write_pool

PARAMS = DesignParams(sites=2, participants_per_site=3, core=6, overlap=2, core_repeats=2,
                      repeats=2, sessions=2, runs=2, core_sessions=1, min_session_repeats=1,
                      seed=3)
X = clustered(500)
IDS = [f"img{i:04d}" for i in range(500)]


def test_new_study_has_the_core_and_no_participants():
    state = create_study(IDS, X, PARAMS)
    assert len(state.core) == 6 and len(set(state.core)) == 6
    assert state.participants == () and state.revision == 0
    assert (state.quotas()[list(state.core)] == -1).all()
    assert (np.delete(state.quotas(), list(state.core)) == 2).all()


def test_default_core_is_the_core_conform_design_picks(tmp_path):
    """Same pool and seed: the study's core is the core of a ``conform design`` package."""
    pool = write_pool(tmp_path)
    x = np.load(pool["emb"])
    ids = pool["ids"].read_text().split()
    params = replace(PARAMS, sites=1, participants_per_site=2, per_participant=26)
    run_design(params, DesignInputs(embeddings=pool["emb"], ids=pool["ids"]), tmp_path / "pkg")
    rows = [r.split("\t") for r in (tmp_path / "pkg/stimuli.tsv").read_text().splitlines()[1:]]
    core_ids = {r[0] for r in rows if r[3] == "core"}
    state = create_study(ids, x, params)
    assert {ids[r] for r in state.core} == core_ids


def test_core_and_quotas_can_be_given():
    state = create_study(IDS, X, PARAMS, core=IDS[:6], quotas={"img0100": 0, "img0101": 5})
    assert state.core == tuple(range(6))
    assert state.quotas()[100] == 0 and state.quotas()[101] == 5


def test_json_round_trip_is_exact():
    state = create_study(IDS, X, PARAMS, quotas={"img0100": 0})
    new, state = allocate_more(state, X, 3, 2.0, site="oxford", seed=1)
    state = record_collected(state, new[0].label, {IDS[r]: 2 for r in new[0].images})
    state = record_collected(state, "lab-x/sub-01", {IDS[7]: 4})
    state = release_participants(state, [new[2].label])
    text = state.to_json()
    again = StudyState.from_json(text)
    assert again == state
    assert again.to_json() == text
    assert [p.status for p in again.participants] == ["collected", "allocated", "released"]


def test_corrupt_or_inconsistent_json_is_refused():
    state = create_study(IDS, X, PARAMS)
    _, state = allocate_more(state, X, 2, 2.0, site="oxford", seed=1)
    with pytest.raises(DataFileError, match="not valid JSON"):
        StudyState.from_json("{")
    with pytest.raises(DataFileError, match="format"):
        StudyState.from_json(json.dumps({"format": "something-else"}))
    data = state.to_dict()
    del data["core"]
    with pytest.raises(DataFileError, match="incomplete or corrupt"):
        StudyState.from_dict(data)
    data = state.to_dict()
    data["quota_overrides"] = [[data["participants"][0]["images"][0], 1]]  # now over quota
    with pytest.raises(DataFileError, match="beyond their quota"):
        StudyState.from_dict(data)


def test_embeddings_are_checked_against_the_study():
    state = create_study(IDS, X, PARAMS)
    with pytest.raises(ShapeError, match=r"\(500, n_features\)"):
        allocate_more(state, X[:100], 1, 2.0, site="a", seed=0)
    with pytest.raises(ParameterError, match="embeddings differ from the study's"):
        allocate_more(state, clustered(500, seed=9), 1, 2.0, site="a", seed=0)


def test_record_collected_adds_counts_once_per_contributor():
    state = create_study(IDS, X, PARAMS)
    new, state = allocate_more(state, X, 2, 2.0, site="oxford", seed=1)
    before = state
    state = record_collected(state, "sub-01", {IDS[new[0].images[0]]: 2, IDS[0]: 1})
    assert before.collected == () and before.revision + 1 == state.revision
    people, shown = state.collected_counts()
    assert people[new[0].images[0]] == 1 and shown[new[0].images[0]] == 2
    state = record_collected(state, "lab-x", {IDS[0]: 3})
    assert state.collected_counts()[0][0] == 2 and state.collected_counts()[1][0] == 4
    with pytest.raises(ParameterError, match="recorded before"):
        record_collected(state, "lab-x", {IDS[0]: 1})
    with pytest.raises(ParameterError, match=r"Did you mean 'img0\d+'"):
        record_collected(state, "lab-y", {"img001": 1})
    with pytest.raises(ParameterError, match="presentations >= 1"):
        record_collected(state, "lab-y", {IDS[0]: 0})


def test_release_gives_the_slots_back_but_not_the_label():
    state = create_study(IDS, X, PARAMS)
    new, state = allocate_more(state, X, 1, 2.0, site="oxford", seed=1)
    rows = list(new[0].images)
    assert (state.allocated_counts()[rows] == 1).all()
    released = release_participants(state, [new[0].label])
    assert (released.allocated_counts()[rows] == 0).all()
    more, _ = allocate_more(released, X, 1, 2.0, site="oxford", seed=1)
    assert more[0].label == "sub-02"
    with pytest.raises(ParameterError, match="labels"):
        release_participants(state, ["sub-99"])
    collected = record_collected(state, "sub-01", {IDS[rows[0]]: 1})
    with pytest.raises(ParameterError, match="without recorded data"):
        release_participants(collected, ["sub-01"])


def test_bad_designs_and_ids_are_refused():
    with pytest.raises(ParameterError, match="allocation"):
        create_study(IDS, X, replace(PARAMS, allocation="prototypes"))
    with pytest.raises(ParameterError, match="ids"):
        create_study(IDS[:-1] + [IDS[0]], X, PARAMS)
    with pytest.raises(ShapeError):
        create_study(IDS[:10], X, PARAMS)
    with pytest.raises(ParameterError, match="Did you mean"):
        create_study(IDS, X, PARAMS, core=["img00001"] + IDS[1:6])
