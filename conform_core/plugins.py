"""Finding and loading plugins: entry points of the group ``conform``, through pluggy.

Nothing is loaded at import time. The first call of :func:`default_registry` (or
:func:`get_component`, or any CLI command) loads every installed plugin once; a plugin
that fails to import or register is reported with its distribution and a fix, and the
others keep working.

Environment
-----------
CONFORM_LOAD_PLUGINS
    Comma-separated entry-point names: load only these plugins.
CONFORM_TRACE_PLUGINS
    Set to 1 to print every hook call to stderr (see :func:`trace_hook_calls`).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .components import Component
from .exceptions import ConformWarning, PluginLoadError
from .registry import ComponentRegistry

if TYPE_CHECKING:
    import typer

__all__ = [
    "ConformPluginManager",
    "make_plugin_manager",
    "build_registry",
    "trace_hook_calls",
    "default_registry",
    "reset_default_registry",
    "get_component",
    "register_commands",
]

ENTRY_POINT_GROUP = "conform"


class ConformPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and what failed.

    Attributes
    ----------
    load_errors : list of PluginLoadError
        Entry points that could not be imported.
    origins : dict of str to (str, str)
        Plugin name -> (distribution, version).
    """

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.load_errors: list[PluginLoadError] = []
        self.origins: dict[str, tuple[str, str]] = {}


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable, "").strip()
    return {v.strip() for v in value.split(",") if v.strip()} if value else None


def _origin_of(module_name: str) -> tuple[str, str]:
    top = module_name.split(".")[0]
    dists = metadata.packages_distributions().get(top, [])
    if not dists:
        return ("unknown", "unknown")
    try:
        return (dists[0], metadata.version(dists[0]))
    except metadata.PackageNotFoundError:
        return (dists[0], "unknown")


def _load_entry_points(pm: ConformPluginManager, only: set[str] | None) -> None:
    seen: set[str] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in seen or (only is not None and ep.name not in only):
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "unknown"
        try:
            module = ep.load()
        except Exception as exc:
            pm.load_errors.append(PluginLoadError(
                f"Plugin {ep.name!r} ({ep.value}, from {dist} {version}) failed to load: "
                f"{type(exc).__name__}: {exc}. Fix: reinstall or upgrade {dist}, uninstall it "
                f"(pip uninstall {dist}), or set CONFORM_LOAD_PLUGINS to skip it."
            ))
            continue
        if pm.is_registered(module):
            continue
        pm.register(module, name=ep.name)
        pm.origins[ep.name] = (dist, version)


def make_plugin_manager(*, entry_points: bool = True) -> ConformPluginManager:
    """Create a plugin manager with conform's hooks and (optionally) installed plugins.

    Parameters
    ----------
    entry_points : bool, default=True
        Load the modules named in the ``conform`` entry-point group (filtered by
        ``CONFORM_LOAD_PLUGINS``). Tests pass False and register their own plugins.

    Returns
    -------
    ConformPluginManager
        With tracing on (to stderr) when ``CONFORM_TRACE_PLUGINS=1``.
    """
    pm = ConformPluginManager()
    pm.add_hookspecs(hookspecs)
    if entry_points:
        _load_entry_points(pm, only=_names_from_env("CONFORM_LOAD_PLUGINS"))
    pm.check_pending()
    if os.environ.get("CONFORM_TRACE_PLUGINS") == "1":
        trace_hook_calls(pm)
    return pm


def trace_hook_calls(pm: pluggy.PluginManager) -> Callable[[], None]:
    """Print every hook call of ``pm`` to stderr (what ``CONFORM_TRACE_PLUGINS=1`` turns on).

    Two lines per call, each starting with ``conform trace:``: the hook, its arguments and
    the plugins it calls, in call order (wrappers marked); then how the call ended.

    Parameters
    ----------
    pm : pluggy.PluginManager

    Returns
    -------
    callable
        Call it to stop tracing.
    """

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        called = ", ".join(i.plugin_name + (" (wrapper)" if i.wrapper or i.hookwrapper else "")
                           for i in reversed(impls))
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        print(f"conform trace: {hook_name}({args}) calls {called or 'no plugin'}", file=sys.stderr)

    def after(outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl],
              kwargs: Mapping[str, Any]) -> None:
        exc = outcome.exception
        ended = "finished" if exc is None else f"raised {type(exc).__name__}: {exc}"
        print(f"conform trace: {hook_name} {ended}", file=sys.stderr)

    return pm.add_hookcall_monitoring(before, after)


def _call_each(pm: ConformPluginManager, hook_name: str,
               on_error: Callable[[PluginLoadError], None],
               kwargs_for: Callable[[str, tuple[str, str]], dict[str, Any]]) -> None:
    """Call one hook through pluggy, one plugin at a time, so a failing plugin spares the others.

    Plugins are taken in pluggy's own call order (the last registered first; ``tryfirst``
    and ``trylast`` honoured). Each call is ``pm.subset_hook_caller`` without the other
    plugins that implement the hook, so it runs through pluggy's hook execution: tracing
    and hook wrappers (``wrapper=True``) work. A plugin whose only implementations of the
    hook are wrappers is kept in every call and wraps each plugin's call.

    Parameters
    ----------
    pm : ConformPluginManager
    hook_name : str
        Name of the hook, e.g. ``"conform_register"``.
    on_error : callable
        Receives a :class:`PluginLoadError` naming the plugin, its distribution and a fix.
    kwargs_for : callable
        ``kwargs_for(plugin_name, (distribution, version))`` -> the hook's keyword arguments.
    """
    caller = getattr(pm.hook, hook_name)
    # get_hookimpls() is in registration order; pluggy calls it from the end.
    impls = [i for i in reversed(caller.get_hookimpls()) if not (i.wrapper or i.hookwrapper)]
    plugins = {i.plugin_name: i.plugin for i in impls}
    for name, plugin in plugins.items():
        origin = pm.origins.get(name) or _origin_of(getattr(plugin, "__name__", name))
        others = [p for n, p in plugins.items() if n != name]
        call = pm.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            call(**kwargs_for(name, origin))
        except Exception as exc:
            on_error(PluginLoadError(
                f"Plugin {name!r} (from {origin[0]} {origin[1]}) failed in {hook_name}: "
                f"{type(exc).__name__}: {exc}. Fix: upgrade or uninstall {origin[0]}, or set "
                "CONFORM_LOAD_PLUGINS to skip it."
            ))


def build_registry(pm: ConformPluginManager) -> ComponentRegistry:
    """Ask every plugin registered with ``pm`` to add its components.

    Each plugin's ``conform_register`` receives ``registry.for_plugin(name, distribution,
    version)``, so every entry records where it came from.

    Returns
    -------
    ComponentRegistry
        With ``load_errors`` listing the plugins that failed to import or register.
    """
    registry = ComponentRegistry(load_errors=pm.load_errors)

    def kwargs_for(name: str, origin: tuple[str, str]) -> dict[str, Any]:
        return {"registry": registry.for_plugin(name, *origin)}

    _call_each(pm, "conform_register", registry.load_errors.append, kwargs_for)
    return registry


def register_commands(pm: ConformPluginManager, app: typer.Typer) -> list[PluginLoadError]:
    """Let every plugin add its CLI commands to ``app``, one plugin at a time.

    Returns
    -------
    list of PluginLoadError
        The plugins whose ``conform_register_commands`` raised; the others' commands are added.
    """
    errors: list[PluginLoadError] = []
    _call_each(pm, "conform_register_commands", errors.append, lambda name, origin: {"app": app})
    return errors


_lock = threading.Lock()
_default: tuple[ConformPluginManager, ComponentRegistry] | None = None


def default_plugin_manager() -> ConformPluginManager:
    """Return the process-wide plugin manager (created, and plugins loaded, on first use)."""
    return _load_default()[0]


def default_registry() -> ComponentRegistry:
    """Return the process-wide registry of installed components (built on first use).

    Plugins that failed to load are warned about once (:class:`ConformWarning`).
    """
    return _load_default()[1]


def _load_default() -> tuple[ConformPluginManager, ComponentRegistry]:
    global _default
    with _lock:
        if _default is None:
            pm = make_plugin_manager()
            registry = build_registry(pm)
            for error in registry.load_errors:
                warnings.warn(str(error), ConformWarning, stacklevel=3)
            _default = (pm, registry)
        return _default


def reset_default_registry() -> None:
    """Forget the process-wide manager and registry (the next use reloads plugins)."""
    global _default
    with _lock:
        _default = None


def get_component(kind: str, name: str) -> type[Component]:
    """Return the component class registered as ``kind`` ``name``.

    Parameters
    ----------
    kind : {"dataset", "denoiser", "aligner", "encoder", "features"}
        The kind of component.
    name : str
        Its registered name, e.g. ``"psn"`` or ``"ridge"``.

    Raises
    ------
    UnknownComponentError
        With the installed names and the closest match.

    Examples
    --------
    >>> from conform_core import get_component
    >>> Ridge = get_component("encoder", "ridge")  # doctest: +SKIP
    """
    return default_registry().get(kind, name)


