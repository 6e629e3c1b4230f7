"""Exit codes of the `conform` command line: usage errors, user errors, I/O errors, interrupts.

Most tests run the real CLI as a subprocess (``python -m conform_core``), the way a shell
script or a cluster scheduler sees it. The in-process tests drive ``run_app`` with the
exceptions of each click flavour that is importable (typer >= 0.29 vendors click as
``typer._click``; older typer releases use the ``click`` package).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

import conform_core
from conform_core.cli import _help_as_text, print_error, run_app
from conform_core.exceptions import Interrupted, ParameterError

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.toml"

# A fit that runs for several seconds, so that a signal lands while it works.
SLOW_SPEC = """\
denoiser = ["trial-average", "pca"]
aligner = ["procrustes"]
encoder = ["ridge"]
features = "precomputed"

[analysis]
name = "slow"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 6
n_units = 600
n_stimuli = 400
n_repeats = 3
snr = 0.4
"""

posix_signals = pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals to a process")

# A simulated study of many subjects, written one at a time (several seconds).
SLOW_SIMULATE = ["--subjects", "40", "--units", "2000", "--stimuli", "600", "--quiet"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CONFORM_DEBUG", None)
    env["COLUMNS"] = "200"
    return env


def _conform(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conform_core", *map(str, args)], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=120, check=False)


def _app(**commands: object) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    for name, function in commands.items():
        app.command(name)(function)
    app.callback()(lambda: None)  # a group, so the command name is on the command line
    return app


# --- subprocess: --version, usage errors, user errors -----------------------------------------

def test_version_prints_the_package_version_and_exits_0(tmp_path):
    result = _conform(["--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"conform-fmri {conform_core.__version__}"


@pytest.mark.parametrize(("args", "names"), [
    (["fit"], "spec"),
    (["simulate", "out", "--units", "abc"], "--units"),
    (["fit", QUICKSTART, "--workers", "0"], "--workers"),
])
def test_usage_errors_exit_2_with_the_message_and_no_traceback(tmp_path, args, names):
    result = _conform(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "Usage: conform" in result.stderr and names in result.stderr.lower()
    assert list(tmp_path.iterdir()) == []


def test_bracketed_regex_in_an_error_is_printed_intact(tmp_path):
    result = _conform(
        ["plugins", "new", "BadName", "--kind", "denoiser", "--dir", tmp_path], tmp_path
    )
    assert result.returncode == 2
    assert "[a-z][a-z0-9_-]*" in result.stderr and "Traceback" not in result.stderr


def test_bracketed_table_name_in_a_spec_error_is_printed_intact(tmp_path):
    (tmp_path / "typo.toml").write_text(
        'denoiser = "pca"\n[analysis]\nname = "t"\nsed = 1\n[dataset]\nplugin = "synthetic"\n'
    )
    result = _conform(["fit", "typo.toml", "--out", "out"], tmp_path)
    assert result.returncode == 2
    assert "in [analysis] of typo.toml" in result.stderr and "Traceback" not in result.stderr


def test_os_error_names_the_path_and_exits_2_without_traceback(tmp_path):
    """A folder path through a regular file is the user's environment, not a bug."""
    (tmp_path / "afile").write_text("not a folder\n")
    result = _conform(["simulate", "afile/out"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "afile" in result.stderr and "Traceback" not in result.stderr


# --- subprocess: interrupts ------------------------------------------------------------------


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has installed its SIGTERM handler (Linux: /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def _wait_for(condition, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the command ended before it was interrupted"
        assert time.monotonic() < deadline, "the command never started its work"
        time.sleep(0.05)


def _interrupt(args: list[str], cwd: Path, signum: int, started=None) -> tuple[int, str]:
    """Run conform, wait until it works (``started()``, else its handler plus 1 s), signal it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "conform_core", *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if started is not None:
            _wait_for(started, process)
        elif Path(f"/proc/{process.pid}/status").exists():
            _wait_for(lambda: _catches_sigterm(process.pid), process)
            time.sleep(1.0)  # into the command's work (the outcome is the same before it)
        else:
            time.sleep(4.0)
        assert process.poll() is None, "the command ended before it was interrupted"
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, err


def _assert_one_interrupt_line(err: str, signum: int, command: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert [line for line in lines if "Interrupted" in line] == lines[-1:]
    assert lines[-1] == (
        f"Interrupted ({signal.Signals(signum).name}) during `{command}`: nothing was written."
    )


@posix_signals
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_simulate_exits_128_plus_signal_and_writes_nothing(tmp_path, signum):
    def started() -> bool:  # the study is being built under a temporary name
        return any(p.name.startswith(".out.") for p in tmp_path.iterdir())

    code, err = _interrupt(["simulate", "out", *SLOW_SIMULATE], tmp_path, signum, started)
    assert code == 128 + signum, err
    assert err.strip().splitlines() == [
        f"Interrupted ({signal.Signals(signum).name}) during `conform simulate`: nothing was written."
    ]
    assert list(tmp_path.iterdir()) == []  # neither OUT nor its temporary folder


@posix_signals
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_fit_exits_128_plus_signal_and_writes_nothing(tmp_path, signum):
    (tmp_path / "slow.toml").write_text(SLOW_SPEC)
    code, err = _interrupt(["fit", "slow.toml", "--out", "res"], tmp_path, signum)
    assert code == 128 + signum, err
    _assert_one_interrupt_line(err, signum, "conform fit")
    assert [p.name for p in tmp_path.iterdir()] == ["slow.toml"]


CTRL_C_IN_EVAL = """\
import typer

import conform_core.cli as cli


def boom() -> None:  # Ctrl-C while eval() runs a string, as namedtuple() does during imports
    eval("__import__('os').kill(__import__('os').getpid(), 2) or [i for i in range(10**9)]")


def app(**kwargs):
    app = typer.Typer(add_completion=False)
    app.command()(boom)
    app.callback()(lambda: None)
    return app


cli.build_app = app
cli.main(["boom"])
"""


@posix_signals
def test_ctrl_c_caught_inside_eval_still_exits_130(tmp_path):
    """CPython would otherwise end `python -m` by SIGINT (returncode -2) after main() exits 130."""
    (tmp_path / "ctrl_c_in_eval").mkdir()
    (tmp_path / "ctrl_c_in_eval" / "__main__.py").write_text(CTRL_C_IN_EVAL)
    env = {**_env(), "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "ctrl_c_in_eval"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr == "Interrupted (SIGINT) during `conform boom`: nothing was written.\n"


@posix_signals
@pytest.mark.slow
def test_ctrl_c_during_a_dask_fit_exits_130_and_stops_the_workers(tmp_path):
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("distributed")
    (tmp_path / "slow.toml").write_text(SLOW_SPEC)
    workers: list[object] = []

    def command_line(child: object) -> str:  # a child may exit (or be a zombie) meanwhile
        try:
            return " ".join(child.cmdline())  # type: ignore[attr-defined]
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return ""

    def cluster_started() -> bool:  # the LocalCluster's worker processes exist
        children = psutil.Process(pid).children(recursive=True)
        workers[:] = children
        lines = [command_line(c) for c in children]
        return sum("distributed" in c or "multiprocessing" in c for c in lines) >= 2

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conform_core",
            "fit",
            "slow.toml",
            "--out",
            "res",
            "--workers",
            "2",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid = process.pid
    try:
        _wait_for(cluster_started, process)
        time.sleep(1.0)  # the cluster has started; tasks are running
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    # Dask's worker processes share stderr and may log while they shut down, so the
    # interrupt line need not be the last one here; it must be there exactly once.
    expected = "Interrupted (SIGINT) during `conform fit`: nothing was written."
    assert [line for line in err.splitlines() if "Interrupted" in line] == [expected], err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["slow.toml"]
    _, alive = psutil.wait_procs(workers, timeout=30)  # the runner's `finally` closed the cluster
    assert alive == []


# --- in process: run_app with each click flavour ----------------------------------------------


def _click_flavours(attribute: str = "UsageError") -> list[object]:
    """The importable modules that define ``attribute``, of every click/typer flavour."""
    flavours = []
    for name in ("typer", "typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            module = __import__(name, fromlist=[attribute])
        except ImportError:
            continue
        if hasattr(module, attribute):
            flavours.append(pytest.param(module, id=name))
    return flavours


@pytest.mark.parametrize("module", _click_flavours())
def test_usage_error_of_either_click_flavour_exits_2_without_traceback(capsys, module):
    def bad() -> None:
        raise module.UsageError("--thing needs a value")

    assert run_app(_app(bad=bad), ["bad"]) == 2
    err = capsys.readouterr().err
    assert "--thing needs a value" in err and "Traceback" not in err


@pytest.mark.parametrize("module", _click_flavours("Exit"))
def test_exit_code_of_a_command_is_the_process_exit_code(module):
    def three() -> None:
        raise module.Exit(3)

    def zero() -> None:
        raise module.Exit(0)

    assert run_app(_app(three=three), ["three"]) == 3
    assert run_app(_app(zero=zero), ["zero"]) == 0


def test_abort_exits_1_unless_ctrl_c_caused_it(capsys):
    def plain() -> None:
        raise typer.Abort()

    def ctrl_c() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise typer.Abort() from None  # click's prompts do this

    assert run_app(_app(plain=plain), ["plain"]) == 1
    assert "Aborted." in capsys.readouterr().err
    assert run_app(_app(stop=ctrl_c), ["stop"]) == 130
    assert (
        capsys.readouterr().err
        == "Interrupted (SIGINT) during `conform stop`: nothing was written.\n"
    )


@pytest.mark.parametrize(
    ("raised", "code", "name"),
    [(KeyboardInterrupt(), 130, "SIGINT"), (Interrupted(signal.SIGTERM), 143, "SIGTERM")],
)
def test_interrupt_exits_128_plus_signal_with_one_line(capsys, raised, code, name):
    def work(spec: str) -> None:
        raise raised

    assert run_app(_app(work=work), ["work", "a.toml"]) == code
    assert (
        capsys.readouterr().err
        == f"Interrupted ({name}) during `conform work`: nothing was written.\n"
    )


def test_interrupted_is_not_caught_by_except_exception():
    """Per-cell `except Exception` blocks must let a termination through."""
    assert not issubclass(Interrupted, Exception)
    assert Interrupted(signal.SIGTERM).exit_code == 143


@posix_signals
def test_sigterm_raises_interrupted_only_while_a_command_runs(capsys):
    before = signal.getsignal(signal.SIGTERM)

    def work() -> None:
        assert signal.getsignal(signal.SIGTERM) is not before  # never kill the test run
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    assert run_app(_app(work=work), ["work"]) == 143
    assert "Interrupted (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_os_error_exits_2_with_the_file_name(capsys):
    def write() -> None:
        raise PermissionError(13, "Permission denied", "/results/x.csv")

    assert run_app(_app(write=write), ["write"]) == 2
    err = capsys.readouterr().err
    assert "'/results/x.csv': Permission denied" in err and "Traceback" not in err


def test_conform_error_with_brackets_is_printed_as_text(capsys):
    def bad() -> None:
        raise ParameterError("Unknown key 'sed' in [analysis]; names match [a-z]+ [bold]x[/]")

    assert run_app(_app(bad=bad), ["bad"]) == 2
    assert "in [analysis]; names match [a-z]+ [bold]x[/]" in capsys.readouterr().err


def test_print_error_keeps_markup_like_text(capsys):
    print_error("[red]not red[/] and [analysis]", warning=True)
    assert capsys.readouterr().err == "Warning: [red]not red[/] and [analysis]\n"


def test_bracketed_text_in_help_is_printed_intact(capsys):
    app = typer.Typer(add_completion=False, rich_markup_mode="rich")

    @app.command()
    def fit(
        sets: str = typer.Option("", "--set", help="e.g. denoiser[pca].n_components=5"),
    ) -> None:
        """Fit [analysis] specs."""

    @app.command()
    def other() -> None:
        """Another command."""

    command = typer.main.get_command(app)
    _help_as_text(command)
    assert run_app(command, ["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "denoiser[pca].n_components=5" in out and "Fit [analysis] specs." in out
