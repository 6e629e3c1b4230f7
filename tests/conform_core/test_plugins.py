"""Plugin discovery: entry points, lazy loading, failures that leave the rest working."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from conform_core import get_component
from conform_core.hookspecs import hookimpl
from conform_core.plugins import build_registry

from .test_registry import _Mean


def _fake_distribution(site: Path, dist: str, group_entries: dict[str, str], modules: dict[str, str]):
    """Install a distribution the way pip lays it out: a module plus NAME.dist-info."""
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in group_entries.items())
    (info / "entry_points.txt").write_text(f"[conform]\n{lines}\n")
    (info / "RECORD").write_text("")


PLUGIN_SOURCE = '''
from conform_core import ConditionData, Denoiser
from conform_core.hookspecs import hookimpl

class OutsideDenoiser(Denoiser):
    """Outside.

    Parameters
    ----------
    none
    """
    def _fit(self, data):
        self.ok_ = True
        return self
    def _transform(self, data):
        return data.mean()

@hookimpl
def conform_register(registry):
    registry.add("denoiser", "outside", OutsideDenoiser)
'''


def _run(args: list[str], site: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "conform_core", *args], capture_output=True,
                          text=True, env=env)


def test_distribution_installed_outside_the_repo_is_discovered(tmp_path):
    _fake_distribution(tmp_path, "conform-outside", {"outside": "outside_plugin"},
                       {"outside_plugin": PLUGIN_SOURCE})
    out = _run(["plugins", "--json", "--kind", "denoiser"], tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert rows["outside"]["distribution"] == "conform-outside"
    assert rows["outside"]["version"] == "1.2.3"
    assert "trial-average" in rows  # built-ins still there


def test_plugin_that_fails_to_import_is_named_and_others_work(tmp_path):
    _fake_distribution(tmp_path, "conform-broken", {"broken": "broken_plugin"},
                       {"broken_plugin": "raise ImportError('needs libfoo')\n"})
    out = _run(["plugins", "--json"], tmp_path)
    assert out.returncode == 0
    assert "trial-average" in out.stdout
    assert "Plugin 'broken'" in out.stderr and "conform-broken" in out.stderr
    assert "needs libfoo" in out.stderr and "CONFORM_LOAD_PLUGINS" in out.stderr


def test_conform_load_plugins_filters(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "conform-broken", {"broken": "broken_plugin"},
                       {"broken_plugin": "raise ImportError('needs libfoo')\n"})
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path), "CONFORM_LOAD_PLUGINS": "baselines"}
    out = subprocess.run([sys.executable, "-m", "conform_core", "plugins", "--json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0
    assert "needs libfoo" not in out.stderr
    assert {row["plugin"] for row in json.loads(out.stdout)} == {"baselines"}


def test_failing_registration_is_isolated(pm_with):
    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def conform_register(registry):
        raise RuntimeError("boom")

    bad.conform_register = conform_register
    good = types.ModuleType("good_plugin")

    @hookimpl
    def conform_register_good(registry):
        registry.add("denoiser", "mean", _Mean)

    good.conform_register = conform_register_good
    pm_with(bad, "bad")
    pm = pm_with(good, "good")
    registry = build_registry(pm)
    assert registry.get("denoiser", "mean") is _Mean
    assert len(registry.load_errors) == 1 and "boom" in str(registry.load_errors[0])


def test_misspelled_hook_fails_loudly():
    from pluggy import PluginValidationError

    from conform_core.plugins import make_plugin_manager

    pm = make_plugin_manager(entry_points=False)
    typo = types.ModuleType("typo")

    @hookimpl
    def conform_regster(registry):
        pass

    typo.conform_regster = conform_regster
    pm.register(typo, name="typo")
    with pytest.raises(PluginValidationError):
        pm.check_pending()


def test_get_component_returns_builtin_class():
    cls = get_component("denoiser", "trial-average")
    assert cls.__name__ == "TrialAverageDenoiser"
