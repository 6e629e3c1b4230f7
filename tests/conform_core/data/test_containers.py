from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conform_core import (
    ConditionData,
    Events,
    ShapeError,
    StimulusSet,
    Subject,
    TimeSeriesData,
    TrialData,
    Units,
)
from conform_core.testing import strategies as cst


@given(cst.condition_data(), st.data())
def test_select_follows_requested_order(cd, data):
    perm = data.draw(st.permutations(range(cd.n_conditions)))
    ids = cd.stimulus_ids[np.array(perm, dtype=int)]
    np.testing.assert_array_equal(cd.select(ids).data, cd.data[:, np.array(perm, dtype=int)])


def test_condition_data_select_missing_id_is_named():
    cd = ConditionData(np.zeros((1, 2)), ["a", "b"])
    with pytest.raises(ShapeError, match=r"no stimulus id\(s\) \['z'\]"):
        cd.select(["z"])
    assert cd.as_targets().shape == (2, 1)


def test_units_must_match_data():
    with pytest.raises(ShapeError, match="describes 3 units but the data has 2"):
        ConditionData(np.zeros((2, 1)), ["a"], units=Units.default(3))
    units = Units(ids=["v1", "v2"], roi=["V1", "V2"], indices=[10, 20])
    assert units.in_rois("V1").tolist() == [True, False]
    assert units.take([1]).indices.tolist() == [20]


def _events(onsets, ids):
    return Events(np.asarray(onsets, float), np.ones(len(onsets)), ids)


def test_timeseries_validation_names_the_run():
    run = np.zeros((3, 10))
    ts = TimeSeriesData([run, run], [_events([0, 4], ["a", "b"]), _events([2], ["a"])], tr=2.0)
    assert ts.n_runs == 2 and ts.n_events == 3
    assert ts.stimulus_ids().tolist() == ["a", "b", "a"]
    with pytest.raises(ShapeError, match="one Events per run: 2 run\\(s\\) but 1"):
        TimeSeriesData([run, run], [_events([0], ["a"])], tr=2.0)
    with pytest.raises(ShapeError, match="runs\\[1\\] has 4 units but run 0 has 3"):
        TimeSeriesData([run, np.zeros((4, 10))], [_events([0], ["a"])] * 2, tr=2.0)
    with pytest.raises(ShapeError, match="Run 0 lasts 20 s"):
        TimeSeriesData([run], [_events([25], ["a"])], tr=2.0)
    with pytest.raises(ShapeError, match="tr must be a positive"):
        TimeSeriesData([run], [_events([0], ["a"])], tr=0)
    with pytest.raises(ShapeError, match="NaN"):
        TimeSeriesData([np.full((1, 3), np.nan)], [_events([0], ["a"])], tr=1.0)


def test_timeseries_confounds_are_checked_per_run():
    run = np.zeros((3, 10))
    events = [_events([0], ["a"]), _events([2], ["a"])]
    conf = [np.arange(20.0).reshape(10, 2), np.ones((10, 2))]
    ts = TimeSeriesData([run, run], events, tr=2.0, confounds=conf,
                        confound_names=["trans_x", "rot_z"])
    assert ts.n_confounds == 2 and ts.confound_names == ("trans_x", "rot_z")
    assert ts.confounds is not None and not ts.confounds[0].flags.writeable
    assert TimeSeriesData([run, run], events, tr=2.0).n_confounds == 0
    assert TimeSeriesData([run], events[:1], tr=2.0, confounds=[np.zeros((10, 0))]).confounds is None
    assert TimeSeriesData([run], events[:1], tr=2.0, confounds=[np.ones((10, 1))]).confound_names == ("c0",)
    with pytest.raises(ShapeError, match="2 entries but there are 1 runs"):
        TimeSeriesData([run], events[:1], tr=2.0, confounds=conf)
    with pytest.raises(ShapeError, match="confounds\\[1\\] has 9 time points but run 1 has 10"):
        TimeSeriesData([run, run], events, tr=2.0, confounds=[conf[0], np.ones((9, 2))])
    with pytest.raises(ShapeError, match="confounds\\[1\\] has 3 columns but run 0 has 2"):
        TimeSeriesData([run, run], events, tr=2.0, confounds=[conf[0], np.ones((10, 3))])
    with pytest.raises(ShapeError, match="NaN"):
        TimeSeriesData([run], events[:1], tr=2.0, confounds=[np.full((10, 1), np.nan)])
    with pytest.raises(ShapeError, match="1 names for 2 confound"):
        TimeSeriesData([run], events[:1], tr=2.0, confounds=conf[:1], confound_names=["x"])
    with pytest.raises(ShapeError, match="without confounds"):
        TimeSeriesData([run], events[:1], tr=2.0, confound_names=["x"])


def test_events_reject_bad_durations():
    with pytest.raises(ShapeError, match="duration must be > 0"):
        Events([0.0], [0.0], ["a"])


def test_stimulus_set_embeddings_become_float32():
    s = StimulusSet(ids=["a", "b"], embeddings=np.ones((2, 3)))
    assert s.embeddings.dtype == np.float32
    assert s.select(["b"]).ids.tolist() == ["b"]
    with pytest.raises(ShapeError, match="one row per stimulus \\(2\\); got 3"):
        StimulusSet(ids=["a", "b"], embeddings=np.ones((3, 3)))


def test_subject_checks_split_and_stimuli():
    stimuli = StimulusSet(ids=["a", "b", "c"])
    trials = TrialData(np.zeros((3, 2)), ["a", "b", "c"])
    subject = Subject("sub-01", stimuli, trials, train_ids=["a", "b"], test_ids=["c"])
    assert subject.has_split
    with pytest.raises(ShapeError, match="train and test stimuli overlap"):
        Subject("sub-01", stimuli, trials, train_ids=["a"], test_ids=["a"])
    with pytest.raises(
        ShapeError, match=r"stimulus id\(s\) \['c'\] that are not in its StimulusSet"
    ):
        Subject("sub-01", StimulusSet(ids=["a", "b"]), trials)
    with pytest.raises(ShapeError, match="neither trials nor timeseries"):
        Subject("sub-01", stimuli)
