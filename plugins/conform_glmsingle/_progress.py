"""One rich progress bar per stage; silent when not on a terminal or when verbose is off."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

__all__ = ["StageProgress"]


class StageProgress:
    """Report stages with rich progress bars and record their wall times.

    Parameters
    ----------
    verbose : bool
        Show bars (only when stderr is a terminal).
    """

    def __init__(self, verbose: bool) -> None:
        self.enabled = bool(verbose) and sys.stderr.isatty()
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str, total: int) -> Iterator[Callable[[int], None]]:
        """Run a stage of ``total`` steps; yields ``advance(n)``."""
        start = time.perf_counter()
        if not self.enabled:
            yield lambda n=1: None
        else:
            from rich.markup import escape
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            with Progress(TextColumn("[bold]GLMsingle[/] {task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), transient=False) as bar:
                task = bar.add_task(escape(name), total=max(total, 1))
                yield lambda n=1: bar.advance(task, n)
                bar.update(task, completed=max(total, 1))
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
