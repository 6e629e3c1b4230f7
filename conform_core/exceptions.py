"""The error and warning hierarchy of conform.

Every error a user can cause derives from :class:`ConformError` and also from
the built-in exception a caller would naturally catch, so ``except ValueError``
keeps working. Messages follow one template: what was expected, what was got
(with shape and dtype for arrays), and how to fix it.
"""

from __future__ import annotations

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


class ParameterError(ConformError, ValueError):
    """A parameter has a value outside its documented range or set."""


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
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

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
