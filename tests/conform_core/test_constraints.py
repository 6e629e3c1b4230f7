"""The declarative parameter constraints: each constraint, the engine, the decorator and the
base class's check_params."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pytest

from conform_core.components import Denoiser
from conform_core.constraints import (
    Boolean,
    InstanceOf,
    Interval,
    IsCallable,
    NonEmptyStr,
    Options,
    PathLike,
    SequenceOf,
    check_constraints,
    check_declared_names,
    check_param,
    describe_constraints,
    invalid_value_for,
    make_constraint,
    validate_params,
)
from conform_core.data import ConditionData, ConditionTrials
from conform_core.exceptions import DataFileError, ParameterError

# --------------------------------------------------------------------- each constraint
CASES = [
    (Interval(int, 1, None), [1, 7, np.int64(3)], [0, 1.5, True, "2", None], "an int in [1, inf)"),
    (Interval(int, None, 5), [-9, 5], [6], "an int in (-inf, 5]"),
    (
        Interval(float, 0, 1, closed="right"),
        [0.5, 1, np.float32(0.1)],
        [0.0, 1.5, np.nan, np.inf, False, "0.5"],
        "a finite number in (0, 1]",
    ),
    (
        Interval(float, 0.0, None, closed="neither"),
        [1e-9, 1e9],
        [0.0, -1.0],
        "a finite number in (0.0, inf)",
    ),
    (
        Options(("auto", "svd")),
        ["auto", "svd"],
        ["Auto", 1, None, ["auto"]],
        "one of 'auto', 'svd'",
    ),
    (Options({"b", "a"}), ["a"], ["c"], "one of 'a', 'b'"),
    (Options(("loo",)), ["loo"], ["lo"], "'loo'"),
    (Options((True, 1.5)), [True, 1.5], [1, "True"], "one of True, 1.5"),
    (Boolean(), [True, False, np.bool_(True)], [0, 1, "yes", None], "True or False"),
    (InstanceOf(np.ndarray), [np.zeros(2)], [[0, 0]], "an instance of ndarray"),
    (InstanceOf(Mapping, "a dict"), [{}], [[]], "a dict"),
    (NonEmptyStr(), ["x"], ["", 3, None], "a non-empty string"),
    (IsCallable(), [len, lambda: 0], ["len", 3], "a callable"),
    (
        SequenceOf(Options(("train", "test")), min_length=1),
        [["train"], ("test", "train")],
        [[], "train", ["tests"], [1]],
        "a non-empty list of values among 'train', 'test'",
    ),
    (SequenceOf(str), [[], ["a"]], [[1], "a"], "a list of str"),
]


@pytest.mark.parametrize(("constraint", "good", "bad", "text"), CASES, ids=[c[3] for c in CASES])
def test_constraint_accepts_refuses_and_describes_itself(constraint, good, bad, text):
    assert all(constraint.is_satisfied_by(v) for v in good)
    assert not any(constraint.is_satisfied_by(v) for v in bad)
    assert constraint.describe() == str(constraint) == text
    assert not constraint.is_satisfied_by(constraint.invalid_value())


def test_path_constraint(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    file, folder = PathLike("file"), PathLike("dir")
    assert file.is_satisfied_by(str(tmp_path / "f.txt")) and folder.is_satisfied_by(tmp_path)
    assert not file.is_satisfied_by(str(tmp_path)) and not folder.is_satisfied_by(
        tmp_path / "f.txt"
    )
    assert not file.is_satisfied_by("/path/to/weights.pt") and not file.is_satisfied_by("")
    assert PathLike("dir", must_exist=False).is_satisfied_by(str(tmp_path / "new"))
    assert not PathLike("dir", must_exist=False).is_satisfied_by("<DATA_DIR>")
    assert file.describe() == "the path of an existing file"
    assert PathLike("any", must_exist=False).describe() == "the path of a file or folder"


def test_declaration_items_become_constraints():
    assert describe_constraints([Interval(int, 1, None), None]) == "an int in [1, inf) or None"
    assert (
        describe_constraints([None, Boolean(), np.ndarray])
        == "True or False, an instance of ndarray or None"
    )
    assert isinstance(make_constraint(dict), InstanceOf)
    with pytest.raises(TypeError, match=r"Options\(\(\.\.\.\)\)"):
        make_constraint("auto")


def test_bad_declarations_fail_loudly():
    with pytest.raises(TypeError):
        Interval(str, 0, 1)
    with pytest.raises(TypeError):
        Interval(int, 2, 1)
    with pytest.raises(TypeError):
        Options(())
    with pytest.raises(TypeError):
        PathLike("folder")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "constraints",
    [
        [Interval(int, 2, None), Options(("loo",))],
        [Interval(int, 1, None), None],
        [Boolean()],
        [PathLike("dir"), None],
        [Options(("a",)), NonEmptyStr()],
        [SequenceOf(int, min_length=1)],
        [InstanceOf(dict), None],
        [IsCallable(), None],
    ],
)
def test_invalid_value_breaks_every_alternative(constraints):
    bad = invalid_value_for(constraints)
    assert not any(make_constraint(c).is_satisfied_by(bad) for c in constraints)


def test_invalid_value_cannot_be_built_for_anything_goes():
    with pytest.raises(ValueError, match="No invalid value"):
        invalid_value_for([object])


# --------------------------------------------------------------------- the engine
def test_check_param_returns_the_value_unchanged():
    value = [1.0, 2.0]
    assert check_param(value, [SequenceOf(float)], name="x") is value


def test_check_param_message_names_parameter_owner_value_and_fix():
    with pytest.raises(ParameterError) as info:
        check_param(
            -3,
            [Interval(int, 0, None), None],
            name="n_components",
            owner="PCADenoiser",
            fix="Use None to choose the rank by cross-validation.",
        )
    assert str(info.value) == (
        "The 'n_components' parameter of PCADenoiser must be an int in "
        "[0, inf) or None; got -3. Use None to choose the rank by "
        "cross-validation."
    )
    assert info.value.allowed == "an int in [0, inf) or None"


def test_a_mistyped_option_gets_the_closest_before_the_fix():
    with pytest.raises(ParameterError) as info:
        check_param(
            "lo",
            [Interval(int, 2, None), Options(("loo",))],
            name="cv",
            owner="R",
            fix="Use 2 or more folds, or $cv='loo'.",
        )
    assert str(info.value).endswith(
        "got 'lo'. Did you mean 'loo'? Use 2 or more folds, or cv='loo'."
    )
    with pytest.raises(ParameterError, match=r"got \['train', 'tests'\]\. Did you mean 'test'\?"):
        check_param(["train", "tests"], [SequenceOf(Options(("train", "test")))], name="phases")


def test_paths_keep_their_specific_errors(tmp_path):
    """A placeholder is a ParameterError listing every alternative; a missing file a
    DataFileError saying which problem."""
    with pytest.raises(ParameterError) as info:
        check_param("/path/to/study", [PathLike("dir"), None], name="location", owner="D")
    assert str(info.value) == (
        "The 'location' parameter of D must be the path of an existing "
        "folder or None; got '/path/to/study'. That is a placeholder of "
        "the example spec: point it at your folder."
    )
    with pytest.raises(DataFileError, match=r"got '.*nope' \(no such file\)\. Fix it\."):
        check_param(str(tmp_path / "nope"), [PathLike("file")], name="w", fix="Fix it.")
    with pytest.raises(ParameterError, match="must be the path of an existing file or None; got 3"):
        check_param(3, [PathLike("file"), None], name="w")


def test_check_constraints_checks_declared_names_in_order():
    constraints = {"a": [Interval(int, 0, None)], "b": [Boolean()]}
    check_constraints(constraints, {"a": 1, "b": True, "c": "anything"}, owner="f")
    check_constraints(constraints, {"b": False}, owner="f")  # a missing name keeps its default
    with pytest.raises(ParameterError) as info:
        check_constraints(constraints, {"a": -1, "b": "no"}, owner="f", fixes={"a": "Use 0."})
    assert info.value.param == "a" and str(info.value).endswith("got -1. Use 0.")


def test_check_constraints_can_refuse_unknown_keys():
    """For official-style option dicts."""
    constraints = {"wantverbose": [Boolean()], "n_boot": [Interval(int, 1, None)]}
    with pytest.raises(ParameterError) as info:
        check_constraints(constraints, {"wantverbos": True}, owner="psn", reject_unknown=True)
    assert info.value.param == "wantverbos"
    assert "a known name (n_boot, wantverbose)" in str(info.value)
    assert str(info.value).endswith("Did you mean 'wantverbose'?")


def test_declared_names_must_be_parameters():
    check_declared_names({"a": []}, ["a", "b"], owner="f", fixes={"a": "x"})
    with pytest.raises(TypeError, match=r"f declares constraints or fixes for \['c', 'd'\]"):
        check_declared_names({"a": [], "c": []}, ["a"], owner="f", fixes={"d": "x"})


# --------------------------------------------------------------------- the decorator
@validate_params(
    {"k": [Interval(int, 1, None)], "how": [Options(("top", "bottom"))]},
    fixes={"k": "Use $k=1 or more."},
)
def _pick(values: list[int], k: int = 3, *, how: str = "top") -> list[int]:
    """Pick k values."""
    ordered = sorted(values)
    return ordered[-k:] if how == "top" else ordered[:k]


def test_decorator_checks_arguments_then_runs_the_body():
    assert _pick([3, 1, 2], 2) == [2, 3]
    assert _pick([3, 1, 2], k=1, how="bottom") == [1]
    with pytest.raises(ParameterError) as info:
        _pick([3, 1, 2], k=0)
    assert str(info.value) == (
        "The 'k' parameter of _pick must be an int in [1, inf); got 0. Use k=1 or more."
    )
    with pytest.raises(ParameterError, match="Did you mean 'top'"):
        _pick([1], how="tpo")


def test_decorator_checks_defaults_and_keeps_the_signature():
    @validate_params({"k": [Interval(int, 1, None)]}, owner="select")
    def broken_default(k: int = 0) -> int:
        return k

    with pytest.raises(ParameterError, match="The 'k' parameter of select"):
        broken_default()
    assert list(inspect.signature(_pick).parameters) == ["values", "k", "how"]
    assert _pick.__doc__ == "Pick k values." and _pick.__name__ == "_pick"


def test_decorator_leaves_bad_calls_to_python():
    with pytest.raises(TypeError):
        _pick()  # type: ignore[call-arg]


def test_decorator_refuses_a_constraint_on_a_missing_argument():
    with pytest.raises(TypeError, match=r"declares constraints or fixes for \['kk'\]"):

        @validate_params({"kk": [Boolean()]})
        def f(k: int = 1) -> int:
            return k


# --------------------------------------------------------------------- components
class _Shrink(Denoiser):
    """Shrink the trial means towards zero (a toy for the base check_params).

    Parameters
    ----------
    factor : float, default=0.5
    mode : {"all", "positive"}, default="all"
    n_keep : int or None, default=None
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "factor": [Interval(float, 0, 1)],
        "mode": [Options(("all", "positive"))],
        "n_keep": [Interval(int, 1, None), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {"factor": "Use e.g. $factor=0.5."}

    def __init__(self, factor: float = 0.5, mode: str = "all", n_keep: int | None = None):
        self.factor = factor
        self.mode = mode
        self.n_keep = n_keep

    def _check_params_extra(self) -> None:
        if self.mode == "positive" and self.n_keep is not None:
            raise ParameterError(
                param="n_keep", value=self.n_keep, owner=self, allowed="None when $mode='positive'"
            )

    def _fit(self, data: ConditionTrials) -> _Shrink:
        self.n_units_ = data.n_units
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        means = data.mean()
        return means.with_data(means.data * self.factor)


def test_base_check_params_validates_declarations_then_the_hook():
    _Shrink().check_params()
    with pytest.raises(ParameterError) as info:
        _Shrink(factor=2).check_params()
    assert str(info.value) == (
        "The 'factor' parameter of _Shrink must be a finite number in "
        "[0, 1]; got 2. Use e.g. factor=0.5."
    )
    with pytest.raises(
        ParameterError,
        match="'n_keep' parameter of _Shrink must be None when mode='positive'; got 3",
    ):
        _Shrink(mode="positive", n_keep=3).check_params()


def test_fit_runs_the_declared_checks_first():
    from conform_core.testing.fakes import make_condition_trials

    with pytest.raises(ParameterError, match="'mode' parameter of _Shrink"):
        _Shrink(mode="some").fit(make_condition_trials())


def test_a_constraint_on_a_missing_parameter_is_a_bug():
    class Misnamed(_Shrink):
        """A toy whose declaration names a parameter it does not take.

        Parameters
        ----------
        factor, mode, n_keep : as _Shrink
        """

        _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
            **_Shrink._parameter_constraints,
            "n_kept": [Interval(int, 1, None)],
        }

    with pytest.raises(TypeError, match=r"Misnamed declares constraints or fixes for \['n_kept'\]"):
        Misnamed().check_params()


# --------------------------------------------------------------------- the contract kit
def test_kit_passes_a_component_that_enforces_its_declarations():
    from conform_core.testing.checks import check_param_validation

    check_param_validation(_Shrink())


def test_kit_catches_a_check_params_that_ignores_the_declarations():
    from conform_core.testing.checks import check_param_validation

    class Lenient(_Shrink):
        """Declares constraints but never checks them.

        Parameters
        ----------
        factor, mode, n_keep : as _Shrink
        """

        def check_params(self) -> None:
            pass

    with pytest.raises(AssertionError, match=r"Lenient.check_params\(\) accepted factor=-1"):
        check_param_validation(Lenient())


def test_kit_catches_an_error_that_names_the_wrong_parameter():
    from conform_core.testing.checks import check_param_validation

    class Confused(_Shrink):
        """Reports every problem as a problem of factor.

        Parameters
        ----------
        factor, mode, n_keep : as _Shrink
        """

        def check_params(self) -> None:
            try:
                super().check_params()
            except ParameterError:
                raise ParameterError(param="factor", value=self.factor, allowed="ok") from None

    with pytest.raises(AssertionError, match="naming 'factor', not 'mode'"):
        check_param_validation(Confused())


def test_kit_catches_a_declaration_of_a_missing_parameter():
    from conform_core.testing.checks import check_param_validation

    class Stale(_Shrink):
        """Declares a parameter it no longer takes.

        Parameters
        ----------
        factor, mode, n_keep : as _Shrink
        """

        _parameter_fixes: ClassVar[dict[str, str]] = {"old": "Gone."}

    with pytest.raises(AssertionError, match=r"name \['old'\], which are not constructor"):
        check_param_validation(Stale())
