"""The component registry: (kind, name) -> class, filled by plugins."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .components import KIND_BASES, Component
from .exceptions import PluginError, PluginLoadError, UnknownComponentError
from .validation import suggest

__all__ = ["ComponentEntry", "ComponentRegistry", "KINDS"]

KINDS: tuple[str, ...] = tuple(KIND_BASES)
"""The kinds of component, in pipeline order."""

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


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
        """Module that defines the component class."""
        return self.cls.__module__

    def as_dict(self) -> dict[str, str]:
        """Plain-text description (for ``conform plugins --json``)."""
        return {"kind": self.kind, "name": self.name, "class": self.cls.__qualname__,
                "plugin": self.plugin, "distribution": self.distribution,
                "version": self.version, "module": self.module}


@dataclass
class ComponentRegistry:
    """The table of components, by kind and name.

    Plugins add to it through the ``conform_register`` hook. It checks every addition:
    the kind is known, the name is well formed and free, and the class derives from the
    kind's base class.

    Attributes
    ----------
    load_errors : list of PluginLoadError
        Plugins that failed to load or register; the others keep working.
    """

    load_errors: list[PluginLoadError] = field(default_factory=list)
    _table: dict[str, dict[str, ComponentEntry]] = field(
        default_factory=lambda: {k: {} for k in KINDS})
    _current: tuple[str, str, str] = ("", "", "")

    def add(self, kind: str, name: str, cls: type[Component]) -> None:
        """Register ``cls`` as the ``kind`` component called ``name``.

        Raises
        ------
        PluginError
            For an unknown kind, a malformed or taken name, or a class of the wrong base.
        """
        plugin = self._current[0] or cls.__module__.split(".")[0]
        if kind not in KIND_BASES:
            raise PluginError(
                f"Plugin {plugin!r} registers {name!r} under unknown kind {kind!r}. "
                f"Kinds: {', '.join(KINDS)}.{suggest(kind, KINDS)}"
            )
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"Plugin {plugin!r} registers a {kind} named {name!r}; names must match "
                "[a-z][a-z0-9_-]* (short, lowercase, stable), e.g. 'trial-average'."
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
        dist, version = self._current[1], self._current[2]
        table[name] = ComponentEntry(kind, name, cls, plugin, dist or "unknown", version or "unknown")

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
