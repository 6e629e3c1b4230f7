"""The plugin protocol of conform: the hooks a plugin may implement.

A plugin is a module named in the ``conform`` entry-point group. It implements one or
more of the hooks below, decorated with :data:`hookimpl`::

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
    from .testing.instances import ContractInstances

__all__ = ["hookspec", "hookimpl", "conform_register", "conform_register_commands",
           "conform_contract_instances"]

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


@hookspec
def conform_contract_instances(instances: ContractInstances) -> None:
    """Say how the contract kit builds this plugin's components for its checks.

    Only tests call this hook (:func:`conform_core.testing.registered_contract_instances`).
    Without it, each registered component is checked with its default parameters. Implement
    it for a component whose default instance cannot run (a dataset that reads files, a
    model that needs weights) or to check more parameter settings. Build functions run
    lazily, the first time a check needs the instance, never at import or collection time.

    Parameters
    ----------
    instances : ContractInstances
        Call ``instances.add(cls, build, id=..., requires=..., hint=...)`` once per
        instance: ``build(folder)`` receives an empty temporary folder (write small files
        there) and returns the component; or ``instances.add(cls, params={...})``. A class
        with instances added is checked with exactly those. ``requires`` names modules of
        an optional extra: when one is missing, the checks that need it are skipped with
        ``hint`` as the reason (the others still run). See :class:`conform_core.testing.ContractInstance`.

    Examples
    --------
    >>> @hookimpl
    ... def conform_contract_instances(instances):
    ...     instances.add(MyDataset, lambda folder: MyDataset(location=write_toy(folder)),
    ...                   id="toy")
    ...     instances.add(MyDenoiser)                         # the default instance
    ...     instances.add(MyDenoiser, params={"rank": 2})     # and one more
    """
