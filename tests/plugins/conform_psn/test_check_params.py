"""check_params of the psn and gsn denoisers: bad presets and options fail before any data."""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import GSNDenoiser, PSNDenoiser

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.testing.fakes import make_condition_trials

BAD_PSN = [
    ({"preset": "standrd"}, "preset"),
    ({"preset": 3}, "preset"),
    ({"basis": "signals"}, "basis"),
    ({"basis": 3}, "basis"),
    ({"criterion": "bogus"}, "criterion"),
    ({"threshold_method": "local"}, "threshold_method"),
    ({"alpha": 2.0}, "alpha"),
    ({"alpha": "half"}, "alpha"),
    ({"options": ["basis"]}, "options"),
    ({"options": {"bassis": "signal"}}, "bassis"),
    ({"options": {"variance_threshold": 1.5}}, "variance_threshold"),
    ({"options": {"allowable_thresholds": [-1]}}, "allowable_thresholds"),
    ({"options": {"unit_groups": "abc", "threshold_method": "hybrid"}}, "unit_groups"),
    ({"options": {"gsn_args": {"backend": "torch"}}}, "backend"),
    ({"options": {"gsn_args": {"wantshrinkag": True}}}, "wantshrinkag"),
    ({"options": {"device": "cuda"}}, "device"),
    ({"preset": "wiener", "basis": "signal"}, "basis"),
    ({"criterion": "variance_eigenvalues", "basis": "random"}, "variance_eigenvalues"),
    ({"preset": "cv", "criterion": "variance"}, "criterion"),
    ({"preset": "cv", "basis": 9}, "'basis' parameter of PSNDenoiser.*V code"),
    ({"preset": "cv", "options": {"cv_mode": 7}}, "cv_mode"),
    ({"preset": "cv", "options": {"ranking": "snrr"}}, "ranking"),
    ({"preset": "cv", "options": {"cv_thresholds": [3, 1]}}, "cv_thresholds"),
    ({"preset": "cv", "options": {"cv_threshold_per": "population", "unit_groups": [0, 1]}},
     "unit_groups"),
]


@pytest.mark.parametrize(("params", "name"), BAD_PSN, ids=[repr(p) for p, _ in BAD_PSN])
def test_psn_bad_value_is_caught_naming_it(params, name):
    with pytest.raises(ParameterError, match=name):
        PSNDenoiser(**params).check_params()


def test_psn_missing_gsn_result_file(tmp_path):
    with pytest.raises(DataFileError, match=r"'gsn_result'.*no such file"):
        PSNDenoiser(options={"gsn_result": str(tmp_path / "cache.npz")}).check_params()
    (tmp_path / "cache.txt").write_text("x")
    with pytest.raises(
        ParameterError, match=r"'gsn_result' parameter of psn must be .*an existing \.npz file"
    ):
        PSNDenoiser(options={"gsn_result": str(tmp_path / "cache.txt")}).check_params()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"preset": "cv"},
        {"preset": "Aggressive"},
        {"preset": "wiener"},
        {"basis": "pca", "alpha": 0.5},
        {"options": {"unit_groups": [0, 0, 1], "threshold_method": "hybrid"}},
        {"preset": "cv", "basis": 3, "options": {"cv_threshold_per": "population"}},
    ],
)
def test_psn_valid_values_pass(params):
    assert PSNDenoiser(**params).check_params() is None


def test_psn_unit_groups_length_waits_for_the_data():
    """Only the length of unit_groups needs the number of units."""
    est = PSNDenoiser(threshold_method="hybrid", options={"unit_groups": [0, 1]})
    est.check_params()
    with pytest.raises(
        ParameterError, match="'unit_groups' parameter of psn must be 12 non-negative integers"
    ):
        est.fit(make_condition_trials(n_units=12, n_conditions=40))


def test_psn_fit_runs_check_params_first():
    with pytest.raises(ParameterError, match="'preset' parameter of PSNDenoiser.*Did you mean"):
        PSNDenoiser(preset="agressive").fit(make_condition_trials())


BAD_GSN = [
    ("wantshrinkage", "yes"),
    ("wantshrinkage", None),
    ("n_trials", 0),
    ("n_trials", -2.0),
    ("n_trials", "3"),
    ("n_trials", np.inf),
]


@pytest.mark.parametrize(("name", "value"), BAD_GSN, ids=[f"{n}={v!r}" for n, v in BAD_GSN])
def test_gsn_bad_value_is_caught_naming_it(name, value):
    with pytest.raises(ParameterError, match=f"'{name}' parameter of GSNDenoiser.*got {value!r}"):
        GSNDenoiser(**{name: value}).check_params()


def test_gsn_valid_values_pass():
    assert GSNDenoiser().check_params() is None
    assert GSNDenoiser(wantshrinkage=False, n_trials=2.5).check_params() is None
