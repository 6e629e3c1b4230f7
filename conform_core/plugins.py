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
    Set to 1 to print every hook call.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

import pluggy

from . import hookspecs
from .components import Component
from .exceptions import ConformWarning, PluginLoadError
from .registry import ComponentRegistry

__all__ = [
    "ConformPluginManager",
    "make_plugin_manager",
    "build_registry",
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
    """
    pm = ConformPluginManager()
    pm.add_hookspecs(hookspecs)
    if entry_points:
        _load_entry_points(pm, only=_names_from_env("CONFORM_LOAD_PLUGINS"))
    pm.check_pending()
    if os.environ.get("CONFORM_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(lambda text: print(text, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


def _call_each(pm: ConformPluginManager, hook_name: str, on_error: Callable[[PluginLoadError], None],
               before: Callable[[str, tuple[str, str]], None] | None = None, **kwargs: Any) -> None:
    """Call one hook plugin by plugin, so a failing plugin does not stop the others."""
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # registration order
        name = impl.plugin_name
        origin = pm.origins.get(name) or _origin_of(getattr(impl.plugin, "__name__", name))
        if before is not None:
            before(name, origin)
        args = {k: v for k, v in kwargs.items() if k in impl.argnames}
        try:
            impl.function(**args)
        except Exception as exc:
            on_error(PluginLoadError(
                f"Plugin {name!r} (from {origin[0]} {origin[1]}) failed in {hook_name}: "
                f"{type(exc).__name__}: {exc}. Fix: upgrade or uninstall {origin[0]}, or set "
                "CONFORM_LOAD_PLUGINS to skip it."
            ))


def build_registry(pm: ConformPluginManager) -> ComponentRegistry:
    """Ask every plugin registered with ``pm`` to add its components.

    Returns
    -------
    ComponentRegistry
        With ``load_errors`` listing the plugins that failed to import or register.
    """
    registry = ComponentRegistry(load_errors=list(pm.load_errors))

    def before(name: str, origin: tuple[str, str]) -> None:
        registry._current = (name, origin[0], origin[1])

    _call_each(pm, "conform_register", registry.load_errors.append, before, registry=registry)
    registry._current = ("", "", "")
    return registry


def register_commands(pm: ConformPluginManager, app: Any) -> list[PluginLoadError]:
    """Let every plugin add its CLI commands to ``app``; return the failures."""
    errors: list[PluginLoadError] = []
    _call_each(pm, "conform_register_commands", errors.append, app=app)
    return errors


_lock = threading.Lock()
_default: tuple[ConformPluginManager, ComponentRegistry] | None = None


def default_plugin_manager() -> ConformPluginManager:
    """The process-wide plugin manager (created, and plugins loaded, on first use)."""
    return _load_default()[0]


def default_registry() -> ComponentRegistry:
    """The process-wide registry of installed components (built on first use).

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


