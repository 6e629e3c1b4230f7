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
from conform_core.plugins import build_registry, make_plugin_manager, register_commands

from .test_registry import _Mean


def _fake_distribution(site: Path, dist: str, group_entries: dict[str, str],
                       modules: dict[str, str]):
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
    pm.origins["bad"] = ("conform-bad", "0.1")
    registry = build_registry(pm)
    assert registry.get("denoiser", "mean") is _Mean
    assert registry.entry("denoiser", "mean").plugin == "good"
    assert len(registry.load_errors) == 1
    message = str(registry.load_errors[0])
    assert "boom" in message and "Plugin 'bad' (from conform-bad 0.1)" in message
    assert "CONFORM_LOAD_PLUGINS" in message


def _registering(module: str, kind: str, name: str, cls: type) -> types.ModuleType:
    """A plugin module whose conform_register adds one component."""
    plugin = types.ModuleType(module)

    @hookimpl
    def conform_register(registry):
        registry.add(kind, name, cls)

    plugin.conform_register = conform_register
    return plugin


def test_each_plugin_registers_through_its_own_view_with_its_provenance(pm_with):
    pm_with(_registering("plugin_a", "denoiser", "mean-a", _Mean), "a")
    pm = pm_with(_registering("plugin_b", "denoiser", "mean-b", _Mean), "b")
    pm.origins.update({"a": ("conform-a", "1.0"), "b": ("conform-b", "2.0")})
    registry = build_registry(pm)
    origins = {e.name: (e.plugin, e.distribution, e.version) for e in registry.entries("denoiser")}
    assert origins == {"mean-a": ("a", "conform-a", "1.0"), "mean-b": ("b", "conform-b", "2.0")}
    assert registry.plugin is None and not registry.load_errors


def test_a_new_style_wrapper_wraps_each_plugins_registration(pm_with):
    seen, failures = [], []
    watcher = types.ModuleType("watcher")

    @hookimpl(wrapper=True)
    def conform_register(registry):
        seen.append(registry.plugin)
        try:
            return (yield)
        except RuntimeError as exc:
            failures.append(str(exc))
            raise

    watcher.conform_register = conform_register
    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def conform_register_bad(registry):
        raise RuntimeError("boom")

    bad.conform_register = conform_register_bad
    pm_with(watcher, "watcher")
    pm_with(_registering("plugin_a", "denoiser", "mean", _Mean), "a")
    pm = pm_with(bad, "bad")
    registry = build_registry(pm)
    assert seen == ["bad", "a"]  # pluggy's call order: the last registered first
    assert failures == ["boom"]
    assert registry.entry("denoiser", "mean").plugin == "a"
    assert [str(e).split(" (")[0] for e in registry.load_errors] == ["Plugin 'bad'"]


def test_commands_are_registered_through_pluggy_one_plugin_at_a_time(pm_with):
    import typer

    calls = []
    watcher = types.ModuleType("watcher")

    @hookimpl(wrapper=True)
    def conform_register_commands(app):
        calls.append(len(app.registered_commands))
        return (yield)

    watcher.conform_register_commands = conform_register_commands
    good = types.ModuleType("good_commands")

    @hookimpl
    def conform_register_commands_good(app):
        app.command("hello")(lambda: None)

    good.conform_register_commands = conform_register_commands_good
    broken = types.ModuleType("broken_commands")

    @hookimpl
    def conform_register_commands_broken(app):
        raise RuntimeError("cannot add")

    broken.conform_register_commands = conform_register_commands_broken
    pm_with(watcher, "watcher")
    pm_with(good, "good")
    pm = pm_with(broken, "broken")
    app = typer.Typer()
    errors = register_commands(pm, app)
    assert calls == [0, 0]  # the wrapper ran around each plugin: broken first, then good
    assert [c.name for c in app.registered_commands] == ["hello"]
    assert len(errors) == 1 and "Plugin 'broken'" in str(errors[0])
    assert "conform_register_commands" in str(errors[0]) and "cannot add" in str(errors[0])


def test_trace_plugins_prints_each_hook_call(monkeypatch, capsys):
    monkeypatch.setenv("CONFORM_TRACE_PLUGINS", "1")
    pm = make_plugin_manager(entry_points=False)
    pm.register(_registering("plugin_a", "denoiser", "mean", _Mean), name="a")
    bad = types.ModuleType("bad_plugin")

    @hookimpl
    def conform_register(registry):
        raise RuntimeError("boom")

    bad.conform_register = conform_register
    pm.register(bad, name="bad")
    build_registry(pm)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "conform trace: conform_register(registry=<ComponentRegistry for plugin 'bad': "
        "0 components, 0 load errors>) calls bad",
        "conform trace: conform_register raised RuntimeError: boom",
        "conform trace: conform_register(registry=<ComponentRegistry for plugin 'a': "
        "0 components, 1 load error>) calls a",
        "conform trace: conform_register finished",
    ]


def test_no_trace_without_the_variable(pm_with, monkeypatch, capsys):
    monkeypatch.delenv("CONFORM_TRACE_PLUGINS", raising=False)
    build_registry(pm_with(_registering("plugin_a", "denoiser", "mean", _Mean), "a"))
    assert "conform trace" not in capsys.readouterr().err


def test_trace_plugins_from_the_command_line_keeps_stdout_json(tmp_path):
    _fake_distribution(tmp_path, "conform-outside", {"outside": "outside_plugin"},
                       {"outside_plugin": PLUGIN_SOURCE})
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path), "CONFORM_TRACE_PLUGINS": "1",
           "CONFORM_LOAD_PLUGINS": "baselines,outside"}
    out = subprocess.run([sys.executable, "-m", "conform_core", "plugins", "--json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {row["plugin"] for row in rows} == {"baselines", "outside"}
    assert {r["distribution"] for r in rows if r["plugin"] == "outside"} == {"conform-outside"}
    trace = [line for line in out.stderr.splitlines() if line.startswith("conform trace: ")]
    register_calls = [line for line in trace if line.startswith("conform trace: conform_register(")]
    assert len(register_calls) == 2
    assert any("for plugin 'outside'" in line and line.endswith("calls outside")
               for line in register_calls)
    assert any(line.endswith("calls baselines") for line in register_calls)
    assert trace.count("conform trace: conform_register finished") == 2


def test_misspelled_hook_fails_loudly():
    from pluggy import PluginValidationError

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
