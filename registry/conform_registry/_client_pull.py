"""Pulls of the registry client: verified, resumable downloads of a version.

Each file of the version is downloaded to ``DEST/<path>.part`` (resumed with
``Range: bytes=N-``), its sha256 checked against the manifest, then renamed into place, so
``DEST/<path>`` is always complete and verified. A re-run skips verified files and resumes
partial ones; a ``.part`` whose content turns out wrong is downloaded once more from its
first byte before the pull gives up with a clear error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from ._client_base import ClientBase
from ._client_types import (
    BLOCK,
    RETRY_STATUS,
    FileTransfer,
    LockedProgress,
    PullResult,
    TransferProgress,
    api_path,
    client_error,
    run_parallel,
    sha256_file,
)

__all__ = ["PullMixin"]


def _safe_target(dest: Path, path: str) -> Path:
    """Return ``dest/path``, refusing paths that would leave ``dest``."""
    parts = PurePosixPath(path).parts
    if (not parts or path.startswith("/") or "\\" in path or ".." in parts
            or any(p in ("", ".") for p in path.split("/"))):
        raise client_error("pull.unsafe_path", f"The server listed the file path {path!r}, which "
                           "would leave the destination folder; nothing was written for it.",
                           "Tell the registry operator; this is not a path the registry accepts.")
    return dest.joinpath(*parts)


class PullMixin(ClientBase):
    """Pulls of :class:`~conform_registry.RegistryClient`."""

    def pull(self, dataset: str, version: str | int = "latest",
             dest: str | os.PathLike[str] = ".", *,
             progress: TransferProgress | None = None) -> PullResult:
        """Download a version's files into ``dest``, verified; a re-run resumes.

        Parameters
        ----------
        dataset : str
            The dataset.
        version : int or {"latest", "draft"}, default="latest"
            The version (``"draft"`` needs a token of the dataset's site or a curator).
        dest : path-like, default="."
            The folder to write into (created). Each file goes to ``dest/<path>``.
        progress : TransferProgress or None, default=None
            Receives the events (see :class:`TransferProgress`).

        Returns
        -------
        PullResult
            Every file, ``"downloaded"``, ``"resumed"`` or ``"verified"`` (on disk already
            with the right sha256: nothing was downloaded).

        Raises
        ------
        RegistryClientError
            ``pull.checksum_mismatch`` if a file still has the wrong sha256 after a fresh
            download (the server's copy is damaged; nothing is left under its name), or the
            server's refusal.

        Notes
        -----
        A file is written to ``<path>.part`` and renamed into place only once its sha256
        matches the manifest, so ``dest/<path>`` is always complete and verified. Files
        under ``dest`` that are not in the version are left alone.
        """
        info = self.get_version(dataset, version)
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        files = sorted(info["files"], key=lambda f: f["path"])
        targets = [(f, _safe_target(root, f["path"])) for f in files]
        events = LockedProgress(progress)
        events.start(len(files), sum(int(f["size"]) for f in files))
        number = info["version"]

        def one(job: tuple[dict[str, Any], Path]) -> FileTransfer:
            entry, target = job
            transfer = self._pull_file(dataset, number, entry, target, events)
            events.file_done(transfer)
            return transfer

        result = PullResult(dataset, number, info.get("manifest_sha256") or "", root)
        result.files = sorted(run_parallel(self.workers, targets, one), key=lambda f: f.path)
        return result

    def _pull_file(self, dataset: str, version: int | str, entry: dict[str, Any],
                   target: Path, events: TransferProgress) -> FileTransfer:
        path, size, sha = entry["path"], int(entry["size"]), entry["sha256"]
        if target.is_file() and target.stat().st_size == size and sha256_file(target) == sha:
            events.advance(path, size)
            return FileTransfer(path, size, sha, "verified", str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        received, resumed = 0, False
        for fresh in (False, True):  # after a mismatch, once more from the first byte
            if fresh:
                events.advance(path, -part.stat().st_size)
                part.unlink()
            got, had, n = self._download(dataset, version, path, size, part, events)
            received += n
            resumed = resumed or had > 0
            if got == sha:
                os.replace(part, target)
                return FileTransfer(path, size, sha, "resumed" if resumed else "downloaded",
                                    str(target), received)
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise client_error("pull.checksum_mismatch",
                           f"{path!r} of {dataset!r} (version {version}) was downloaded twice with "
                           f"sha256 {got}, but the manifest says {sha}; nothing was kept under its "
                           "name.", "The registry's copy may be damaged: tell its operator to run "
                           "`conform registry fsck`. The other files are not affected.")

    def _download(self, dataset: str, version: int | str, path: str, size: int,
                  part: Path, events: TransferProgress) -> tuple[str, int, int]:
        """Fill ``part`` up to ``size`` bytes, resuming; return (its sha256, bytes it had, bytes got)."""
        url = api_path("datasets", dataset, "versions", str(version), "files", path)
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        had, received, attempt = have, 0, 0
        digest = hashlib.sha256()
        if have:
            with open(part, "rb") as handle:
                for block in iter(lambda: handle.read(BLOCK), b""):
                    digest.update(block)
            events.advance(path, have)
        while have < size or not part.exists():
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    if status == 416 and have:  # the server's file is shorter than our part
                        events.advance(path, -have)
                        part.unlink()
                        have, digest = 0, hashlib.sha256()
                        continue
                    if status in RETRY_STATUS and attempt < self.retries:
                        raise httpx.RemoteProtocolError(f"HTTP {status}")
                    if status not in (200, 206):
                        response.read()
                        raise self._refusal(response)
                    self._reached = True
                    if status == 200 and have:  # the server sent the whole file
                        events.advance(path, -have)
                        have, digest = 0, hashlib.sha256()
                    with open(part, "ab" if have else "wb") as out:
                        for block in response.iter_bytes(BLOCK):
                            out.write(block)
                            digest.update(block)
                            have += len(block)
                            received += len(block)
                            events.advance(path, len(block))
                        out.flush()
                        os.fsync(out.fileno())
                if have < size:
                    raise httpx.RemoteProtocolError("the download ended early")
            except httpx.TransportError as exc:  # resume from what arrived, after a pause
                refused = isinstance(exc, httpx.ConnectError) and not self._reached
                if attempt >= self.retries or refused:
                    raise self._unreachable(exc) from None
                time.sleep(min(0.5 * 2 ** attempt, 4.0))
                attempt += 1
        return digest.hexdigest(), had, received
