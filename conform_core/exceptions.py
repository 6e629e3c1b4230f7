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
    "ConformWarning",
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


class ConformWarning(UserWarning):
    """A warning about a result that is valid but may not be what was intended."""
