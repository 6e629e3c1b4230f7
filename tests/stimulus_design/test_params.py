"""Impossible designs are rejected with the arithmetic that fails."""

from __future__ import annotations

import pytest

from conform_core.exceptions import ParameterError
from stimulus_design import DesignParams, plan_design


def _plan(n_pool: int = 10_000, **kwargs):
    return plan_design(DesignParams(**kwargs), n_pool)


def test_default_sizes():
    plan = _plan(sites=2, participants_per_site=3, core=100, per_participant=500, overlap=2)
    assert plan.n_participants == 6
    assert plan.n_overlap_images == 6 * 400 // 2
    assert plan.n_distinct == 100 + 1200


def test_core_larger_than_pool():
    with pytest.raises(ParameterError, match="core=300 is larger than the pool of 200"):
        _plan(200, core=300, per_participant=400)


def test_overlap_larger_than_participants():
    with pytest.raises(ParameterError, match=r"overlap=5 .* sites=2 x "
                                             r"participants_per_site=2 = 4"):
        _plan(sites=2, participants_per_site=2, overlap=5)


def test_slots_not_divisible_by_overlap():
    with pytest.raises(ParameterError, match=r"3 participants x 101 non-core .* = 303 slots, "
                                             r"which is not divisible by overlap=2"):
        _plan(participants_per_site=3, core=0, per_participant=101, overlap=2,
              min_session_repeats=0)


def test_pool_too_small():
    with pytest.raises(ParameterError, match=r"100 core \+ 4 x 900 / 2 non-core = 1900 distinct "
                                             r"images, but the pool has only 1000"):
        _plan(1000, core=100, per_participant=1000, overlap=2)


def test_more_trials_than_slots():
    with pytest.raises(ParameterError, match=r"200 x 3 \+ 800 x 1 = 1400 presentations .* "
                                             r"> trials_per_run=100"):
        _plan(sessions=2, runs=5, trials_per_run=100)


def test_missing_within_session_repeats_for_late_sessions():
    with pytest.raises(ParameterError, match="sessions 3-4 would have only 0"):
        _plan(sessions=4, core_sessions=2, repeats=1)


def test_core_does_not_fit_its_sessions():
    with pytest.raises(ParameterError, match=r"The core needs 200 x 3 = 600 presentations in "
                                             r"sessions 1-1, which hold only 472"):
        _plan(sessions=3, repeats=1)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("runs", 0, "The 'runs' parameter of DesignParams must be an int in [1, inf); got 0."),
    ("core", -1, "The 'core' parameter of DesignParams must be an int in [0, inf); got -1."),
    ("null_trials", 1.5, "must be an int in [0, inf) or None; got 1.5."),
    ("stim_duration", 0, "must be a finite number in (0, inf); got 0."),
    ("allocation", "overlapp", ("must be one of 'overlap', 'prototypes'; got 'overlapp'. "
                                "Did you mean 'overlap'?")),
    ("stratify", "yes", "must be True or False; got 'yes'."),
])
def test_bad_value_names_the_parameter(name, value, message):
    """Checked when DesignParams is made; the message names the Python parameter, no flag."""
    with pytest.raises(ParameterError) as info:
        DesignParams(**{name: value})
    assert message in str(info.value) and "--" not in str(info.value)
    assert info.value.param == name and info.value.value == value


def test_rules_between_parameters_name_them_for_both_interfaces():
    with pytest.raises(ParameterError) as info:
        _plan(200, core=300, per_participant=400)
    assert info.value.param == "core"
    assert str(info.value).endswith("Lower core or supply more images.")
    flags = {"core": "--core"}
    assert info.value.render(flags).startswith("--core=300 is larger than the pool of 200")
