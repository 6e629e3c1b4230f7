"""Input checks shared by containers and components.

Each ``check_*`` function returns the validated (possibly converted) value or
raises a :class:`~conform_core.exceptions.ConformError` subclass whose message
names the value, what was expected and the fix.
"""

from __future__ import annotations

import difflib
import numbers
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .exceptions import DataFileError, ParameterError, ShapeError, _fill

__all__ = [
    "NAME_PATTERN",
    "check_bool_param",
    "check_choice",
    "check_existing_path",
    "check_float_array",
    "check_float_param",
    "check_ids",
    "check_instance",
    "check_int_array",
    "check_int_param",
    "describe",
    "interval_text",
    "is_placeholder",
    "is_valid_name",
    "read_only",
    "suggest",
]


def describe(value: Any) -> str:
    """Describe a value for an error message: arrays by shape and dtype, others by repr."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def read_only(array: np.ndarray) -> np.ndarray:
    """Return a read-only view of ``array`` (no copy; the caller's array stays writable)."""
    view = array.view()
    view.flags.writeable = False
    return view


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_float_array(
    value: Any,
    *,
    ndim: int,
    name: str,
    axes: str = "",
    allow_nan: bool = False,
    nan_meaning: str = "",
    min_shape: Sequence[int] | None = None,
) -> NDArray[np.floating]:
    """Validate a floating-point array.

    float32 and float64 are kept as they are; integer, boolean and float16 input is
    cast to float64 (float16 to float32). Infinite values are always rejected; NaN
    only when ``allow_nan`` is false.

    Parameters
    ----------
    value : array-like
        The array to check.
    ndim : int
        Required number of dimensions.
    name : str
        Name used in messages, e.g. ``"TrialData.betas"``.
    axes : str, default=""
        Axis names used in messages, e.g. ``"(trials, units)"``.
    allow_nan : bool, default=False
        Whether NaN is allowed.
    nan_meaning : str, default=""
        What NaN means where it is allowed (for documentation in messages).
    min_shape : sequence of int or None
        Minimum size of each axis.

    Returns
    -------
    ndarray
        float32 or float64 array (a view of the input when no cast was needed).
    """
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ShapeError(
            f"{name} must be a {ndim}-D numeric array {axes}; got {describe(value)} "
            f"which numpy cannot convert ({exc}). Pass a rectangular numeric array."
        ) from None
    if array.dtype.kind not in "fiub":
        raise ShapeError(
            f"{name} must be a numeric (float) array {axes}; got {describe(array)}. "
            "Convert it with np.asarray(x, dtype=np.float32)."
        )
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype.kind != "f" or array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    if array.ndim != ndim:
        raise ShapeError(
            f"{name} must be {ndim}-D {axes}; got {describe(array)}. "
            "Reshape it to the documented axis order."
        )
    if min_shape is not None:
        for axis, (size, low) in enumerate(zip(array.shape, min_shape)):
            if size < low:
                raise ShapeError(
                    f"{name} needs at least {low} entries along axis {axis} {axes}; "
                    f"got {describe(array)}."
                )
    n_inf, first_inf, n_nan, first_nan = _count_non_finite(array, count_nan=not allow_nan)
    if n_inf:
        raise ShapeError(
            f"{name} contains {n_inf} infinite value(s) (first at index {first_inf}). "
            "Replace them (e.g. with NaN where a value is missing) or drop those units."
        )
    if n_nan:
        raise ShapeError(
            f"{name} contains {n_nan} NaN value(s) (first at index {first_nan}) where NaN is "
            "not allowed. Remove or impute the missing values, or drop those units."
        )
    return array


_FINITE_BLOCK = 1 << 20  # elements checked at a time by check_float_array


def _count_non_finite(
    array: NDArray[np.floating], *, count_nan: bool
) -> tuple[int, tuple[int, ...] | None, int, tuple[int, ...] | None]:
    """Count infinite values and find the first (C order); the same for NaN if ``count_nan``.

    Returns the count and index of the first infinity, then the same for NaN (0, None when
    not ``count_nan``).

    Works on slabs of about ``_FINITE_BLOCK`` elements along axis 0, reusing one boolean
    buffer, so no mask the size of ``array`` is ever allocated. A slab whose sum is finite
    holds no NaN or infinity (both propagate through a sum; a finite overflow only sends the
    slab to the exact check), so clean data costs one read-only pass.
    """
    if array.ndim == 0:
        value = array.reshape(1)
        n_inf, n_nan = int(np.isinf(value).sum()), int(np.isnan(value).sum()) if count_nan else 0
        return n_inf, () if n_inf else None, n_nan, () if n_nan else None
    row = int(np.prod(array.shape[1:], dtype=np.int64))
    step = max(1, _FINITE_BLOCK // max(row, 1))
    buffer: NDArray[np.bool_] | None = None
    n_inf = n_nan = 0
    first_inf: tuple[int, ...] | None = None
    first_nan: tuple[int, ...] | None = None
    for start in range(0, array.shape[0], step):
        block = array[start : start + step]
        with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, finite overflow
            total = np.add.reduce(block, axis=None)
        if np.isfinite(total):
            continue
        if buffer is None:
            buffer = np.empty(min(array.size, step * max(row, 1)), dtype=bool)
        mask = buffer[: block.size].reshape(block.shape)
        checks = [(np.isinf, "inf")] + ([(np.isnan, "nan")] if count_nan else [])
        for test, kind in checks:
            test(block, out=mask)
            count = int(np.count_nonzero(mask))
            if not count:
                continue
            first = list(np.unravel_index(int(mask.reshape(-1).argmax()), block.shape))
            first[0] += start
            if kind == "inf":
                n_inf += count
                if first_inf is None:
                    first_inf = tuple(int(i) for i in first)
            else:
                n_nan += count
                if first_nan is None:
                    first_nan = tuple(int(i) for i in first)
    return n_inf, first_inf, n_nan, first_nan


def check_ids(value: Any, *, n: int | None, name: str, axis_name: str = "",
              unique: bool = True) -> NDArray[np.str_]:
    """Validate an id array: 1-D, string, optionally unique and of length ``n``.

    Numbers are converted to their string form (ids are joined by value, never by
    position).
    """
    array = np.asarray(value)
    if array.ndim != 1:
        raise ShapeError(f"{name} must be 1-D; got {describe(array)}. Pass one id per entry.")
    if array.dtype.kind not in "U":
        if array.dtype.kind == "O" and not all(isinstance(v, (str, numbers.Integral)) for v in array):
            raise ShapeError(f"{name} must hold strings; got {describe(value)}.")
        array = array.astype(str)
    if n is not None and array.shape[0] != n:
        where = f" ({axis_name})" if axis_name else ""
        raise ShapeError(
            f"{name} must have one id per entry{where}: {n}; got {array.shape[0]}. "
            "Pass ids in the same order as the data."
        )
    if unique:
        values, counts = np.unique(array, return_counts=True)
        if (counts > 1).any():
            dup = values[counts > 1][:5].tolist()
            raise ShapeError(
                f"{name} must be unique; got duplicates {dup}. Give every entry its own id "
                "(repeated presentations belong in TrialData, which allows repeats)."
            )
    return array


def check_int_array(value: Any, *, n: int, name: str) -> NDArray[np.int64]:
    """Validate a 1-D integer array of length ``n`` (floats with integer values allowed)."""
    array = np.asarray(value)
    if array.ndim != 1 or array.shape[0] != n:
        raise ShapeError(f"{name} must be 1-D of length {n}; got {describe(array)}.")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ShapeError(
                f"{name} must hold integers; got non-integer values in {describe(array)}."
            )
    elif array.dtype.kind not in "iub":
        raise ShapeError(f"{name} must hold integers; got {describe(array)}.")
    return array.astype(np.int64)


def check_instance(value: Any, types: type | tuple[type, ...], *, name: str, fix: str = "") -> Any:
    """Check that ``value`` is an instance of ``types`` and return it."""
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise ShapeError(f"{name} must be a {names}; got {type(value).__name__}. {fix}".rstrip())
    return value


def _owner_name(owner: Any) -> str:
    if owner is None:
        return ""
    return f" of {owner if isinstance(owner, str) else type(owner).__name__}"


def _owner(owner: Any) -> str | None:
    return owner if owner is None or isinstance(owner, str) else type(owner).__name__


def interval_text(
    low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False
) -> str:
    """Return a range in interval notation: ``[1, inf)``, ``(0.0, 1.0]``; an infinite end is open."""
    left = "(" if low is None or low_open else "["
    right = ")" if high is None or high_open else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def check_int_param(
    value: Any,
    *,
    name: str,
    owner: Any = None,
    low: int | None = None,
    high: int | None = None,
    none_ok: bool = False,
    fix: str = "",
) -> int | None:
    """Validate an integer parameter in ``[low, high]`` (None allowed if ``none_ok``).

    Raises a structured :class:`ParameterError` (``param``, ``value``, ``allowed``, ``fix``,
    ``owner``); ``fix`` may name parameters as ``$name``.
    """
    if value is None and none_ok:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and ((low is not None and value < low) or (high is not None and value > high)):
        ok = False
    if not ok:
        raise ParameterError(
            param=name,
            value=value,
            owner=_owner(owner),
            fix=fix,
            allowed=f"an int in {interval_text(low, high)}{' or None' if none_ok else ''}",
        )
    return int(value)


def check_float_param(
    value: Any,
    *,
    name: str,
    owner: Any = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    none_ok: bool = False,
    fix: str = "",
) -> float | None:
    """Validate a real parameter in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    if value is None and none_ok:
        return None
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(float(value)))
    )
    if ok and low is not None and (value < low or (low_open and value == low)):
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        raise ParameterError(
            param=name,
            value=value,
            owner=_owner(owner),
            fix=fix,
            allowed=(
                f"a finite number in {interval_text(low, high, low_open=low_open)}"
                f"{' or None' if none_ok else ''}"
            ),
        )
    return float(value)


def check_choice(value: Any, choices: Sequence[str], *, name: str, owner: Any = None) -> str:
    """Validate that ``value`` is one of ``choices`` (suggesting the closest)."""
    if value not in choices:
        raise ParameterError(
            param=name,
            value=value,
            owner=_owner(owner),
            allowed=f"one of {', '.join(repr(c) for c in choices)}",
            fix=suggest(str(value), choices).strip(),
        )
    return str(value)


def check_bool_param(
    value: Any, *, name: str, owner: Any = None, none_ok: bool = False, fix: str = ""
) -> bool | None:
    """Validate a True/False parameter (numpy booleans too; None allowed if ``none_ok``).

    Integers and strings such as ``"yes"`` are refused: a spec that writes ``true`` means
    True, and anything else is more likely a mistake than a boolean.
    """
    if value is None and none_ok:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(
            param=name,
            value=value,
            owner=_owner(owner),
            fix=fix,
            allowed=f"True or False{' or None' if none_ok else ''}",
        )
    return bool(value)


NAME_PATTERN = "[a-z][a-z0-9_-]*"
"""The form of a component or plugin name: short, lowercase, stable (``trial-average``).

The registry and ``conform plugins new`` check names against it with :func:`is_valid_name`,
and their messages quote it."""

_NAME = re.compile(NAME_PATTERN)


def is_valid_name(value: Any) -> bool:
    """Whether ``value`` is a string of the form :data:`NAME_PATTERN`, e.g. ``"trial-average"``."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


_PLACEHOLDER = re.compile(r"(^|/)path/to(/|$)|<[A-Za-z_ -]+>")

_PATH_KINDS = {"file": "file", "dir": "folder", "any": "file or folder"}


def is_placeholder(value: Any) -> bool:
    """Whether ``value`` is a string that looks like a template's placeholder path.

    ``/path/to/mosaic``, ``path/to/weights.pt`` and ``<DATA_DIR>`` are placeholders (as
    written in the example specs); real paths are not.
    """
    return isinstance(value, (str, os.PathLike)) and bool(_PLACEHOLDER.search(os.fspath(value)))


def check_existing_path(
    value: Any,
    *,
    name: str,
    owner: Any = None,
    kind: Literal["file", "dir", "any"] = "file",
    fix: str = "",
) -> Path:
    """Validate a path parameter that must name an existing file or folder.

    Parameters
    ----------
    value : Any
        The parameter's value (a ``str`` or ``os.PathLike``).
    name : str
        The parameter's Python name, e.g. ``"stimuli_dir"``.
    owner : object or str or None
        The component (or its class name) the parameter belongs to, for the message.
    kind : {"file", "dir", "any"}, default="file"
        What the path must be.
    fix : str, default=""
        Extra advice appended to the message (may name parameters as ``$name``).

    Returns
    -------
    Path
        The path.

    Raises
    ------
    ParameterError
        If ``value`` is not a path, or still holds a placeholder of an example spec
        (``/path/to/...``, ``<DATA_DIR>``).
    DataFileError
        If nothing exists there, or it is a file where a folder is needed (or the reverse).
    """
    what = _PATH_KINDS[kind]
    allowed = f"the path of an existing {what}"
    if (
        isinstance(value, bytes)
        or not isinstance(value, (str, os.PathLike))
        or not os.fspath(value)
    ):
        raise ParameterError(param=name, value=value, owner=_owner(owner), allowed=allowed, fix=fix)
    text = os.fspath(value)
    if is_placeholder(text):
        raise ParameterError(
            param=name,
            value=text,
            owner=_owner(owner),
            allowed=allowed,
            fix=f"That is a placeholder of the example spec: point it at your {what}."
            f"{' ' + fix if fix else ''}",
        )
    path = Path(text)
    if not path.exists():
        problem = f"no such {what}"
    elif kind == "file" and not path.is_file():
        problem = "a folder, not a file"
    elif kind == "dir" and not path.is_dir():
        problem = "a file, not a folder"
    else:
        return path
    who = f"The {name!r} parameter{_owner_name(owner)}"
    extra = f" {_fill(fix, None)}" if fix else ""
    raise DataFileError(
        f"{who} must be the path of an existing {what}; got {text!r} ({problem}).{extra}"
    )
