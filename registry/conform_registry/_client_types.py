"""What the registry client's transfers report, and the client's error.

:class:`RegistryClientError` is what every client call raises when the server refuses or
cannot be reached. :class:`TransferProgress` receives the events of an upload or a pull (the
command line draws its progress bar from them); :class:`FileTransfer`,
:class:`UploadSummary` and :class:`PullResult` say what a transfer did, file by file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from conform_core.exceptions import ConformError

__all__ = ["FileTransfer", "PullResult", "RegistryClientError", "TransferProgress", "UploadSummary",
           "sha256_file"]

BLOCK = 1 << 20
API = "/api/v1"
RETRY_STATUS = (502, 503, 504)
"""Answers worth retrying: a proxy or a restarting server."""


def api_path(*parts: str | int) -> str:
    """Return the API path of ``parts``, each quoted (the last may hold ``/``: a file path)."""
    return API + "".join("/" + quote(str(p), safe="/" if i == len(parts) - 1 else "")
                         for i, p in enumerate(parts))


class RegistryClientError(ConformError):
    """A request the registry refused, or a registry the client could not use.

    Parameters
    ----------
    status : int or None
        The HTTP status of the refusal; None for a problem found by the client (the
        server unreachable, a downloaded file with the wrong sha256).
    code : str
        A stable dotted reason: the server's (``"dataset.not_found"``) or the client's
        (``"connection.failed"``, ``"pull.checksum_mismatch"``).
    message : str
        What is wrong, naming the value.
    fix : str, default=""
        What to do about it.
    """

    def __init__(self, status: int | None, code: str, message: str, fix: str = "") -> None:
        where = f"HTTP {status} {code}" if status else code
        super().__init__(f"{message} {fix} [{where}]".replace("  ", " ").strip())
        self.status = status
        self.code = code
        self.message = message
        self.fix = fix

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.code, self.message, self.fix))

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"error": {"status", "code", "message", "fix"}}`` (for ``--json`` output)."""
        return {"error": {"status": self.status, "code": self.code, "message": self.message,
                          "fix": self.fix}}


class TransferProgress:
    """Receives the events of a transfer; subclass it and override what you need.

    Every method does nothing here. Calls come from one thread at a time (the client
    serialises them), possibly not the caller's.
    """

    def note(self, message: str) -> None:
        """Announce a step (``"hashing 12 files"``, ``"packing 1000 files"``)."""

    def warn(self, message: str) -> None:
        """Pass on something the user should know (many small files, say)."""

    def start(self, n_files: int, n_bytes: int) -> None:
        """Begin a transfer of ``n_files`` files, ``n_bytes`` bytes to move in all."""

    def advance(self, path: str, n_bytes: int) -> None:
        """Count ``n_bytes`` more of ``path`` as done (sent, received, or already there)."""

    def file_done(self, transfer: FileTransfer) -> None:
        """Report a finished file (uploaded, unchanged, downloaded or verified)."""


@dataclass
class FileTransfer:
    """One file of a transfer and what happened to it.

    Parameters
    ----------
    path : str
        Its path in the dataset.
    size : int
        Its size in bytes.
    sha256 : str
        Its sha256 (hex).
    action : str
        ``"uploaded"``, ``"resumed"`` (some chunks were on the server already),
        ``"unchanged"`` (the draft has it already), ``"packed"`` (uploaded inside a packed
        archive), ``"downloaded"``, ``"verified"`` (already on disk, checked).
    local : str or None, default=None
        The local file.
    network_bytes : int, default=0
        Bytes actually sent or received for it.
    chunks_sent : int, default=0
        Chunks sent (uploads).
    added : list of dict or None, default=None
        Uploads: the files the draft got (``path``, ``size``, ``sha256``; an archive's
        members).
    job : dict or None, default=None
        Uploads: the validation job queued (None when the draft did not change).
    """

    path: str
    size: int
    sha256: str
    action: str
    local: str | None = None
    network_bytes: int = 0
    chunks_sent: int = 0
    added: list[dict[str, Any]] | None = None
    job: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict (``added`` and ``job`` only when set)."""
        out = asdict(self)
        for key in ("added", "job"):
            if out[key] is None:
                del out[key]
        return out


@dataclass
class UploadSummary:
    """What :meth:`~TransferMixin.upload_tree` did.

    Parameters
    ----------
    dataset : str
        The dataset.
    files : list of FileTransfer
        Every file, in path order.
    packs : list of dict
        The packed archives sent (``path``, ``size``, ``sha256``, ``members``, ``action``).
    job : dict or None
        The draft's latest validation job (summary) after the upload.
    warnings : list of str
        Warnings given on the way.
    """

    dataset: str
    files: list[FileTransfer] = field(default_factory=list)
    packs: list[dict[str, Any]] = field(default_factory=list)
    job: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def network_bytes(self) -> int:
        """Bytes sent in all (archives included)."""
        return sum(f.network_bytes for f in self.files) + sum(p["network_bytes"] for p in self.packs)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"dataset": self.dataset, "files": [f.to_dict() for f in self.files],
                "packs": self.packs, "job": self.job, "warnings": self.warnings,
                "network_bytes": self.network_bytes}


@dataclass
class PullResult:
    """What :meth:`~TransferMixin.pull` did.

    Parameters
    ----------
    dataset : str
        The dataset.
    version : int or str
        The version pulled (a number, or ``"draft"``).
    manifest_sha256 : str
        The sha256 of its manifest.
    dest : pathlib.Path
        The folder the files are in.
    files : list of FileTransfer
        Every file, in path order.
    """

    dataset: str
    version: int | str
    manifest_sha256: str
    dest: Path
    files: list[FileTransfer] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"dataset": self.dataset, "version": self.version,
                "manifest_sha256": self.manifest_sha256, "dest": str(self.dest),
                "files": [f.to_dict() for f in self.files]}


class LockedProgress(TransferProgress):
    """Forwards events to another progress, one call at a time."""

    def __init__(self, inner: TransferProgress | None) -> None:
        self.inner = inner or TransferProgress()
        self.lock = threading.Lock()

    def note(self, message: str) -> None:
        with self.lock:
            self.inner.note(message)

    def warn(self, message: str) -> None:
        with self.lock:
            self.inner.warn(message)

    def start(self, n_files: int, n_bytes: int) -> None:
        with self.lock:
            self.inner.start(n_files, n_bytes)

    def advance(self, path: str, n_bytes: int) -> None:
        with self.lock:
            self.inner.advance(path, n_bytes)

    def file_done(self, transfer: FileTransfer) -> None:
        with self.lock:
            self.inner.file_done(transfer)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the sha256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def client_error(code: str, message: str, fix: str = "") -> RegistryClientError:
    """Return a :class:`RegistryClientError` for a problem the client found (no HTTP status)."""
    return RegistryClientError(None, code, message, fix)


def run_parallel(workers: int, jobs: Iterable[Any], func: Any) -> Iterator[Any]:
    """Yield ``func(job)`` results as they finish; on any error cancel the rest and raise."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conform-registry")
    pending: set[Future[Any]] = {pool.submit(func, job) for job in jobs}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                yield future.result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
