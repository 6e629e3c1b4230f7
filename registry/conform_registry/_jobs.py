"""The job runner: worker threads in the server that validate drafts.

Each worker loops: claim the oldest queued job (:meth:`RegistryService.claim_job`, one
transaction, safe with several servers on one PostgreSQL database), copy the draft's files
from the blob store into a temporary folder (re-checking each file's sha256 on the way), do
the same with the protocol version the dataset names, run the one pinned validator
(:func:`~conform_registry._validators.validate_files`), and store the report and the log
(:meth:`RegistryService.finish_job`): ``passed`` without errors, ``failed`` with errors or
when the job crashed (the log then holds the traceback). Workers sleep until a job is queued
(the service wakes them) or ``poll_s`` passes, so jobs queued by another server are found too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conform_core.exceptions import ParameterError

from ._service import Claim, RegistryService
from ._store import BlobStore

__all__ = ["JobRunner", "materialize", "run_claim"]

logger = logging.getLogger("conform_registry.jobs")

_BLOCK = 1 << 20


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def materialize(store: BlobStore, files: Iterable[dict[str, Any]], root: Path) -> int:
    """Copy ``files`` (path, size, sha256) from the store under ``root``; return the bytes.

    Raises
    ------
    RuntimeError
        If a blob's content no longer matches its sha256 (the store is damaged).
    """
    total = 0
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    for entry in files:
        target = (root / entry["path"]).resolve()
        if base not in target.parents:  # paths were checked on upload; never trust twice
            raise RuntimeError(f"file path {entry['path']!r} leaves the work folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with store.open(entry["sha256"]) as src, open(target, "wb") as out:
            while block := src.read(_BLOCK):
                digest.update(block)
                out.write(block)
                total += len(block)
        if digest.hexdigest() != entry["sha256"]:
            raise RuntimeError(f"the stored blob of {entry['path']!r} no longer has sha256 "
                               f"{entry['sha256']} (the blob store is damaged: run "
                               "`conform registry fsck`)")
    return total


def run_claim(service: RegistryService, claim: Claim) -> str:
    """Validate what ``claim`` describes and store the outcome; return the job's state."""
    from ._validators import validate_files, validator_version

    lines: list[str] = []
    try:
        if claim.problem:
            raise RuntimeError(claim.problem)
        service.scratch_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"job-{claim.job_id}-",
                                         dir=service.scratch_dir) as tmp:
            files = Path(tmp) / "files"
            size = materialize(service.store, claim.files, files)
            lines.append(f"{_now()} copied {len(claim.files)} files ({size} bytes) of "
                         f"{claim.dataset!r}\n")
            protocol = None
            if claim.protocol:
                protocol = Path(tmp) / "protocol"
                materialize(service.store, claim.protocol_files, protocol)
                lines.append(f"{_now()} copied protocol {claim.protocol} "
                             f"({len(claim.protocol_files)} files)\n")
            report = validate_files(files, kind=claim.kind, protocol=protocol)
        state = "passed" if report.ok else "failed"
        lines.append(f"{_now()} validator {validator_version()} ({report.kind}): "
                     f"{len(report.errors)} errors, {len(report.warnings)} warnings\n")
        for issue in report.errors[:20]:
            lines.append(f"  error {issue.code} {issue.path}: {issue.message}\n")
        result: dict[str, Any] | None = report.to_dict()
    except Exception as exc:  # a crash fails the job, with the reason in its log
        state, result = "failed", None
        lines.append(f"{_now()} crashed: {type(exc).__name__}: {exc}\n")
        lines.append(traceback.format_exc()[-20_000:])
        logger.warning("job %s crashed: %s", claim.job_id, exc)
    if not service.finish_job(claim, state, result, "".join(lines)):
        logger.info("job %s was requeued while it ran; its result is dropped", claim.job_id)
    return state


class JobRunner:
    """Worker threads that run the registry's queued jobs.

    Parameters
    ----------
    service : RegistryService
        The service whose jobs to run.
    workers : int, default=1
        Number of worker threads.
    poll_s : float, default=2.0
        Longest sleep between looks at the queue (jobs queued by this server wake the
        workers at once; the poll finds jobs queued by other servers).

    Examples
    --------
    >>> runner = JobRunner(service)  # doctest: +SKIP
    >>> runner.start(); ...; runner.stop()  # doctest: +SKIP
    """

    def __init__(self, service: RegistryService, *, workers: int = 1, poll_s: float = 2.0) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ParameterError(param="workers", value=workers, owner="JobRunner",
                                 allowed="an int in [1, inf)",
                                 fix="Pass workers=0 to create_app to run no job runner.")
        self.service = service
        self.workers = workers
        self.poll_s = poll_s
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        service.add_job_listener(self.wake)

    def wake(self) -> None:
        """Make idle workers look at the queue now."""
        self._wake.set()

    def run_once(self, worker: str | None = None) -> int | None:
        """Claim and run one queued job in this thread; return its id (None: queue empty)."""
        claim = self.service.claim_job(worker or f"{self.name}/{threading.current_thread().name}")
        if claim is None:
            return None
        run_claim(self.service, claim)
        return claim.job_id

    def run_pending(self, limit: int = 1000) -> list[int]:
        """Run queued jobs in this thread until none is left (at most ``limit``); return their ids."""
        done: list[int] = []
        while len(done) < limit and (job := self.run_once()) is not None:
            done.append(job)
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                ran = self.run_once()
            except Exception:  # the database is away: log, wait, try again
                logger.exception("the job runner failed to claim or finish a job")
                ran = None
                self._stop.wait(self.poll_s)
            if ran is None and not self._stop.is_set():
                self._wake.wait(self.poll_s)

    def start(self) -> None:
        """Start the worker threads (daemons, so a stuck validator cannot block exit)."""
        if self._threads:
            return
        self._stop.clear()
        for i in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"conform-job-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the workers to stop after their current job and wait up to ``timeout`` seconds."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    @property
    def running(self) -> bool:
        """Whether worker threads are alive."""
        return any(t.is_alive() for t in self._threads)

