"""The component registry: (kind, name) -> class, filled by plugins."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from .components import KIND_BASES, Component
from .exceptions import PluginError, PluginLoadError, UnknownComponentError
from .validation import NAME_PATTERN, is_valid_name, suggest

__all__ = ["ComponentEntry", "ComponentRegistry", "KINDS", "public_module"]

KINDS: tuple[str, ...] = tuple(KIND_BASES)
"""The kinds of component, in pipeline order."""


@dataclass(frozen=True)
class ComponentEntry:
    """One registered component and where it came from."""

    kind: str
    name: str
    cls: type[Component]
    plugin: str
    distribution: str
    version: str

    @property
    def module(self) -> str:
        """Public module a user imports the class from (see `public_module`)."""
        return public_module(self.cls)

    def as_dict(self) -> dict[str, str]:
        """Plain-text description (for ``conform plugins --json``)."""
        return {"kind": self.kind, "name": self.name, "class": self.cls.__qualname__,
                "plugin": self.plugin, "distribution": self.distribution,
                "version": self.version, "module": self.module}


def public_module(cls: type) -> str:
    """Shortest public module path that exports ``cls``.

    Walks the packages above ``cls.__module__``, shortest first, and returns the first
    one whose namespace holds ``cls`` under its own name. Paths with a ``_private``
    segment are skipped, so a class defined in ``pkg._impl`` and re-exported by ``pkg``
    is shown as ``pkg``.

    Parameters
    ----------
    cls : type
        The class to locate.

    Returns
    -------
    str
        The public module path, or ``cls.__module__`` when no public module exports it.
    """
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        if any(part.startswith("_") for part in parts[:end]):
            break  # below a private segment nothing is public
        path = ".".join(parts[:end])
        module = sys.modules.get(path)
        if module is not None and getattr(module, cls.__name__, None) is cls:
            return path
    return cls.__module__


class ComponentRegistry:
    """The table of components, by kind and name.

    Plugins add to it through the ``conform_register`` hook. It checks every addition:
    the kind is known, the name is well formed and free, and the class derives from the
    kind's base class.

    Parameters
    ----------
    load_errors : iterable of PluginLoadError, default=()
        Plugins that already failed to load.

    Attributes
    ----------
    load_errors : list of PluginLoadError
        Plugins that failed to load or register; the others keep working.
    """

    def __init__(self, load_errors: Iterable[PluginLoadError] = ()) -> None:
        self.load_errors: list[PluginLoadError] = list(load_errors)
        self._table: dict[str, dict[str, ComponentEntry]] = {k: {} for k in KINDS}
        self._origin: tuple[str, str, str] | None = None

    def for_plugin(self, plugin: str, distribution: str, version: str) -> ComponentRegistry:
        """Return a view of this registry that records ``plugin`` as the origin of what it adds.

        The view shares the table and ``load_errors`` of this registry: what is added
        through it is visible here, and :meth:`get` sees every plugin's components. The
        plugin manager hands one view to each plugin's ``conform_register``.

        Parameters
        ----------
        plugin : str
            Entry-point name of the plugin.
        distribution : str
            The distribution that installed it (``"unknown"`` if not known).
        version : str
            Its version (``"unknown"`` if not known).

        Returns
        -------
        ComponentRegistry

        Examples
        --------
        >>> registry = ComponentRegistry()
        >>> view = registry.for_plugin("mine", "conform-mine", "0.1")
        >>> view.add("denoiser", "mean", MeanDenoiser)  # doctest: +SKIP
        >>> registry.entry("denoiser", "mean").distribution  # doctest: +SKIP
        'conform-mine'
        """
        view = copy.copy(self)
        view._origin = (plugin, distribution, version)
        return view

    @property
    def plugin(self) -> str | None:
        """The plugin this view records additions for (None on a registry that is not a view)."""
        return None if self._origin is None else self._origin[0]

    def __repr__(self) -> str:
        count = sum(len(t) for t in self._table.values())
        view = "" if self._origin is None else f" for plugin {self._origin[0]!r}"
        errors = len(self.load_errors)
        return (f"<ComponentRegistry{view}: {count} component{'s' * (count != 1)}, "
                f"{errors} load error{'s' * (errors != 1)}>")

    def add(self, kind: str, name: str, cls: type[Component]) -> None:
        """Register ``cls`` as the ``kind`` component called ``name``.

        On a view from :meth:`for_plugin` the entry records that plugin; otherwise the
        plugin is the top-level package of ``cls`` and the distribution is unknown.

        Raises
        ------
        PluginError
            For an unknown kind, a malformed or taken name, or a class of the wrong base.
        """
        plugin, dist, version = self._origin or (cls.__module__.split(".")[0], "unknown", "unknown")
        if kind not in KIND_BASES:
            raise PluginError(
                f"Plugin {plugin!r} registers {name!r} under unknown kind {kind!r}. "
                f"Kinds: {', '.join(KINDS)}.{suggest(kind, KINDS)}"
            )
        if not is_valid_name(name):
            raise PluginError(
                f"Plugin {plugin!r} registers a {kind} named {name!r}; names must match "
                f"{NAME_PATTERN} (short, lowercase, stable), e.g. 'trial-average'."
            )
        base = KIND_BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"Plugin {plugin!r} registers {kind} {name!r} as {cls!r}, which is not a subclass "
                f"of conform_core.components.{base.__name__}. Derive it from that base class."
            )
        table = self._table[kind]
        if name in table:
            other = table[name]
            raise PluginError(
                f"Two plugins register a {kind} named {name!r}: {other.plugin!r} "
                f"({other.distribution}) and {plugin!r}. Uninstall one, or set "
                "CONFORM_LOAD_PLUGINS to load only the one you want."
            )
        table[name] = ComponentEntry(kind, name, cls, plugin, dist or "unknown",
                                     version or "unknown")

    def get(self, kind: str, name: str) -> type[Component]:
        """Return the class registered as ``kind`` ``name``.

        Raises
        ------
        UnknownComponentError
            With the installed names, a close match, and any plugin that failed to load.
        """
        return self.entry(kind, name).cls

    def entry(self, kind: str, name: str) -> ComponentEntry:
        """Return the :class:`ComponentEntry` of ``kind`` ``name`` (see :meth:`get`)."""
        if kind not in self._table:
            raise UnknownComponentError(
                f"Unknown component kind {kind!r}. Kinds: {', '.join(KINDS)}.{suggest(kind, KINDS)}"
            )
        table = self._table[kind]
        if name not in table:
            installed = ", ".join(sorted(table)) or "none"
            broken = "".join(f" A plugin that failed to load may provide it: {e}"
                             for e in self.load_errors)
            raise UnknownComponentError(
                f"No {kind} named {name!r}. Installed: {installed}.{suggest(name, table)} "
                f"Run `conform plugins --kind {kind}` to see where each comes from.{broken}"
            )
        return table[name]

    def names(self, kind: str) -> list[str]:
        """Sorted names of the components of ``kind``."""
        return sorted(self._table[kind]) if kind in self._table else []

    def entries(self, kind: str | None = None) -> list[ComponentEntry]:
        """Every entry (of one kind, or all), ordered by kind then name."""
        kinds = KINDS if kind is None else (kind,)
        if kind is not None and kind not in self._table:
            self.entry(kind, "")  # raises the unknown-kind error
        return [self._table[k][n] for k in kinds for n in sorted(self._table[k])]
