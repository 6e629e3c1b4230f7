"""conform_core.progress: a bar on a terminal, one line per step otherwise, nothing when quiet."""

from __future__ import annotations

import io
import re

from rich.console import Console

from conform_core.progress import progress


def test_log_lines_off_a_terminal(capsys):
    with progress("conform fit") as tick:
        tick.set_total(2)
        tick("sub-01: psn")
        tick("[bold]sub-02[/]: pca")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"conform fit \[1/2\] +\d+\.\ds  sub-01: psn", lines[0])
    assert lines[1].endswith("  [bold]sub-02[/]: pca")  # plain text, printed as given
    assert tick.done == 2


def test_unknown_total_prints_a_question_mark(capsys):
    with progress("job") as tick:
        tick("a")
    assert capsys.readouterr().err.startswith("job [1/?] ")


def test_one_line_at_the_end_without_log_steps(capsys):
    with progress("GLMsingle type A", total=4, log_steps=False) as tick:
        for _ in range(4):
            tick()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"GLMsingle type A \[4/4\] +\d+\.\ds", lines[0])


def test_quiet_shows_nothing(capsys):
    with progress("conform fit", total=3, quiet=True) as tick:
        tick("a", advance=3)
        tick.stop()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert tick.done == 3 and tick.elapsed >= 0


def test_bar_on_a_terminal_escapes_markup():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    with progress("embed [x]", total=2, console=console, transient=False) as tick:
        tick("[red]file[/].png")
        tick("b.png")
    text = buffer.getvalue()
    assert "embed [x]" in text and "2/2" in text
    assert "[red]file[/].png" in text or "b.png" in text


def test_stop_hides_later_steps(capsys):
    with progress("job", total=2) as tick:
        tick("a")
        tick.stop()
        tick("b")
    assert capsys.readouterr().err.count("\n") == 1
