from __future__ import annotations

import re

import numpy as np
import pytest

from conform_core import ParameterError, ShapeError
from conform_core.validation import (
    NAME_PATTERN,
    check_bool_param,
    check_choice,
    check_float_array,
    check_float_param,
    check_ids,
    check_int_param,
    is_valid_name,
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
    with pytest.raises(
        ParameterError, match=r"'k' parameter of X must be an int in \[1, 5\]; got 0"
    ):
        check_int_param(0, name="k", owner="X", low=1, high=5)
    with pytest.raises(ParameterError, match=r"'a' parameter must be a finite number in \(0"):
        check_float_param(0.0, name="a", low=0, low_open=True)
    with pytest.raises(ParameterError, match="Did you mean 'global'"):
        check_choice("globl", ["global", "unitwise"], name="mode")
    assert check_int_param(None, name="k", none_ok=True) is None


def test_bool_param_refuses_ints_and_strings():
    from conform_core.validation import check_bool_param

    assert check_bool_param(np.True_, name="flag") is True
    assert check_bool_param(None, name="flag", none_ok=True) is None
    for bad in (1, "yes", None):
        with pytest.raises(
            ParameterError,
            match=rf"'flag' parameter of Thing must be True or "
            rf"False; got {bad!r}",
        ):
            check_bool_param(bad, name="flag", owner="Thing")


def test_existing_path_names_kind_value_and_fix(tmp_path):
    from conform_core import DataFileError
    from conform_core.validation import check_existing_path

    (tmp_path / "f.txt").write_text("x")
    assert check_existing_path(str(tmp_path / "f.txt"), name="p") == tmp_path / "f.txt"
    assert check_existing_path(tmp_path, name="p", kind="dir") == tmp_path
    assert check_existing_path(tmp_path, name="p", kind="any") == tmp_path
    cases = [
        (tmp_path / "nope", "file", "no such file"),
        (tmp_path, "file", "a folder, not a file"),
        (tmp_path / "f.txt", "dir", "a file, not a folder"),
    ]
    for value, kind, problem in cases:
        with pytest.raises(
            DataFileError,
            match=rf"'p' parameter of Thing must be the path of an "
            rf"existing .*\({problem}\)\. Fix p\.$",
        ):
            check_existing_path(str(value), name="p", owner="Thing", kind=kind, fix="Fix $p.")
    with pytest.raises(ParameterError, match="must be the path of an existing file; got 3") as info:
        check_existing_path(3, name="p")
    assert info.value.param == "p" and info.value.value == 3


@pytest.mark.parametrize("value", ["/path/to/mosaic", "path/to/w.pt", "<DATA_DIR>/x"])
def test_existing_path_says_a_placeholder_is_one(value):
    from conform_core.validation import check_existing_path, is_placeholder

    assert is_placeholder(value)
    with pytest.raises(
        ParameterError,
        match=rf"got '{value}'\. That is a placeholder of the "
        r"example spec: point it at your folder\.",
    ):
        check_existing_path(value, name="location", kind="dir")


def test_real_paths_are_not_placeholders():
    from conform_core.validation import is_placeholder

    assert not any(is_placeholder(v) for v in ("/data/mosaic", "paths/tom", "a<b", 3, None))


@pytest.mark.parametrize(
    ("call", "param", "allowed"),
    [
        (
            lambda: check_int_param(0, name="k", owner="X", low=1, none_ok=True),
            "k",
            "an int in [1, inf) or None",
        ),
        (
            lambda: check_float_param(2.0, name="a", low=0.0, high=1.0, low_open=True),
            "a",
            "a finite number in (0.0, 1.0]",
        ),
        (
            lambda: check_choice("globl", ("global", "unitwise"), name="m"),
            "m",
            "one of 'global', 'unitwise'",
        ),
        (lambda: check_bool_param("yes", name="b"), "b", "True or False"),
    ],
)
def test_helpers_raise_structured_errors(call, param, allowed):
    """The check_* helpers raise the same structured ParameterError as the constraints."""
    with pytest.raises(ParameterError) as info:
        call()
    assert info.value.param == param and info.value.allowed == allowed


@pytest.mark.parametrize("name", ["mean", "trial-average", "pca_2", "x"])
def test_is_valid_name_accepts_short_lowercase_names(name):
    assert is_valid_name(name)


@pytest.mark.parametrize("name", ["Mean", "2pca", "-x", "", "a b", "mean\n", "é", None, 3])
def test_registry_and_scaffold_refuse_what_is_valid_name_refuses(name, tmp_path):
    """One pattern: the registry and `conform plugins new` both check names with it."""
    from conform_core import Denoiser, PluginError
    from conform_core.registry import ComponentRegistry
    from conform_core.scaffold import write_plugin_project

    assert not is_valid_name(name)
    with pytest.raises(PluginError, match=re.escape(NAME_PATTERN)):
        ComponentRegistry().add("denoiser", name, Denoiser)
    with pytest.raises(ParameterError, match=re.escape(NAME_PATTERN)):
        write_plugin_project(name, "denoiser", tmp_path)
    assert list(tmp_path.iterdir()) == []
