"""The one progress helper of conform's commands and plugins.

On a terminal it draws a rich bar; otherwise (a log file, a pipe, a batch job) it writes one
plain line per step to stderr, e.g. ``conform fit [7/28]    12.3s  sub-02: psn``; with
``quiet=True`` it shows nothing. Descriptions are plain text: rich markup in them is escaped.

Examples
--------
>>> from conform_core.progress import progress
>>> with progress("embedding", total=3, quiet=True) as tick:
...     for name in ["a.png", "b.png", "c.png"]:
...         tick(name)
>>> tick.done
3
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Progress", "progress"]


class Progress:
    """A running progress report; call it once per finished step (see :func:`progress`).

    Attributes
    ----------
    done : int
        Steps reported so far.
    total : int or None
        Steps expected (None while unknown).
    elapsed : float
        Seconds since the report started (frozen when it ends).
    """

    def __init__(self, label: str, total: int | None, mode: str, log_steps: bool,
                 bar: Any = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._mode = mode  # "bar", "log" or "quiet"
        self._log_steps = log_steps
        self._bar = bar
        self._task: Any = None
        self._started = time.monotonic()
        self._ended: float | None = None
        self._description = ""
        if bar is not None:
            self._task = bar.add_task("", total=total)

    @property
    def elapsed(self) -> float:
        """Seconds since the report started (frozen when it ended)."""
        return (self._ended if self._ended is not None else time.monotonic()) - self._started

    def __call__(self, description: str = "", advance: int = 1) -> None:
        """Report ``advance`` finished steps, the last described by ``description`` (plain text)."""
        self.done += advance
        self._description = description
        if self._mode == "bar":
            from rich.markup import escape

            self._bar.update(self._task, advance=advance, description=escape(description))
        elif self._mode == "log" and self._log_steps:
            self._line(description)

    def set_total(self, total: int | None) -> None:
        """Set the number of steps once it is known."""
        self.total = total
        if self._mode == "bar":
            self._bar.update(self._task, total=total)

    def stop(self) -> None:
        """Remove the bar now (e.g. before printing an error); later steps are not shown."""
        if self._mode == "bar":
            self._bar.stop()
        self._mode = "quiet"

    def _line(self, description: str) -> None:
        total = self.total if self.total is not None else "?"
        # sys.stderr is looked up at each call, so a redirected stderr (pytest, CliRunner) gets it
        tail = f"  {description}" if description else ""
        print(f"{self.label} [{self.done}/{total}] {self.elapsed:7.1f}s{tail}", file=sys.stderr,
              flush=True)

    def _end(self) -> None:
        self._ended = time.monotonic()
        if self._mode == "bar" and self.total is not None:
            self._bar.update(self._task, completed=max(self.done, self.total))
        elif self._mode == "log" and not self._log_steps:
            self._line(self._description)


@contextlib.contextmanager
def progress(label: str, total: int | None = None, *, quiet: bool = False, console: Any = None,
             transient: bool = True, log_steps: bool = True) -> Iterator[Progress]:
    """Report the progress of a long loop: a rich bar on a terminal, log lines otherwise.

    Parameters
    ----------
    label : str
        What runs, shown before the bar or at the start of each line (e.g. ``"conform fit"``).
    total : int, optional
        Steps expected; None while unknown (set it later with ``tick.set_total(n)``).
    quiet : bool, default=False
        Show nothing (the commands' ``--quiet``).
    console : rich.console.Console, optional
        Where the bar goes; a console on stderr by default. Whether it is a terminal decides
        between the bar and the log lines.
    transient : bool, default=True
        Remove the bar when the block ends.
    log_steps : bool, default=True
        Off a terminal, write one line per step; False writes one line when the block ends
        (for loops with many small steps).

    Yields
    ------
    Progress
        ``tick(description="", advance=1)`` reports finished steps; it also has
        ``set_total(n)``, ``stop()``, ``done`` and ``elapsed``.
    """
    if quiet:
        tick = Progress(label, total, "quiet", log_steps)
        yield tick
        tick._end()
        return
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    if not console.is_terminal:
        tick = Progress(label, total, "log", log_steps)
        yield tick
        tick._end()
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(TextColumn(f"[bold]{escape(label)}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                      transient=transient) as bar:
        tick = Progress(label, total, "bar", log_steps, bar)
        yield tick
        tick._end()
