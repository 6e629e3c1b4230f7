from __future__ import annotations

import numpy as np
import pytest

from conform_core import ParameterError, ShapeError
from conform_core.validation import (
    check_choice,
    check_float_array,
    check_float_param,
    check_ids,
    check_int_param,
)


def test_float_array_keeps_float32_and_casts_ints():
    assert check_float_array(np.zeros((2, 2), np.float32), ndim=2, name="x").dtype == np.float32
    assert check_float_array(np.zeros((2, 2), int), ndim=2, name="x").dtype == np.float64


def test_float_array_messages_name_value_and_fix():
    with pytest.raises(ShapeError, match=r"x must be 2-D \(a, b\); got array of shape \(3,\)"):
        check_float_array(np.zeros(3), ndim=2, name="x", axes="(a, b)")
    with pytest.raises(ShapeError, match=r"1 NaN value\(s\) \(first at index \(0, 1\)\)"):
        check_float_array(np.array([[0, np.nan]]), ndim=2, name="x")
    with pytest.raises(ShapeError, match="infinite"):
        check_float_array(np.array([[0, np.inf]]), ndim=2, name="x", allow_nan=True)
    with pytest.raises(ShapeError, match="numeric"):
        check_float_array(np.array([["a"]]), ndim=2, name="x")


def test_ids_reject_duplicates_and_wrong_length():
    with pytest.raises(ShapeError, match=r"duplicates \['a'\]"):
        check_ids(["a", "b", "a"], n=3, name="ids")
    with pytest.raises(ShapeError, match="one id per entry.*: 2; got 3"):
        check_ids(["a", "b", "c"], n=2, name="ids")
    assert check_ids([1, 2], n=2, name="ids").tolist() == ["1", "2"]


def test_params_name_owner_range_and_fix():
    with pytest.raises(ParameterError, match=r"'k' parameter of X must be an int in \[1, 5\]; got 0"):
        check_int_param(0, name="k", owner="X", low=1, high=5)
    with pytest.raises(ParameterError, match=r"'a' parameter must be a finite number in \(0"):
        check_float_param(0.0, name="a", low=0, low_open=True)
    with pytest.raises(ParameterError, match="Did you mean 'global'"):
        check_choice("globl", ["global", "unitwise"], name="mode")
    assert check_int_param(None, name="k", none_ok=True) is None
