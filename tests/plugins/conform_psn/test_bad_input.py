"""Bad input: each case is a clear error whose message names the value and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from conform_psn import perform_gsn, psn, psn_cv

from conform_core.exceptions import ParameterError, ShapeError


@pytest.fixture
def data(rng):
    signal = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 30))
    return signal[:, :, None] + rng.standard_normal((6, 30, 3))


@pytest.mark.parametrize("fn", [perform_gsn, psn, psn_cv])
def test_fewer_than_two_trials(fn, data):
    with pytest.raises(ShapeError, match=r"at least 2 trials.*n_trials=1"):
        fn(data[:, :, :1])


@pytest.mark.parametrize("fn", [perform_gsn, psn])
def test_condition_without_a_complete_trial(fn, data):
    data[:, 4, :] = np.nan
    with pytest.raises(ShapeError, match=r"condition\(s\) \[4\].*no trial that is valid"):
        fn(data)


@pytest.mark.parametrize("fn", [perform_gsn, psn])
def test_unit_nan_everywhere(fn, data):
    data[2] = np.nan
    with pytest.raises(ShapeError, match=r"unit\(s\) \[2\].*NaN in every trial.*Drop them"):
        fn(data)


@pytest.mark.parametrize("fn", [perform_gsn, psn, psn_cv])
def test_constant_unit(fn, data):
    data[3] = 7.0
    with pytest.raises(ShapeError, match=r"unit\(s\) \[3\].*no trial-to-trial variability"):
        fn(data)


@pytest.mark.parametrize("fn", [perform_gsn, psn, psn_cv])
def test_infinite_values(fn, data):
    data[0, 0, 0] = np.inf
    with pytest.raises(ShapeError, match="infinite value.*Only NaN"):
        fn(data)


@pytest.mark.parametrize("bad", [[[[1.0, 2.0]]], np.ones((3, 4)), np.ones((2, 3, 2), bool),
                                 np.array([[["a", "b"]]])])
def test_not_a_3d_numeric_array(bad):
    with pytest.raises(ShapeError, match=r"3-D numeric array of shape \(units, conditions"):
        psn(bad)


def test_legacy_rejects_nan_like_upstream(data):
    data[:, 0, 2] = np.nan
    with pytest.raises(ShapeError, match="does not accept missing trials.*psn\\(data\\)"):
        psn_cv(data)


def test_unknown_preset_suggests(data):
    with pytest.raises(
        ParameterError,
        match="'preset_or_opt' parameter of psn must be one of 'standard'.*got 'agressive'. Did you mean 'aggressive'",
    ):
        psn(data, "agressive")


def test_unknown_option_suggests(data):
    with pytest.raises(
        ParameterError,
        match="'criterium' parameter of psn must be a known name.*Did you mean 'criterion'",
    ):
        psn(data, criterium="prediction")


def test_legacy_option_in_current_api_points_to_cv(data):
    with pytest.raises(ParameterError, match="cv_mode.*psn\\(data, 'cv'"):
        psn(data, cv_mode=0)


def test_bad_choice_suggests(data):
    with pytest.raises(
        ParameterError,
        match="'criterion' parameter of psn must be one of.*Did you mean 'prediction'",
    ):
        psn(data, criterion="predictoin")


def test_unknown_gsn_option(data):
    with pytest.raises(
        ParameterError,
        match="'wantshrink' parameter of perform_gsn must be a known name.*Did you mean 'wantshrinkage'",
    ):
        perform_gsn(data, {"wantshrink": False})


def test_wiener_conflicts(data):
    with pytest.raises(ParameterError, match="Wiener.*Remove: basis='difference'"):
        psn(data, "wiener", basis="difference")


def test_variance_eigenvalues_needs_eigenvalues(data):
    with pytest.raises(ParameterError, match="variance_eigenvalues.*criterion='variance'"):
        psn(data, basis="random", criterion="variance_eigenvalues")


def test_allowable_beyond_dimensions(data):
    with pytest.raises(ParameterError, match="exceed the 6 basis dimensions"):
        psn(data, allowable_thresholds=[2, 9])


@pytest.mark.parametrize("value", [-1, 1.5, [[1, 2]], "3"])
def test_bad_allowable_thresholds(data, value):
    with pytest.raises(ParameterError, match="allowable_thresholds"):
        psn(data, allowable_thresholds=value)


@pytest.mark.parametrize("alpha", [-0.1, 1.2, True, np.nan])
def test_bad_alpha(data, alpha):
    with pytest.raises(
        ParameterError,
        match="'alpha' parameter of psn must be a finite number in \\[0, 1\\] or None",
    ):
        psn(data, alpha=alpha)


def test_custom_basis_shape(data):
    with pytest.raises(ParameterError, match="shape \\(n_units=6, D\\)"):
        psn(data, basis=np.eye(5))


def test_unit_groups_length(data):
    with pytest.raises(
        ParameterError, match="'unit_groups' parameter of psn must be 6 non-negative integers"
    ):
        psn(data, threshold_method="hybrid", unit_groups=[0, 1])


def test_legacy_bad_threshold_scope(data):
    with pytest.raises(ParameterError, match="cv_threshold_per.*Did you mean 'population'"):
        psn_cv(data, 0, {"cv_threshold_per": "populaton"})


def test_gsn_cache_of_wrong_size(data):
    with pytest.raises(ParameterError, match="gsn_result\\['cSb'\\] must be a finite \\(6, 6\\)"):
        psn(data, gsn_result={"cSb": np.eye(4), "cNb": np.eye(4)})


BAD_GSN_OPTIONS = [
    (
        {"backend": "torch"},
        (
            r"'backend' parameter of perform_gsn must be one of 'auto', 'numpy'; "
            r"got 'torch'\..*not available"
        ),
    ),
    ({"uneven": "missing"}, r"'uneven' parameter .*got 'missing'\. Per-unit missingness"),
    ({"returns": ["cSb", "cSbb"]}, r"'returns' parameter .*Did you mean 'cSb'"),
    ({"shrinklevels": []}, "'shrinklevels' parameter .*a non-empty list of finite numbers"),
    ({"device": "cuda"}, "'device' parameter .*conform_psn runs on the CPU"),
    ({"wantshrinkage": "yes"}, "'wantshrinkage' parameter .*True or False"),
]


@pytest.mark.parametrize(
    ("opt", "pattern"), BAD_GSN_OPTIONS, ids=[repr(o) for o, _ in BAD_GSN_OPTIONS]
)
def test_bad_gsn_option_values(data, opt, pattern):
    with pytest.raises(ParameterError, match=pattern):
        perform_gsn(data, opt)


def test_option_dicts_must_be_dicts(data):
    with pytest.raises(ParameterError, match="'opt' parameter of perform_gsn must be a dict"):
        perform_gsn(data, [("wantshrinkage", False)])
    with pytest.raises(ParameterError, match="'opt' parameter of psn must be a dict"):
        psn(data, "standard", ["alpha"])
    with pytest.raises(ParameterError, match="'opt' parameter of psn_cv must be a dict"):
        psn_cv(data, 0, "population")


def test_options_dict_given_twice(data):
    with pytest.raises(ParameterError, match="options dict once.*Merge them"):
        psn(data, {"alpha": 0.5}, {"alpha": 0.2})


def test_legacy_basis_code(data):
    with pytest.raises(
        ParameterError,
        match=r"'V' parameter of psn_cv must be an int in \[0, 5\]"
        r".*5 \(ica\)",
    ):
        psn_cv(data, 9)


def test_every_psn_option_is_declared_once():
    """The constraint table is the list of options: every option psn fills is declared."""
    from conform_psn._options import PSN_CONSTRAINTS, resolve_options

    assert set(resolve_options(None, {}, 4)) == set(PSN_CONSTRAINTS)
