from __future__ import annotations

import numpy as np
import pytest

from conform_core import (
    ConditionData,
    ConditionTrials,
    Denoiser,
    PluginError,
    PluginLoadError,
    UnknownComponentError,
)
from conform_core.registry import ComponentRegistry, public_module


class _Mean(Denoiser):
    """Trial mean.

    Parameters
    ----------
    none
    """

    def _fit(self, data: ConditionTrials) -> _Mean:
        self.n_ = data.n_units
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        return data.mean()


def test_add_and_get_round_trip():
    registry = ComponentRegistry()
    registry.add("denoiser", "mean", _Mean)
    assert registry.get("denoiser", "mean") is _Mean
    assert registry.names("denoiser") == ["mean"]


def test_unknown_name_suggests_close_match():
    registry = ComponentRegistry()
    registry.add("denoiser", "mean", _Mean)
    match = r"No denoiser named 'maen'.*Did you mean 'mean'\?"
    with pytest.raises(UnknownComponentError, match=match):
        registry.get("denoiser", "maen")


def test_unknown_name_message_is_not_quoted_like_a_keyerror():
    registry = ComponentRegistry()
    with pytest.raises(UnknownComponentError) as info:
        registry.get("denoiser", "x")
    assert not str(info.value).startswith("'")


def test_unknown_kind_lists_kinds():
    with pytest.raises(UnknownComponentError, match="Kinds: dataset, denoiser"):
        ComponentRegistry().get("denoisr", "x")


def test_bad_kind_name_and_class_are_rejected():
    registry = ComponentRegistry()
    with pytest.raises(PluginError, match="unknown kind 'denoisers'.*Did you mean 'denoiser'"):
        registry.add("denoisers", "mean", _Mean)
    with pytest.raises(PluginError, match=r"must match \[a-z\]"):
        registry.add("denoiser", "Mean", _Mean)
    with pytest.raises(PluginError, match="not a subclass of conform_core.components.Encoder"):
        registry.add("encoder", "mean", _Mean)


def test_name_clash_names_both_plugins():
    registry = ComponentRegistry()
    registry.for_plugin("first", "dist-a", "1.0").add("denoiser", "mean", _Mean)
    with pytest.raises(PluginError, match="'first' \\(dist-a\\) and 'second'"):
        registry.for_plugin("second", "dist-b", "2.0").add("denoiser", "mean", _Mean)


def test_entry_records_origin():
    registry = ComponentRegistry()
    registry.for_plugin("mine", "conform-mine", "0.3").add("denoiser", "mean", _Mean)
    entry = registry.entry("denoiser", "mean")
    assert (entry.plugin, entry.distribution, entry.version) == ("mine", "conform-mine", "0.3")
    module = entry.as_dict()["module"]
    assert module == __name__ or module.endswith("test_registry")
    out = _Mean().fit_transform(ConditionTrials(np.ones((2, 3, 2)), ["a", "b", "c"]))
    assert out.data.shape == (2, 3)


def test_public_module_is_the_shortest_public_path_that_exports_the_class(monkeypatch):
    import sys
    import types

    top, private = types.ModuleType("pkg_demo"), types.ModuleType("pkg_demo._impl")
    hidden = type("Hidden", (), {"__module__": "pkg_demo._impl"})
    shown = type("Shown", (), {"__module__": "pkg_demo._impl"})
    private.Hidden = private.Shown = hidden  # only ``Shown`` is re-exported by the package
    private.Shown, top.Shown = shown, shown
    monkeypatch.setitem(sys.modules, "pkg_demo", top)
    monkeypatch.setitem(sys.modules, "pkg_demo._impl", private)
    assert public_module(shown) == "pkg_demo"
    assert public_module(hidden) == "pkg_demo._impl"  # nothing public exports it: say where it is


@pytest.mark.parametrize("kind,name,expected", [
    ("dataset", "mosaic", "conform_mosaic"),
    ("features", "clip", "conform_clip"),
])
def test_built_in_plugins_show_public_modules(kind, name, expected):
    from conform_core.plugins import default_registry

    registry = default_registry()
    if name not in registry.names(kind):
        pytest.skip(f"plugin {name!r} is not installed")
    module = registry.entry(kind, name).module
    assert module == expected and not any(p.startswith("_") for p in module.split("."))


def test_unknown_name_mentions_plugins_that_failed_to_load():
    error = PluginLoadError("Plugin 'extra' failed to load: boom")
    registry = ComponentRegistry(load_errors=[error])
    with pytest.raises(UnknownComponentError, match=f"may provide it: {error}"):
        registry.get("denoiser", "from-extra")


def test_a_plugin_view_shares_the_table_and_records_only_its_own_provenance():
    registry = ComponentRegistry()
    view = registry.for_plugin("mine", "conform-mine", "0.3")
    assert isinstance(view, ComponentRegistry) and view.plugin == "mine" and registry.plugin is None
    view.add("denoiser", "mean", _Mean)
    registry.add("denoiser", "other", _Mean)
    assert view.get("denoiser", "other") is _Mean and registry.get("denoiser", "mean") is _Mean
    assert registry.entry("denoiser", "mean").distribution == "conform-mine"
    plain = registry.entry("denoiser", "other")
    assert (plain.plugin, plain.distribution, plain.version) == (__name__.split(".")[0], "unknown",
                                                                 "unknown")
    assert view.load_errors is registry.load_errors


def test_private_state_is_neither_a_parameter_nor_in_the_repr():
    import inspect

    assert list(inspect.signature(ComponentRegistry).parameters) == ["load_errors"]
    registry = ComponentRegistry()
    registry.add("denoiser", "mean", _Mean)
    assert repr(registry) == "<ComponentRegistry: 1 component, 0 load errors>"
    assert "for plugin 'mine'" in repr(registry.for_plugin("mine", "d", "1"))
