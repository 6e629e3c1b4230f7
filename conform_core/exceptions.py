"""The error and warning hierarchy of conform.

Every error a user can cause derives from :class:`ConformError` and also from
the built-in exception a caller would naturally catch, so ``except ValueError``
keeps working. Messages follow one template: what was expected, what was got
(with shape and dtype for arrays), and how to fix it.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from typing import Any

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "ConformError",
    "ParameterError",
    "ShapeError",
    "UnknownComponentError",
    "NotFittedError",
    "PluginError",
    "PluginLoadError",
    "SpecError",
    "DataFileError",
    "AnalysisFailedError",
    "ConformWarning",
    "Interrupted",
]


class ConformError(Exception):
    """Root of every error conform raises on bad input."""


_UNSET: Any = object()
_NAME = re.compile(r"\$\$|\$([a-z_][A-Za-z0-9_]*)")


def _fill(template: str, names: Mapping[str, str] | None) -> str:
    """Replace each ``$name`` in ``template`` by ``names[name]`` (else ``name``); ``$$`` -> ``$``."""
    def one(match: re.Match[str]) -> str:
        name = match[1]
        if name is None:
            return "$"
        return names.get(name, name) if names is not None else name

    return _NAME.sub(one, template)


class ParameterError(ConformError, ValueError):
    """A parameter has a value outside its documented range or set.

    Raise it structured (library code) or from a plain message (older call sites)::

        raise ParameterError(param="n_components", value=-3, owner="PCADenoiser",
                             allowed="an int in [0, inf) or None",
                             fix="Use None to choose the rank by cross-validation.")
        # The 'n_components' parameter of PCADenoiser must be an int in [0, inf) or None;
        # got -3. Use None to choose the rank by cross-validation.

    Library code always names the Python parameter. In ``message``, ``allowed`` and ``fix``
    of a structured error, ``$name`` marks the name of a parameter (write ``$$`` for a
    dollar sign): ``str(error)`` prints it as ``name``, and the command line
    (:mod:`conform_core.cli`) prints it as the command's flag, from the command's one
    table of parameter names to flags (``"Lower $n_shared"`` -> ``"Lower --shared"``).
    Write ``$name=VALUE`` where the value matters: it reads ``name=VALUE`` in Python and
    ``--flag=VALUE`` on the command line. Put user text (paths, ids) in ``value``, never
    in a template, or escape it with :meth:`quote`.

    Parameters
    ----------
    message : str or None, default=None
        A complete message. Without ``param`` it is printed as it is (the plain form);
        with ``param`` it is a template that replaces the standard sentence ``The 'p'
        parameter of Owner must be <allowed>; got <value>.`` (for a rule between several
        parameters, e.g. ``"$n_shared={a} is larger than $n_stimuli={b}."``).
    param : str or None, default=None
        The parameter at fault, as the Python API names it.
    value : object, optional
        The value it had (printed as ``got <value>``: arrays by shape and dtype).
    allowed : str or None, default=None
        What the parameter may be, e.g. ``"an int in [1, inf) or None"``.
    fix : str, default=""
        How to fix it, printed after the sentence.
    owner : str or None, default=None
        Who takes the parameter: a class or function name (``"PCADenoiser"``).

    Attributes
    ----------
    param, value, allowed, fix, owner
        As given (``value`` is ``ParameterError.UNSET`` when not given).
    """

    UNSET: Any = _UNSET
    """The ``value`` of an error raised without one."""

    def __init__(self, message: str | None = None, *, param: str | None = None,
                 value: Any = _UNSET, allowed: str | None = None, fix: str = "",
                 owner: Any = None) -> None:
        if message is None and param is None:
            raise TypeError("ParameterError needs a message, or at least param=")
        self.template = message
        self.param = param
        self.value = value
        self.allowed = allowed
        self.fix = fix
        self.owner = owner if owner is None or isinstance(owner, str) else type(owner).__name__
        super().__init__(self.render())

    @property
    def structured(self) -> bool:
        """Whether the error names its parameter (``param``), so a CLI can render flags."""
        return self.param is not None

    @staticmethod
    def quote(text: str) -> str:
        """Escape ``text`` (a path, an id) for use inside a template: ``$`` becomes ``$$``."""
        return str(text).replace("$", "$$")

    def render(self, flags: Mapping[str, str] | None = None) -> str:
        """Return the message, naming parameters as ``flags`` spells them (default: Python names).

        Parameters
        ----------
        flags : mapping of str to str or None
            Parameter name -> how the caller's interface spells it, e.g.
            ``{"n_subjects": "--subjects"}``. A parameter not in it keeps its Python name.

        Returns
        -------
        str
            The message.
        """
        if self.param is None:
            return str(self.template)
        if self.template is not None:
            head = _fill(self.template, flags)
        else:
            flag = flags.get(self.param) if flags is not None else None
            who = (f"The {flag} option" if flag else
                   f"The {self.param!r} parameter{f' of {self.owner}' if self.owner else ''}")
            allowed = _fill(self.allowed, flags) if self.allowed else "valid"
            got = "" if self.value is _UNSET else f"; got {_describe(self.value)}"
            head = f"{who} must be {allowed}{got}."
        fix = _fill(self.fix, flags).strip() if self.fix else ""
        return f"{head} {fix}" if fix else head

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self) -> tuple[Any, ...]:  # keep the structure across pickling (Dask)
        state = dict(self.__dict__)
        try:
            pickle.dumps(state["value"])
        except Exception:  # noqa: BLE001  (pickle raises many types); send the description
            state["value"] = _Described(_describe(state["value"]))
        return (_restore_parameter_error, (type(self), state))


class _Described:
    """Stands for an unpicklable value: prints as the value's description."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _restore_parameter_error(cls: type[ParameterError], state: dict[str, Any]) -> ParameterError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error.render())
    return error


def _describe(value: Any) -> str:
    from .validation import describe

    return describe(value)


class ShapeError(ConformError, ValueError):
    """An array has the wrong number of dimensions, length or dtype, or bad values."""


class UnknownComponentError(ConformError, KeyError):
    """No component (or kind) of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(ConformError, _SklearnNotFittedError):
    """A component was used before ``fit`` (also scikit-learn's NotFittedError)."""


class PluginError(ConformError):
    """A plugin is malformed (bad registration, name clash, hook misuse)."""


class PluginLoadError(PluginError):
    """A plugin's entry point could not be imported."""


class SpecError(ConformError, ValueError):
    """An analysis spec has an unknown key, plugin or parameter, or stages that do not fit."""


class DataFileError(ConformError, OSError):
    """A file is missing, unreadable, truncated or does not follow its format."""


class AnalysisFailedError(ConformError):
    """Every subject of an analysis failed, so there is nothing to report or write.

    ``conform fit`` exits 3 on it (as when some cells fail), prints each failure, and
    leaves an existing results folder as it was.

    Parameters
    ----------
    message : str
        What failed and the first error.
    result : object, optional
        The :class:`~conform_core.analysis.AnalysisResult` with the failure rows.
    """

    def __init__(self, message: str, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class Interrupted(BaseException):
    """A termination signal (SIGTERM) arrived while a command was running.

    The ``conform`` command line installs a handler that raises it, so the signal unwinds
    the stack like Ctrl-C's :class:`KeyboardInterrupt`: ``finally`` blocks run, atomic
    writes remove their temporary files and folders, and a Dask client is closed. It derives
    from :class:`BaseException`, not :class:`Exception`, so code that isolates failures
    with ``except Exception`` (one failed cell of ``conform fit``) does not swallow it.

    Parameters
    ----------
    signum : int
        The signal number (``signal.SIGTERM``).
    outcome : str, optional
        What the interrupted command leaves behind, for the one-line report (default:
        "nothing was written"). A command that keeps partial work on purpose (an upload that
        resumes, a server that stopped) re-raises the interrupt with its own outcome.
    """

    def __init__(self, signum: int, outcome: str | None = None) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.outcome = outcome

    @property
    def exit_code(self) -> int:
        """The shell's exit status for death by this signal: 128 + signal number."""
        return 128 + self.signum

    def __str__(self) -> str:
        import signal

        try:
            name = signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        return f"Interrupted by {name}"


class ConformWarning(UserWarning):
    """A warning about a result that is valid but may not be what was intended."""
