"""The `conform` command line: listing, scaffolding, error handling, plugin commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest
import typer
from typer.testing import CliRunner

from conform_core import ParameterError
from conform_core.cli import build_app, run_app
from conform_core.hookspecs import hookimpl
from conform_core.plugins import register_commands

runner = CliRunner()


def _invoke(args: list[str]):
    return runner.invoke(build_app(), args, prog_name="conform")


def test_plugins_json_lists_builtins_with_required_keys():
    result = _invoke(["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {"kind", "name", "version", "distribution"} <= set(rows[0])
    names = {(r["kind"], r["name"]) for r in rows}
    assert {("denoiser", "trial-average"), ("encoder", "ridge"), ("dataset", "synthetic")} <= names


def test_plugins_table_and_kind_filter():
    result = _invoke(["plugins", "--kind", "aligner"])
    assert result.exit_code == 0
    assert "procrustes" in result.stdout and "trial-average" not in result.stdout


def test_user_error_exits_2_with_fix_and_no_traceback(capsys):
    code = run_app(typer.main.get_command(build_app()), ["plugins", "--kind", "denoisr"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Did you mean 'denoiser'" in err and "Traceback" not in err


def test_bug_exits_1_with_traceback(capsys):
    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise RuntimeError("a bug")

    @app.command()
    def user() -> None:
        raise ParameterError("bad value; fix it")

    assert run_app(typer.main.get_command(app), ["boom"]) == 1
    assert "Traceback" in capsys.readouterr().err
    assert run_app(typer.main.get_command(app), ["user"]) == 2


def test_conform_register_commands_adds_a_command(pm_with):
    plugin = types.ModuleType("hello_plugin")

    @hookimpl
    def conform_register_commands(app):
        @app.command("hello")
        def hello(name: str) -> None:
            """Say hello."""
            typer.echo(f"hello {name}")

    plugin.conform_register_commands = conform_register_commands
    broken = types.ModuleType("broken_commands")

    @hookimpl
    def conform_register_commands_broken(app):
        raise RuntimeError("cannot add")

    broken.conform_register_commands = conform_register_commands_broken
    pm_with(plugin, "hello")
    pm = pm_with(broken, "broken")
    app = typer.Typer()

    @app.command("noop")
    def noop() -> None:
        """Nothing."""

    errors = register_commands(pm, app)
    assert len(errors) == 1 and "cannot add" in str(errors[0])
    result = runner.invoke(app, ["hello", "world"])
    assert result.exit_code == 0 and "hello world" in result.stdout


def test_fit_with_bad_spec_exits_2(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('denoiser = "nope"\n[dataset]\nplugin = "synthetic"\n')
    code = run_app(
        typer.main.get_command(build_app()), ["fit", str(spec), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "No denoiser named 'nope'" in capsys.readouterr().err


def test_plugins_new_rejects_bad_names(tmp_path, capsys):
    code = run_app(
        typer.main.get_command(build_app()),
        ["plugins", "new", "Bad Name", "--kind", "denoiser", "--dir", str(tmp_path)],
    )
    assert code == 2 and "must match" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["denoiser", "encoder", "aligner", "features", "dataset"])
def test_scaffolded_component_passes_the_contract_kit(tmp_path, kind, monkeypatch):
    import importlib

    from conform_core.testing import check_component

    result = _invoke(["plugins", "new", f"my-{kind}", "--kind", kind, "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    monkeypatch.syspath_prepend(str(tmp_path / f"conform-my-{kind}" / "src"))
    module = importlib.import_module(f"conform_my_{kind}.component")
    cls = next(
        v
        for k, v in vars(module).items()
        if k.endswith(kind.capitalize()) and isinstance(v, type) and v.__module__ == module.__name__
    )
    failed = []
    for name, check in check_component(cls()):
        try:
            check(cls())
        except Exception as exc:  # every check runs; the message names each that failed
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failed, f"the scaffolded {kind} fails:\n" + "\n".join(failed)


@pytest.mark.parametrize("kind", ["denoiser", "encoder", "aligner", "features", "dataset"])
def test_scaffold_writes_the_plugin_layout_with_declared_parameters(tmp_path, kind, monkeypatch):
    """The layout of docs/plugins.md: `component.py`, `_solvers.py` where there is an algorithm,
    the component re-exported, its parameters declared and checked by `check_params`."""
    import importlib

    from conform_core.exceptions import ParameterError

    result = _invoke(["plugins", "new", f"my-{kind}", "--kind", kind, "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / f"conform-my-{kind}" / "src" / f"conform_my_{kind}"
    has_solvers = kind in ("denoiser", "encoder", "aligner")
    assert sorted(p.name for p in package.iterdir()) == sorted(
        ["__init__.py", "component.py"] + (["_solvers.py"] if has_solvers else []))
    monkeypatch.syspath_prepend(str(package.parent))
    plugin = importlib.import_module(f"conform_my_{kind}")
    cls = getattr(plugin, plugin.__all__[0])
    assert cls.__module__ == f"conform_my_{kind}.component"
    assert "conform_register" in plugin.__all__
    (param, constraints), = list(cls._parameter_constraints.items())[:1]
    from conform_core.constraints import invalid_value_for

    with pytest.raises(ParameterError, match=param):
        cls(**{param: invalid_value_for(constraints)}).check_params()


def _offline_wheel_build_problem() -> str:
    """Why ``pip install --no-build-isolation`` cannot build the scaffold here ("" if it can).

    Offline, pip builds with what is installed: setuptools, and before setuptools 70.1 the
    ``wheel`` package for ``bdist_wheel``. Neither is a dependency of conform's ``[test]``.
    """
    import importlib.util

    if importlib.util.find_spec("setuptools") is None:
        return "building the scaffold offline needs setuptools (pip install setuptools)"
    from importlib.metadata import version

    major_minor = tuple(int(p) for p in version("setuptools").split(".")[:2] if p.isdigit())
    if major_minor < (70, 1) and importlib.util.find_spec("wheel") is None:
        return (
            f"building the scaffold offline needs setuptools>=70.1 or the wheel package "
            f"(setuptools {version('setuptools')} here; pip install wheel)"
        )
    return ""


_WHEEL_PROBLEM = _offline_wheel_build_problem()


@pytest.mark.slow
@pytest.mark.skipif(bool(_WHEEL_PROBLEM), reason=_WHEEL_PROBLEM or "can build")
def test_scaffolded_plugin_installs_appears_and_passes_its_own_tests(tmp_path):
    name = "my-plugin"
    assert (
        _invoke(["plugins", "new", name, "--kind", "denoiser", "--dir", str(tmp_path)]).exit_code
        == 0
    )
    project = tmp_path / f"conform-{name}"
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(project),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    listing = subprocess.run(
        [sys.executable, "-m", "conform_core", "plugins", "--json", "--kind", "denoiser"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows[name]["distribution"] == f"conform-{name}"
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            str(project / "tests"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout[-2000:]


def test_data_info_describes_the_synthetic_dataset_with_params():
    result = _invoke(["data", "info", "synthetic", "--param", "n_subjects=2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [row["subject"] for row in summary["subjects"]] == ["sub-01", "sub-02"]


def test_data_info_rejects_unknown_params(capsys):
    code = run_app(
        typer.main.get_command(build_app()), ["data", "info", "synthetic", "--param", "n_subject=2"]
    )
    assert code == 2 and "Did you mean 'n_subjects'" in capsys.readouterr().err


def _commands(command, path=("conform",)):
    """Every command of the tree under ``command``, with its path."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def test_help_examples_continue_lines_with_one_backslash():
    # a raw docstring written with "\\" shows two, and a copied example then breaks in a shell
    root = typer.main.get_command(build_app())
    bad = [" ".join(path) for path, command in _commands(root)
           for line in (command.help or "").splitlines() if line.rstrip().endswith("\\\\")]
    assert not bad, f"help examples ending in a double backslash: {bad}"
    shown = runner.invoke(build_app(), ["registry", "study", "create", "--help"], prog_name="conform",
                          env={"COLUMNS": "200"}).stdout
    lines = [line.rstrip(" │") for line in shown.splitlines()]
    assert any(line.endswith("--ids ids.txt \\") and not line.endswith("\\\\")
               for line in lines), shown
