from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from conform_core import ConditionTrials, ShapeError, TrialData
from conform_core.testing import strategies as cst


@given(cst.trial_data())
def test_by_condition_then_flatten_is_identity_on_valid_trials(trials):
    """Every trial lands in its condition, in presentation order; padding is NaN."""
    ct = trials.by_condition()
    for c, sid in enumerate(ct.stimulus_ids):
        rows = trials.betas[trials.stimulus_ids == sid]
        got = ct.data[:, c, : len(rows)].T
        np.testing.assert_array_equal(got, rows)
        assert np.isnan(ct.data[:, c, len(rows):]).all()
    assert ct.trial_counts().sum() == trials.n_trials


@given(cst.condition_trials())
def test_mean_ignores_missing_trials(ct):
    expected = np.nanmean(ct.data, axis=2)
    np.testing.assert_allclose(ct.mean().data, expected, rtol=1e-12, atol=1e-9)


def test_containers_are_read_only_views():
    betas = np.zeros((4, 2))
    trials = TrialData(betas, ["a", "b", "a", "b"])
    assert np.shares_memory(trials.betas, betas)
    with pytest.raises(ValueError):
        trials.betas[0, 0] = 1
    betas[0, 0] = 1  # the caller's array stays writable
    with pytest.raises(AttributeError):
        trials.subject = "x"


def test_float32_kept_and_ints_cast():
    assert TrialData(np.zeros((2, 2), np.float32), ["a", "b"]).betas.dtype == np.float32
    assert TrialData(np.zeros((2, 2), int), ["a", "b"]).betas.dtype == np.float64


def test_bad_inputs_name_value_and_fix():
    with pytest.raises(ShapeError, match=r"stimulus_ids must have one id per entry.*: 3; got 2"):
        TrialData(np.zeros((3, 2)), ["a", "b"])
    with pytest.raises(ShapeError, match=r"betas must be 2-D \(trials, units\)"):
        TrialData(np.zeros(3), ["a", "b", "c"])
    with pytest.raises(ShapeError, match="infinite"):
        TrialData(np.array([[np.inf]]), ["a"])
    with pytest.raises(ShapeError, match="sessions must be 1-D of length 2"):
        TrialData(np.zeros((2, 1)), ["a", "b"], sessions=[0])
    with pytest.raises(ShapeError, match=r"duplicates \['a'\]"):
        ConditionTrials(np.zeros((1, 2, 1)), ["a", "a"])


def test_select_and_by_condition_with_explicit_order():
    trials = TrialData(np.arange(8.0).reshape(4, 2), ["a", "b", "a", "c"])
    ct = trials.by_condition(["c", "a"])
    assert ct.stimulus_ids.tolist() == ["c", "a"]
    np.testing.assert_array_equal(ct.data[:, 1, :], [[0, 4], [1, 5]])
    with pytest.raises(ShapeError, match=r"no trial of stimulus id\(s\) \['z'\]"):
        trials.by_condition(["z"])
    assert trials.select(["a"]).n_trials == 2


def test_mean_of_condition_without_trials_is_an_error():
    data = np.full((1, 2, 2), np.nan)
    data[0, 0] = 1
    with pytest.raises(ShapeError, match=r"\['b'\] have no valid trial"):
        ConditionTrials(data, ["a", "b"]).mean()
