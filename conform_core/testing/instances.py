"""The instances the contract kit checks, built lazily (scikit-learn's instance generator).

A :class:`ContractInstance` says how to build one component for the checks: with its
default parameters, with given parameters, or with a function that receives an empty
temporary folder (a dataset that reads files writes a tiny one there). Nothing is built
when tests are collected: :func:`~conform_core.testing.parametrize_with_checks` builds each
instance the first time one of its checks runs, once per test session, in a folder from
pytest's ``tmp_path_factory`` (removed by pytest, as every ``tmp_path``).

Two ways to hand instances to the kit:

- in a plugin's own tests, pass them to ``parametrize_with_checks`` beside plain instances::

      @parametrize_with_checks([MyDenoiser(), ContractInstance(MyDataset, build=toy_dataset)])
      def test_contract(component, check):
          check(component)

- for every registered component at once, implement the hook
  :func:`~conform_core.hookspecs.conform_contract_instances` and let
  :func:`registered_contract_instances` collect them (conform's ``tests/test_common.py``
  checks every component of its distribution this way).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..components import Component

if TYPE_CHECKING:
    import pluggy

    from ..registry import ComponentRegistry

__all__ = ["ContractInstance", "ContractInstances", "registered_contract_instances"]

Build = Callable[[Path], Component]
"""``build(folder) -> Component``: ``folder`` is an empty temporary folder for its files."""

_ID = re.compile(r"^[A-Za-z0-9_.=,'\"+-]+$")


@dataclass(frozen=True, eq=False)
class ContractInstance:
    """How to build one component for the contract checks (built lazily, at most once).

    Parameters
    ----------
    cls : type of Component
        The component class. Its ``kind`` decides which checks run.
    build : callable or None, default=None
        ``build(folder) -> Component``, called with an empty temporary folder the first
        time a check needs the instance (e.g. to write a tiny dataset there). With
        None, the instance is ``cls(**params)``.
    params : mapping or None, default=None
        Constructor parameters when ``build`` is None (default: all defaults).
    id : str or None, default=None
        Shown in the test ids, ``Cls(id)-check_name``; default: the build function's
        name, the parameters (``preset='wiener'``) or ``default``.
    requires : tuple of str, default=()
        Modules of an optional extra the instance needs (e.g. ``("torch", "open_clip")``).
        When one is not installed, a check that fails for want of it (an ImportError
        naming it, or an error raised from one) is skipped with ``hint`` as the reason;
        the checks that do not need it still run.
    hint : str, default=""
        How to install what ``requires`` names, e.g. ``pip install 'conform-fmri[clip]'``.

    Examples
    --------
    >>> from conform_baselines import PCADenoiser                  # doctest: +SKIP
    >>> ContractInstance(PCADenoiser, params={"n_components": 2})  # doctest: +SKIP
    ContractInstance(PCADenoiser(n_components=2))
    """

    cls: type[Component]
    build: Build | None = None
    params: Mapping[str, Any] | None = None
    id: str | None = None
    requires: tuple[str, ...] = ()
    hint: str = ""
    _built: dict[str, Component] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.cls, type) and issubclass(self.cls, Component)):
            raise TypeError(f"ContractInstance needs a Component subclass; got {self.cls!r}.")
        if self.build is not None and self.params is not None:
            raise TypeError(f"ContractInstance({self.cls.__name__}) takes build= or params=, "
                            "not both: pass the parameters inside build.")
        if self.build is not None and not callable(self.build):
            raise TypeError(f"ContractInstance({self.cls.__name__}): build must be a function "
                            f"build(folder) -> {self.cls.__name__}; got {self.build!r}.")
        if isinstance(self.requires, str):
            object.__setattr__(self, "requires", (self.requires,))
        label = self.id if self.id is not None else self._default_id()
        if not _ID.match(label):
            raise ValueError(f"ContractInstance({self.cls.__name__}) id {label!r} is not usable "
                             "in a test id (letters, digits and _.=,'\"+- only); pass id=.")
        object.__setattr__(self, "id", label)

    def _default_id(self) -> str:
        if self.build is not None:
            return getattr(self.build, "__name__", "")
        if self.params:
            return ",".join(f"{k}={v!r}" for k, v in self.params.items())
        return "default"

    @property
    def label(self) -> str:
        """``Cls(id)``, or ``Cls()`` for the default instance (the start of each test id)."""
        return f"{self.cls.__name__}({'' if self.id == 'default' else self.id})"

    def missing(self) -> list[str]:
        """Return the modules of ``requires`` that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def make(self, folder: Path) -> Component:
        """Build a new instance (``build(folder)`` or ``cls(**params)``) and check its class.

        Parameters
        ----------
        folder : Path
            An empty folder the instance may write its files into; it must outlive the
            instance.

        Raises
        ------
        TypeError
            If ``build`` returns something that is not an instance of ``cls``.
        """
        if self.build is None:
            return self.cls(**dict(self.params or {}))
        made = self.build(Path(folder))
        if type(made) is not self.cls:
            raise TypeError(f"ContractInstance {self.label}: build returned "
                            f"{type(made).__name__}, not a {self.cls.__name__}.")
        return made

    def get(self, session: str, folder: Callable[[], Path]) -> Component:
        """Return the instance built for ``session`` (built on first call, with ``folder()``)."""
        if session not in self._built:
            self._built[session] = self.make(folder())
        return self._built[session]


class ContractInstances:
    """What a plugin's :func:`~conform_core.hookspecs.conform_contract_instances` fills.

    A class with no instance added here is checked with its default parameters. A class
    with some is checked with exactly those (add ``instances.add(Cls)`` to keep the
    default one too).
    """

    def __init__(self) -> None:
        self._by_class: dict[type[Component], list[ContractInstance]] = {}

    def add(self, cls: type[Component], build: Build | None = None, *,
            params: Mapping[str, Any] | None = None, id: str | None = None,
            requires: Iterable[str] = (), hint: str = "") -> ContractInstance:
        """Add an instance of ``cls`` to check (see :class:`ContractInstance`).

        Raises
        ------
        ValueError
            If ``cls`` already has an instance with that ``id``.
        """
        instance = ContractInstance(cls, build, params=params, id=id,
                                    requires=tuple(requires), hint=hint)
        known = self._by_class.setdefault(cls, [])
        if any(other.id == instance.id for other in known):
            raise ValueError(f"{cls.__name__} already has a contract instance with id "
                             f"{instance.id!r}; give each instance its own id=.")
        known.append(instance)
        return instance

    def of(self, cls: type[Component]) -> list[ContractInstance]:
        """Return the instances added for ``cls``, or its default instance when none were."""
        return list(self._by_class.get(cls) or [ContractInstance(cls)])


def registered_contract_instances(pm: pluggy.PluginManager | None = None,
                                  registry: ComponentRegistry | None = None, *,
                                  distributions: Iterable[str] | None = None,
                                  ) -> list[ContractInstance]:
    """Return a contract instance for every registered component (from the hook, else default).

    Calls :func:`~conform_core.hookspecs.conform_contract_instances` on every plugin of
    ``pm`` (an error there propagates: this is for tests). Nothing is built.

    Parameters
    ----------
    pm : pluggy.PluginManager or None, default=None
        Default: the process-wide manager (installed plugins).
    registry : ComponentRegistry or None, default=None
        Default: the process-wide registry.
    distributions : iterable of str or None, default=None
        Keep only components installed by these distributions (e.g. ``["conform-fmri"]``).

    Returns
    -------
    list of ContractInstance
        In registry order (kind, then name).
    """
    from ..plugins import default_plugin_manager, default_registry

    pm = default_plugin_manager() if pm is None else pm
    registry = default_registry() if registry is None else registry
    collected = ContractInstances()
    pm.hook.conform_contract_instances(instances=collected)
    keep = None if distributions is None else set(distributions)
    out: list[ContractInstance] = []
    seen: set[type[Component]] = set()
    for entry in registry.entries():
        if entry.cls not in seen and (keep is None or entry.distribution in keep):
            seen.add(entry.cls)
            out.extend(collected.of(entry.cls))
    return out
