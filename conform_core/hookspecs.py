"""The plugin protocol of conform: the hooks a plugin may implement.

A plugin is a module named in the ``conform`` entry-point group. It implements one or
both hooks below, decorated with :data:`hookimpl`::

    from conform_core.hookspecs import hookimpl

    @hookimpl
    def conform_register(registry):
        registry.add("denoiser", "my-denoiser", MyDenoiser)

Hooks are called with keyword arguments. An implementation may take fewer arguments
than the spec; arguments are only ever added, never renamed or removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from .registry import ComponentRegistry

__all__ = ["hookspec", "hookimpl", "conform_register", "conform_register_commands"]

PROJECT_NAME = "conform"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for the hook specifications below."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker a plugin puts on its hook implementations."""


@hookspec
def conform_register(registry: ComponentRegistry) -> None:
    """Add this plugin's components to ``registry``.

    Parameters
    ----------
    registry : ComponentRegistry
        This plugin's view of the registry (:meth:`ComponentRegistry.for_plugin`), which
        records the plugin as the origin of what it adds. Call
        ``registry.add(kind, name, cls)`` once per component. ``kind`` is one of
        ``"dataset"``, ``"denoiser"``, ``"aligner"``, ``"encoder"``, ``"features"``;
        ``name`` is short, lowercase and stable (``[a-z][a-z0-9_-]*``); ``cls`` derives
        from the kind's base class in :mod:`conform_core.components`.

    Examples
    --------
    >>> @hookimpl
    ... def conform_register(registry):
    ...     registry.add("denoiser", "trial-average", TrialAverageDenoiser)
    """


@hookspec
def conform_register_commands(app: typer.Typer) -> None:
    """Add command-line commands to the ``conform`` program.

    Parameters
    ----------
    app : typer.Typer
        The root typer application. Add a command with ``@app.command("name")`` or a
        group with ``app.add_typer(sub_app, name="name", help="...")``. Raise
        :class:`~conform_core.exceptions.ConformError` for user errors: the CLI prints
        the message without a traceback and exits with status 2.

    Examples
    --------
    >>> @hookimpl
    ... def conform_register_commands(app):
    ...     @app.command("hello")
    ...     def hello(name: str) -> None:
    ...         print(f"hello {name}")
    """
