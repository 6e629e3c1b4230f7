"""What ``conform registry`` prints: progress of transfers, sizes, jobs and their reports.

Results go to stdout (a table or text, or JSON with ``--json``); progress, notes and
warnings go to stderr. On a terminal a transfer draws one rich bar counting bytes; otherwise
(a log file, a pipe, a batch job) it writes one line per file
(:func:`conform_core.progress.progress`).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from typing import Any

from conform_core.cli import print_error
from conform_core.exceptions import Interrupted

from ._client_types import FileTransfer, TransferProgress

__all__ = ["CliProgress", "echo_json", "help_text", "human_bytes", "job_lines", "note"]

_SHOWN = 20  # issues listed per report before "... and N more"


def human_bytes(n: float) -> str:
    """Return ``n`` bytes as ``"1.5 MB"`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def help_text(doc: str | None) -> str:
    """Return a command's docstring as its --help text: prose paragraphs re-flowed.

    typer's rich help keeps single line breaks, so prose wrapped in the source would break
    twice on narrow terminals; paragraphs whose lines are indented (example commands) are
    kept as written.
    """
    import inspect

    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(p if p.startswith("  ") else " ".join(p.split()) for p in paragraphs)


def note(message: str) -> None:
    """Print a plain line on stderr (not a result: results go to stdout)."""
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def interrupt_outcome(outcome: str) -> Iterator[None]:
    """Report an interrupt (Ctrl-C or SIGTERM) inside the block with ``outcome``.

    The command line's one-line report says "nothing was written" by default; uploads,
    downloads and the server keep what they finished on purpose, and say so instead.
    """
    try:
        yield
    except Interrupted as exc:
        raise Interrupted(exc.signum, outcome) from exc
    except KeyboardInterrupt as exc:
        raise Interrupted(signal.SIGINT, outcome) from exc


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str), flush=True)


class CliProgress(TransferProgress):
    """A transfer's progress: a bar of bytes on a terminal, one line per file otherwise.

    Parameters
    ----------
    label : str
        Shown before the bar or at the start of each line (``"conform registry submit"``).
    quiet : bool, default=False
        Show no progress (warnings are still printed).
    """

    def __init__(self, label: str, *, quiet: bool = False) -> None:
        from rich.console import Console

        self.label = label
        self.quiet = quiet
        self.terminal = Console(stderr=True).is_terminal
        self._stack = contextlib.ExitStack()
        self._tick: Any = None
        self._unit, self._unit_name, self._bytes, self._shown = 10**6, "MB", 0, 0

    def __enter__(self) -> CliProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the bar (before a result or an error is printed)."""
        self._stack.close()
        self._tick = None

    def note(self, message: str) -> None:
        """Print the step on stderr (nothing when quiet or while the bar runs)."""
        if not self.quiet and self._tick is None:
            note(f"{self.label}: {message}")

    def warn(self, message: str) -> None:
        """Print a warning on stderr."""
        print_error(message, warning=True)

    def start(self, n_files: int, n_bytes: int) -> None:
        """Open the bar (bytes) or the per-file log (files)."""
        from conform_core.progress import progress

        self.close()
        self._unit, self._unit_name = (10**6, "MB") if n_bytes >= 10**7 else (10**3, "kB")
        self._bytes = self._shown = 0
        total = -(-n_bytes // self._unit) if self.terminal else n_files
        self._tick = self._stack.enter_context(progress(self.label, total=total, quiet=self.quiet))

    def advance(self, path: str, n_bytes: int) -> None:
        """Move the bar (terminal only; it counts MB, or kB below 10 MB)."""
        if self.terminal and self._tick is not None:
            self._bytes += n_bytes
            units = -(-self._bytes // self._unit)  # a started unit counts: the bar ends full
            self._tick(f"{self._unit_name}  {path}", advance=units - self._shown)
            self._shown = units

    def file_done(self, transfer: FileTransfer) -> None:
        """Write the file's line (off a terminal)."""
        if not self.terminal and self._tick is not None:
            moved = f", {human_bytes(transfer.network_bytes)} moved" if transfer.network_bytes else ""
            self._tick(f"{transfer.path} ({transfer.action}, {human_bytes(transfer.size)}{moved})")


def _issue_line(kind: str, issue: dict[str, Any]) -> str:
    fix = f" Fix: {issue['fix']}" if issue.get("fix") else ""
    return f"  {kind} {issue.get('path', '?')}: [{issue.get('code', '?')}] {issue.get('message', '')}{fix}"


def job_lines(job: dict[str, Any], *, log: bool = False) -> list[str]:
    """Return the lines that describe a validation job: state, counts, issues (and its log)."""
    state = job.get("state", "?")
    when = job.get("finished_at") or job.get("started_at") or job.get("created_at") or ""
    head = f"validation job {job.get('id')}: {state}"
    if job.get("attempts"):
        head += f" (attempt {job['attempts']}"
        head += f", {when})" if when else ")"
    report = job.get("report")
    if isinstance(report, dict):
        errors, warnings = report.get("errors") or [], report.get("warnings") or []
        head += (f": {len(errors)} error(s), {len(warnings)} warning(s); validator "
                 f"{report.get('validator_version', '?')}, kind {report.get('kind', '?')}")
    elif job.get("errors") is not None:
        errors, warnings = [], []
        head += f": {job['errors']} error(s), {job.get('warnings') or 0} warning(s)"
    else:
        errors, warnings = [], []
    if job.get("superseded_by"):
        head += f"; superseded by job {job['superseded_by']} (the draft changed before it ran)"
    lines = [head]
    for kind, issues in (("error", errors), ("warning", warnings)):
        lines += [_issue_line(kind, i) for i in issues[:_SHOWN]]
        if len(issues) > _SHOWN:
            lines.append(f"  ... and {len(issues) - _SHOWN} more {kind}s (--json lists them all)")
    if state == "failed" and not errors and job.get("log") and not job.get("superseded_by"):
        log = True  # a crash: the log says why
    if log and job.get("log"):
        lines.append("log:")
        lines += ["  " + line for line in str(job["log"]).rstrip().splitlines()[-200:]]
    return lines
