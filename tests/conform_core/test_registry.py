from __future__ import annotations

import numpy as np
import pytest

from conform_core import ConditionData, ConditionTrials, Denoiser, PluginError, UnknownComponentError
from conform_core.registry import ComponentRegistry


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
    with pytest.raises(UnknownComponentError, match=r"No denoiser named 'maen'.*Did you mean 'mean'\?"):
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
    registry._current = ("first", "dist-a", "1.0")
    registry.add("denoiser", "mean", _Mean)
    registry._current = ("second", "dist-b", "2.0")
    with pytest.raises(PluginError, match="'first' \\(dist-a\\) and 'second'"):
        registry.add("denoiser", "mean", _Mean)


def test_entry_records_origin():
    registry = ComponentRegistry()
    registry._current = ("mine", "conform-mine", "0.3")
    registry.add("denoiser", "mean", _Mean)
    entry = registry.entry("denoiser", "mean")
    assert (entry.plugin, entry.distribution, entry.version) == ("mine", "conform-mine", "0.3")
    assert entry.as_dict()["module"] == __name__ or entry.as_dict()["module"].endswith("test_registry")
    out = _Mean().fit_transform(ConditionTrials(np.ones((2, 3, 2)), ["a", "b", "c"]))
    assert out.data.shape == (2, 3)


def test_unknown_name_mentions_plugins_that_failed_to_load():
    from conform_core import PluginLoadError

    registry = ComponentRegistry(load_errors=[PluginLoadError("Plugin 'extra' failed to load: boom")])
    with pytest.raises(UnknownComponentError, match="may provide it: Plugin 'extra' failed to load: boom"):
        registry.get("denoiser", "from-extra")
