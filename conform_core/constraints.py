"""Declarative parameter constraints: one engine for components, parameter records and functions.

A parameter is declared once, as a list of alternatives it may satisfy (scikit-learn's
``_parameter_constraints``, in a lightweight form built on :mod:`conform_core.validation`).
The engine checks values against the declaration and raises one structured
:class:`~conform_core.exceptions.ParameterError` whose message follows one template::

    The 'n_components' parameter of PCADenoiser must be an int in [0, inf) or None; got -3.
    Use None to choose the rank by cross-validation.

Constraints
-----------
Each item of a declaration is one of:

==================================  =========================================================
``Interval(int, 1, None)``          an int >= 1 (numpy ints too, never bool); ``None`` bound =
                                    unbounded, printed open: ``an int in [1, inf)``
``Interval(float, 0, 1,             a finite real number (ints too, never bool/NaN/inf) in
closed="right")``                   (0, 1]; ``closed`` is "both" (default), "left", "right"
                                    or "neither"
``Options(("auto", "svd"))``        one of the values (a tuple keeps its order in messages, a
                                    set is sorted); a mistyped string gets "Did you mean ...?"
``Boolean()``                       True or False (numpy bool too; never 0/1 or "yes")
``PathLike("file"|"dir"|"any",      a ``str``/``os.PathLike`` path, never a placeholder of an
must_exist=True)``                  example spec; a missing path raises ``DataFileError``
``InstanceOf(type, what=None)``     ``isinstance``; ``what`` is its description
``NonEmptyStr(what=...)``           a non-empty ``str``
``IsCallable()``                    a callable
``SequenceOf(items, min_length=0,   a list or tuple (never a str) whose items satisfy
what=None)``                        ``items`` (a constraint or a list of alternatives)
``None``                            the value may be None (always printed last)
a type, e.g. ``np.ndarray``         shorthand for ``InstanceOf(np.ndarray)``
==================================  =========================================================

A value is valid if it satisfies **any** item of its list. A constraint of your own
subclasses :class:`Constraint` and implements ``is_satisfied_by(value) -> bool``,
``describe() -> str`` (a noun phrase: ``"a non-empty 1-D sequence of positive numbers"``)
and, when an object of an unrelated type would not break it, ``invalid_value()``; it may
add ``hint(value)`` (advice for a failed value) or ``check(value, name=, owner=, fix=)``
(raise a more specific error). ``conform_baselines.ridge`` has two (alphas, dtype).

Where the engine is used
------------------------
- **Components**: declare ``_parameter_constraints`` (and optionally ``_parameter_fixes``,
  one fix per parameter) on the class; the base ``Component.check_params()`` checks them
  (it raises ``TypeError`` if a declaration names something that is not a constructor
  parameter) and then calls the ``_check_params_extra()`` hook for what declarations
  cannot say (rules between parameters, a name looked up in a table). Do not override
  ``check_params``; ``fit`` runs it first, and the contract kit's
  ``check_param_validation`` feeds every declared parameter a value that breaks it::

      class PCADenoiser(Denoiser):
          _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
              "n_components": [Interval(int, 0, None), None],
              "max_components": [Interval(int, 1, None), None]}
          _parameter_fixes: ClassVar[dict[str, str]] = {
              "n_components": "Use None to choose the rank by cross-validation."}

- **Parameter records** (frozen dataclasses: ``SimulationParams``, ``DesignParams``): the
  same two ``ClassVar`` attributes, checked by :func:`check_constraints` in their
  validating method (``DesignParams.__post_init__``, ``SimulationParams.check``).
- **Functions** (``psn``, ``perform_gsn``, ``GLM_single``, ...): the :func:`validate_params`
  decorator binds the call to the signature (defaults included) and checks the declared
  arguments before the body runs; the signature and docstring are kept::

      @validate_params({"n_boot": [Interval(int, 1, None)], "mode": [Options(("a", "b"))]},
                       fixes={"n_boot": "Use e.g. $n_boot=100."}, owner="resample")
      def resample(data, n_boot=100, mode="a"): ...

- **Option dicts** (official-style ``opt={...}``): ``check_constraints(OPTIONS, opt,
  owner="psn", fixes=..., reject_unknown=True)`` also refuses keys not declared, with the
  closest name suggested; the declaration doubles as the list of known names.
- **One value** inline: ``check_param(value, [Interval(int, 1, None)], name=, owner=, fix=)``.
- **Tests**: :func:`invalid_value_for` builds a value that breaks a declaration;
  :func:`describe_constraints` gives its description.

Messages
--------
Every failure raises one structured :class:`~conform_core.exceptions.ParameterError`
(``param``, ``value``, ``allowed``, ``fix``, ``owner``)::

    The 'n_components' parameter of PCADenoiser must be an int in [0, inf) or None; got -3.
    Use None to choose the rank by cross-validation.

Library code always names the Python parameter. ``fix`` texts (and ``allowed`` and the
message of a hand-raised ``ParameterError``) name parameters as ``$name`` (``$$`` is a
dollar sign): Python prints ``name``, and a command decorated with
:func:`conform_core.cli.parameter_flags` prints its flag (``$n_units=1`` -> ``--units=1``).
Rules between parameters raise ``ParameterError(param=..., value=..., allowed=..., fix=...,
owner=...)``, or, when the standard sentence does not fit, a template that replaces it:
``ParameterError(f"$core={core} is larger than $per_participant={n}.", param="core",
value=core, owner="DesignParams", fix="Lower $core.")``. Never put user text (paths, ids)
in a template: pass it as ``value``, or escape it with ``ParameterError.quote``.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np

from .exceptions import ParameterError
from .validation import check_existing_path, interval_text, is_placeholder, suggest

__all__ = [
    "AnyValue",
    "Boolean",
    "Constraint",
    "InstanceOf",
    "Interval",
    "IsCallable",
    "NonEmptyStr",
    "Options",
    "PathLike",
    "SequenceOf",
    "check_constraints",
    "check_declared_names",
    "check_param",
    "describe_constraints",
    "invalid_value_for",
    "make_constraint",
    "validate_params",
]

F = TypeVar("F", bound=Callable[..., Any])


class _BadType:
    """A value of a type no constraint accepts (the contract kit's last resort)."""

    def __repr__(self) -> str:
        return "<an object of an unrelated type>"


class Constraint(ABC):
    """One rule a parameter value may satisfy (an alternative of a declaration).

    Subclasses implement :meth:`is_satisfied_by`, :meth:`describe` and
    :meth:`invalid_value`; :meth:`hint` and :meth:`check` are optional refinements of the
    error message.
    """

    @abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""

    @abstractmethod
    def describe(self) -> str:
        """Return what the constraint accepts, as a noun phrase: ``"an int in [1, inf)"``."""

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint (default: an object of an unrelated type)."""
        return _BadType()

    def hint(self, value: Any) -> str:
        """Advice for a ``value`` that failed every alternative, e.g. ``"Did you mean 'x'?"``."""
        return ""

    def check(  # noqa: B027 - an optional refinement: a no-op unless a subclass overrides it
            self, value: Any, *, name: str, owner: str | None, fix: str) -> None:
        """Raise a more specific error than the engine's for a failed ``value`` (optional).

        Called, in declaration order, when ``value`` satisfies no alternative and no
        :meth:`hint` applies; return to let the engine raise its standard error.
        """

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe()}>"


class _NoneConstraint(Constraint):
    """The value may be None (write ``None`` in a declaration)."""

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        return value is None

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        return "None"


Closed = Literal["both", "left", "right", "neither"]


class AnyValue(Constraint):
    """Any value: a parameter declared for its name, checked where it is used (or ignored).

    Declaring it keeps the name known (an option dict checked with ``reject_unknown=True``
    accepts it) and says in ``what`` what the value should be, for the documentation and
    for errors raised later. The contract kit skips it: no value breaks it.

    Parameters
    ----------
    what : str, default="any value"
        What the value should be, as a noun phrase.
    """

    def __init__(self, what: str = "any value") -> None:
        self.what = what

    def is_satisfied_by(self, value: Any) -> bool:
        """Return True: every value is accepted here."""
        return True

    def describe(self) -> str:
        """Return ``what``."""
        return self.what


class Interval(Constraint):
    """A number in a range: ``Interval(int, 1, None)`` is an int >= 1.

    Parameters
    ----------
    kind : {int, float}
        ``int`` accepts integers (numpy's too, never bool); ``float`` accepts any finite real
        number (ints included, never bool, NaN or infinity).
    low, high : number or None
        Bounds; None is unbounded (and always open: ``[1, inf)``).
    closed : {"both", "left", "right", "neither"}, default="both"
        Which finite bounds belong to the interval.
    """

    def __init__(self, kind: type, low: float | None, high: float | None, *,
                 closed: Closed = "both") -> None:
        if kind in (int, numbers.Integral):
            self.kind: type = int
        elif kind in (float, numbers.Real):
            self.kind = float
        else:
            raise TypeError(f"Interval kind must be int or float; got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise TypeError(f"Interval closed must be 'both', 'left', 'right' or 'neither'; "
                            f"got {closed!r}")
        if low is not None and high is not None and low > high:
            raise TypeError(f"Interval low={low} is above high={high}")
        self.low, self.high, self.closed = low, high, closed

    def _type_ok(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind is int:
            return isinstance(value, numbers.Integral)
        return isinstance(value, numbers.Real) and bool(np.isfinite(float(value)))

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        if not self._type_ok(value):
            return False
        low_open, high_open = self.closed in ("right", "neither"), self.closed in ("left", "neither")
        if self.low is not None and (value < self.low or (value == self.low and low_open)):
            return False
        return not (
            self.high is not None and (value > self.high or (value == self.high and high_open))
        )

    def range_text(self) -> str:
        """Return the range in interval notation: ``[1, inf)``, ``(0.0, 1.0]``."""
        return interval_text(
            self.low,
            self.high,
            low_open=self.closed in ("right", "neither"),
            high_open=self.closed in ("left", "neither"),
        )

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        what = "an int" if self.kind is int else "a finite number"
        return f"{what} in {self.range_text()}"

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint."""
        if self.low is not None:
            return self.low - 1
        if self.high is not None:
            return self.high + 1
        return _BadType()


class Options(Constraint):
    """One of a fixed set of values: ``Options(("auto", "primal", "dual"))``.

    Parameters
    ----------
    options : iterable
        The allowed values. A sequence keeps its order in messages; a set is sorted.
        Values match only values of the same kind (``1`` does not match ``True``).
    """

    def __init__(self, options: Iterable[Any]) -> None:
        if isinstance(options, (set, frozenset)):
            values = sorted(options, key=repr)
        else:
            values = list(options)
        if not values:
            raise TypeError("Options needs at least one value")
        self.options: tuple[Any, ...] = tuple(values)

    @staticmethod
    def _same_kind(a: Any, b: Any) -> bool:
        if isinstance(a, str) or isinstance(b, str):
            return isinstance(a, str) and isinstance(b, str)
        if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
            return isinstance(a, (bool, np.bool_)) and isinstance(b, (bool, np.bool_))
        return True

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        for option in self.options:
            try:
                if self._same_kind(value, option) and bool(value == option):
                    return True
            except (TypeError, ValueError):  # arrays and the like compare elementwise
                continue
        return False

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        if len(self.options) == 1:
            return repr(self.options[0])
        return "one of " + ", ".join(repr(o) for o in self.options)

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint."""
        candidate = "not-an-option"
        while candidate in self.options:
            candidate += "-"
        return candidate

    def hint(self, value: Any) -> str:
        """Return advice for a ``value`` that failed every alternative, or ""."""
        if not isinstance(value, str):
            return ""
        return suggest(value, [o for o in self.options if isinstance(o, str)]).strip()


class Boolean(Constraint):
    """True or False (numpy booleans too; never ints or strings such as ``"yes"``)."""

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        return isinstance(value, (bool, np.bool_))

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        return "True or False"

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint."""
        return "yes"


_PATH_WHAT = {"file": "file", "dir": "folder", "any": "file or folder"}


class PathLike(Constraint):
    """A path (``str`` or ``os.PathLike``), of an existing file or folder by default.

    A value that still holds a placeholder of an example spec (``/path/to/...``,
    ``<DATA_DIR>``) is refused. A path that does not exist (or is a file where a folder is
    needed) raises :class:`~conform_core.exceptions.DataFileError`, as
    :func:`~conform_core.validation.check_existing_path` does.

    Parameters
    ----------
    kind : {"file", "dir", "any"}, default="file"
        What the path must name.
    must_exist : bool, default=True
        Whether it must exist already (False: any non-empty path, e.g. an output folder).
    """

    def __init__(
        self, kind: Literal["file", "dir", "any"] = "file", *, must_exist: bool = True
    ) -> None:
        if kind not in _PATH_WHAT:
            raise TypeError(f"PathLike kind must be 'file', 'dir' or 'any'; got {kind!r}")
        self.kind: Literal["file", "dir", "any"] = kind
        self.must_exist = must_exist

    @staticmethod
    def _is_path(value: Any) -> bool:
        return (
            isinstance(value, (str, os.PathLike))
            and not isinstance(value, bytes)
            and bool(os.fspath(value))
        )

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        if not self._is_path(value) or is_placeholder(value):
            return False
        if not self.must_exist:
            return True
        path = os.fspath(value)
        if self.kind == "file":
            return os.path.isfile(path)
        if self.kind == "dir":
            return os.path.isdir(path)
        return os.path.exists(path)

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        what = _PATH_WHAT[self.kind]
        return f"the path of an existing {what}" if self.must_exist else f"the path of a {what}"

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint."""
        return 3

    def check(self, value: Any, *, name: str, owner: str | None, fix: str) -> None:
        """Raise the error of :func:`check_existing_path` for a missing or placeholder path."""
        if self._is_path(value) and (self.must_exist or is_placeholder(value)):
            check_existing_path(value, name=name, owner=owner, kind=self.kind, fix=fix)


class InstanceOf(Constraint):
    """An instance of a type (or of one of several): ``InstanceOf(np.ndarray)``.

    Parameters
    ----------
    types : type or tuple of type
        The accepted types.
    what : str or None, default=None
        How to describe them (default ``"an instance of ndarray"``).
    """

    def __init__(self, types: type | tuple[type, ...], what: str | None = None) -> None:
        self.types = types
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        self.what = what or f"an instance of {names}"

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        return isinstance(value, self.types)

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        return self.what


class NonEmptyStr(Constraint):
    """A non-empty string (names, device strings, ...).

    Parameters
    ----------
    what : str, default="a non-empty string"
        How to describe it, e.g. ``"'auto', 'cpu' or a torch device string such as 'cuda:0'"``.
    """

    def __init__(self, what: str = "a non-empty string") -> None:
        self.what = what

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        return isinstance(value, str) and bool(value)

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        return self.what

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint."""
        return ""


class IsCallable(Constraint):
    """A callable (a function, or an object with ``__call__``)."""

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        return callable(value)

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        return "a callable"

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint."""
        return "not-callable"


class SequenceOf(Constraint):
    """A list or tuple (never a string) whose every item satisfies ``items``.

    Parameters
    ----------
    items : constraint, type, None or list of them
        What each item may be (alternatives, as in a declaration).
    min_length : int, default=0
        Fewest items (1: non-empty).
    what : str or None, default=None
        How to describe the sequence (default ``"a list of <items>"``).
    """

    def __init__(self, items: Any, *, min_length: int = 0, what: str | None = None) -> None:
        self.items = _as_constraints(items if isinstance(items, list) else [items])
        self.min_length = min_length
        self.what = what

    def is_satisfied_by(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this constraint."""
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        return len(value) >= self.min_length and all(
            any(c.is_satisfied_by(v) for c in self.items) for v in value
        )

    def describe(self) -> str:
        """Return what this constraint accepts, as a noun phrase."""
        if self.what:
            return self.what
        size = (
            "a non-empty list"
            if self.min_length == 1
            else (f"a list of at least {self.min_length}" if self.min_length > 1 else "a list")
        )
        parts = []
        for item in self.items:
            if isinstance(item, Options):
                parts.append("values among " + ", ".join(repr(o) for o in item.options))
            elif isinstance(item, InstanceOf) and item.what.startswith("an instance of "):
                parts.append(item.what[len("an instance of ") :])
            else:
                parts.append(item.describe())
        return f"{size} of {' or '.join(parts)}"

    def invalid_value(self) -> Any:
        """Return a value that breaks this constraint."""
        if self.min_length > 0:
            return []
        return [invalid_value_for(self.items)]

    def hint(self, value: Any) -> str:
        """Return advice for a ``value`` that failed every alternative, or ""."""
        if isinstance(value, (list, tuple)):
            for item in value:
                if not any(c.is_satisfied_by(item) for c in self.items):
                    tips = [c.hint(item) for c in self.items]
                    return next((t for t in tips if t), "")
        return ""


# ---------------------------------------------------------------- the engine
def make_constraint(item: Any) -> Constraint:
    """Turn one item of a declaration into a :class:`Constraint`.

    ``None`` -> the value may be None; a type -> :class:`InstanceOf`; a constraint as it is.

    Raises
    ------
    TypeError
        For anything else (a declaration error, not a user error).
    """
    if isinstance(item, Constraint):
        return item
    if item is None:
        return _NoneConstraint()
    if isinstance(item, type):
        return InstanceOf(item)
    raise TypeError(
        f"A parameter constraint must be a Constraint, a type or None; got {item!r}. "
        "Wrap choices in Options((...)) and ranges in Interval(...)."
    )


def _as_constraints(items: Sequence[Any] | Constraint | None) -> list[Constraint]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        items = [items]
    return [make_constraint(item) for item in items]


def describe_constraints(constraints: Sequence[Any]) -> str:
    """Describe a declaration: ``"an int in [1, inf) or None"`` (None always last)."""
    parts = [
        c.describe() for c in _as_constraints(constraints) if not isinstance(c, _NoneConstraint)
    ]
    if any(isinstance(c, _NoneConstraint) for c in _as_constraints(constraints)):
        parts.append("None")
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def invalid_value_for(constraints: Sequence[Any]) -> Any:
    """Return a value that satisfies no item of ``constraints`` (for tests of validation).

    Tries each constraint's :meth:`Constraint.invalid_value`, then an object of an unrelated
    type.

    Raises
    ------
    ValueError
        If every candidate is valid (e.g. the declaration accepts ``object``).
    """
    items = _as_constraints(constraints)
    for candidate in [c.invalid_value() for c in items] + [_BadType()]:
        if not any(c.is_satisfied_by(candidate) for c in items):
            return candidate
    raise ValueError(f"No invalid value could be built for {describe_constraints(items)}")


def check_param(
    value: Any, constraints: Sequence[Any], *, name: str, owner: Any = None, fix: str = ""
) -> Any:
    """Check one value against a declaration and return it unchanged.

    Parameters
    ----------
    value : object
        The value.
    constraints : list
        The alternatives it may satisfy (see the module docstring).
    name : str
        The parameter's Python name.
    owner : str, object or None
        The class or function that takes it (an instance stands for its class).
    fix : str, default=""
        How to fix a bad value (may name parameters as ``$name``).

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    ParameterError
        If ``value`` satisfies no alternative, naming the parameter, what is allowed, the
        value and the fix (with the closest option for a mistyped string).
    DataFileError
        For a :class:`PathLike` path that does not exist.
    """
    items = _as_constraints(constraints)
    if any(c.is_satisfied_by(value) for c in items):
        return value
    who = owner if owner is None or isinstance(owner, str) else type(owner).__name__
    hint = next((h for h in (c.hint(value) for c in items) if h), "")
    allowed = describe_constraints(items)
    if not hint:
        for constraint in items:
            try:
                constraint.check(value, name=name, owner=who, fix=fix)
            except ParameterError as exc:  # say every alternative, not only this one's
                if exc.param != name or exc.template is not None:
                    raise
                raise ParameterError(
                    param=name, value=exc.value, allowed=allowed, fix=exc.fix, owner=who
                ) from None
    full_fix = " ".join(part for part in (hint, fix) if part)
    raise ParameterError(param=name, value=value, allowed=allowed, fix=full_fix, owner=who)


def check_constraints(
    constraints: Mapping[str, Sequence[Any]],
    params: Mapping[str, Any],
    *,
    owner: Any = None,
    fixes: Mapping[str, str] | None = None,
    reject_unknown: bool = False,
) -> None:
    """Check every declared parameter of ``params`` (in declaration order).

    Parameters
    ----------
    constraints : mapping of str to list
        Parameter name -> the alternatives its value may satisfy.
    params : mapping of str to object
        The values; a declared name missing from it is not checked (its default applies).
    owner : str, object or None
        The class or function the parameters belong to, for messages.
    fixes : mapping of str to str or None
        Parameter name -> how to fix a bad value.
    reject_unknown : bool, default=False
        Also refuse keys of ``params`` that are not declared (for option dicts), suggesting
        the closest declared name.

    Raises
    ------
    ParameterError
        For the first bad value (or unknown key).
    """
    fixes = fixes or {}
    who = owner if owner is None or isinstance(owner, str) else type(owner).__name__
    if reject_unknown:
        for key in params:
            if key not in constraints:
                known = sorted(constraints)
                raise ParameterError(
                    param=str(key),
                    value=params[key],
                    owner=who,
                    allowed=f"a known name ({', '.join(known)}), not {key!r}",
                    fix=suggest(str(key), known).strip() or "Remove it.",
                )
    for name, declared in constraints.items():
        if name in params:
            check_param(params[name], declared, name=name, owner=who, fix=fixes.get(name, ""))


def check_declared_names(
    constraints: Mapping[str, Any],
    names: Iterable[str],
    *,
    owner: str,
    fixes: Mapping[str, str] | None = None,
) -> None:
    """Check that a declaration names only real parameters (a programming error if not).

    Raises
    ------
    TypeError
        Naming the declared names that are not among ``names``.
    """
    names = set(names)
    unknown = sorted(set(constraints) - names) + sorted(set(fixes or {}) - set(constraints))
    if unknown:
        raise TypeError(
            f"{owner} declares constraints or fixes for {unknown}, which are not its parameters "
            f"({sorted(names)}). Rename or remove them in _parameter_constraints/_parameter_fixes."
        )


def validate_params(
    constraints: Mapping[str, Sequence[Any]],
    *,
    fixes: Mapping[str, str] | None = None,
    owner: str | None = None,
) -> Callable[[F], F]:
    """Decorate a function so its arguments are checked against ``constraints`` first.

    The arguments are bound to the signature (defaults included) and each declared one is
    checked, as :func:`check_constraints` does, before the body runs; the body receives
    them unchanged. Arguments not declared are not checked.

    Parameters
    ----------
    constraints : mapping of str to list
        Argument name -> the alternatives its value may satisfy.
    fixes : mapping of str to str or None
        Argument name -> how to fix a bad value.
    owner : str or None
        Name used in messages (default: the function's name).

    Returns
    -------
    decorator

    Raises
    ------
    TypeError
        At decoration time, if ``constraints`` names an argument the function does not take.

    Examples
    --------
    >>> @validate_params({"k": [Interval(int, 1, None)]})
    ... def top(values, k=3):
    ...     return sorted(values)[-k:]
    >>> top([3, 1, 2], k=0)
    Traceback (most recent call last):
    ...
    conform_core.exceptions.ParameterError: The 'k' parameter of top must be an int in [1, inf); got 0.
    """
    declared = {name: _as_constraints(items) for name, items in constraints.items()}

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        who = owner or func.__name__
        check_declared_names(declared, signature.parameters, owner=who, fixes=fixes)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return func(*args, **kwargs)  # let Python report the bad call as usual
            bound.apply_defaults()
            check_constraints(declared, bound.arguments, owner=who, fixes=fixes)
            return func(*args, **kwargs)

        wrapper.__conform_constraints__ = declared  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
