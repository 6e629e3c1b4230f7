"""Uploads of the registry client: resumable files, and trees with small files packed.

One file (:meth:`UploadMixin.upload_file`): hash it, start the upload (or get back the open
one of the same file: same dataset, path, size and sha256), send only the chunks the server
does not hold, each with its ``X-Chunk-SHA256``, in parallel, then ask the server to complete
it. The file is visible in the draft only after the server has checked the whole file's
sha256, so a client killed half-way leaves nothing in the draft, and the re-run sends only
what is missing.

Trees (:meth:`UploadMixin.upload_tree`): files whose path and sha256 are in the draft
already are skipped; small files are packed (:func:`~conform_registry._archive.pack`,
deterministic, so a re-run resumes the same upload) into one tar uploaded with
``unpack=true``, with a warning above the server's ``pack_threshold_files``; large files go
up one by one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._client_base import ClientBase
from ._client_types import (
    FileTransfer,
    LockedProgress,
    RegistryClientError,
    TransferProgress,
    UploadSummary,
    client_error,
    run_parallel,
    sha256_file,
)

__all__ = ["UploadMixin"]

_PACK_BYTES = 2 * 1024**3  # most bytes packed into one tar


def _collect(sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
             prefix: str) -> list[tuple[Path, str]]:
    """Return (local file, remote path) pairs, sorted by remote path; refuse duplicates."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    prefix = prefix.strip("/")
    found: dict[str, Path] = {}
    for source in sources:
        base = Path(source)
        if base.is_file():
            pairs = [(base, base.name)]
        elif base.is_dir():
            pairs = []
            for folder, dirnames, names in os.walk(base):
                dirnames.sort()
                for name in sorted(names):
                    local = Path(folder) / name
                    if local.is_file():
                        pairs.append((local, local.relative_to(base).as_posix()))
        else:
            raise client_error("submit.missing", f"{str(base)!r} is not a file or a folder.",
                               "Give existing files or folders to upload.")
        for local, rel in pairs:
            remote = f"{prefix}/{rel}" if prefix else rel
            if remote in found:
                raise client_error("submit.duplicate", f"Two local files would both be uploaded "
                                   f"as {remote!r}: {str(found[remote])!r} and {str(local)!r}.",
                                   "Upload them into different folders (--to), or leave one out.")
            found[remote] = local
    return sorted(((local, remote) for remote, local in found.items()), key=lambda p: p[1])


class UploadMixin(ClientBase):
    """Uploads of :class:`~conform_registry.RegistryClient`."""

    # ------------------------------------------------------------------ one file
    def upload_file(self, dataset: str, local_path: str | os.PathLike[str],
                    remote_path: str | None = None, *, unpack: bool = False,
                    sha256: str | None = None, chunk_bytes: int | None = None,
                    progress: TransferProgress | None = None) -> FileTransfer:
        """Upload one file into the dataset's draft, resuming an interrupted upload of it.

        Parameters
        ----------
        dataset : str
            The dataset (of the token's site, or any for a curator).
        local_path : path-like
            The file.
        remote_path : str or None, default=None
            Its path in the dataset (default: the file's name).
        unpack : bool, default=False
            The file is an archive whose members the server adds instead (``.tar``,
            ``.tar.gz``, ``.zip``), under ``remote_path``'s folder.
        sha256 : str or None, default=None
            The file's sha256 when already known (else it is computed).
        chunk_bytes : int or None, default=None
            Chunk size (default: the server's). A resumed upload keeps its own.
        progress : TransferProgress or None, default=None
            Receives ``advance`` per chunk (chunks the server holds count as done).

        Returns
        -------
        FileTransfer
            ``action`` ``"uploaded"`` or ``"resumed"``; ``chunks_sent`` and
            ``network_bytes`` say what this call sent; ``added`` lists the files the draft
            got (several for an archive) and ``job`` the validation job queued (None when
            the draft did not change).

        Raises
        ------
        RegistryClientError
            The server's refusal (too large, bad path, checksum mismatch, unsafe archive),
            or the server could not be reached after the retries.
        """
        local = Path(local_path)
        remote = remote_path or local.name
        size = local.stat().st_size
        sha = sha256 or sha256_file(local)
        up = self.create_upload(dataset, remote, size, sha, chunk_bytes=chunk_bytes, unpack=unpack)
        resumed = bool(up["received"])
        sent = chunks = 0
        result: dict[str, Any] | None = None
        for _round in range(3):  # a server that lost chunks asks for them again
            step = int(up["chunk_bytes"])
            held = set(up["received"])
            missing = [i for i in range(int(up["n_chunks"])) if i not in held]
            if progress is not None and _round == 0:
                for i in sorted(held):
                    progress.advance(remote, min(step, size - i * step))

            def send(index: int, upload_id: str = up["upload_id"], step: int = step) -> int:
                with open(local, "rb") as handle:
                    handle.seek(index * step)
                    data = handle.read(min(step, size - index * step))
                self.put_chunk(upload_id, index, data, hashlib.sha256(data).hexdigest())
                return len(data)

            for n in run_parallel(self.workers, missing, send):
                sent, chunks = sent + n, chunks + 1
                if progress is not None:
                    progress.advance(remote, n)
            try:
                result = self.complete_upload(up["upload_id"], size=size)
                break
            except RegistryClientError as exc:
                if exc.code != "upload.incomplete" or _round == 2:
                    raise
                up = self.get_upload(up["upload_id"])
        assert result is not None
        return FileTransfer(remote, size, sha, "resumed" if resumed else "uploaded", str(local),
                            sent, chunks, list(result.get("files") or []), result.get("job"))

    # ------------------------------------------------------------------ many files
    def upload_tree(self,
                    dataset: str, sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
                    *, prefix: str = "", pack_threshold: int | None = None,
                    small_file_bytes: int | None = None, pack_bytes: int = _PACK_BYTES,
                    skip_unchanged: bool = True,
                    progress: TransferProgress | None = None) -> UploadSummary:
        """Upload files and folders into the draft: small files packed, large ones one by one.

        Parameters
        ----------
        dataset : str
            The dataset.
        sources : path-like or iterable of path-like
            Files (uploaded under their name) and folders (their files, under their path
            relative to the folder).
        prefix : str, default=""
            Folder in the dataset to upload into.
        pack_threshold : int or None, default=None
            Warn when more small files than this are sent (default: the server's
            ``pack_threshold_files``).
        small_file_bytes : int or None, default=None
            Files below this size are packed, when there are two or more (default: the
            server's chunk size).
        pack_bytes : int, default=2 GiB
            Most bytes per packed archive (more small files make more archives).
        skip_unchanged : bool, default=True
            Skip files whose path and sha256 are in the draft already.
        progress : TransferProgress or None, default=None
            Receives the events (see :class:`TransferProgress`).

        Returns
        -------
        UploadSummary
            Every file and what happened to it, the archives, and the draft's latest
            validation job.
        """
        events = LockedProgress(progress)
        pairs = _collect(sources, prefix)
        limits = self.limits()
        threshold = int(pack_threshold or limits["pack_threshold_files"])
        small_limit = int(small_file_bytes or limits["chunk_bytes"])
        events.note(f"hashing {len(pairs)} file(s)")
        entries = [(local, remote, local.stat().st_size, sha256_file(local)) for local, remote in pairs]
        summary = UploadSummary(dataset)
        draft = {}
        if skip_unchanged:
            draft = {f["path"]: f["sha256"] for f in self.get_version(dataset, "draft")["files"]}
        todo = []
        for local, remote, size, sha in entries:
            if draft.get(remote) == sha:
                summary.files.append(FileTransfer(remote, size, sha, "unchanged", str(local)))
            else:
                todo.append((local, remote, size, sha))
        small = [e for e in todo if e[2] < small_limit]
        large = [e for e in todo if e[2] >= small_limit]
        if len(small) < 2:  # one small file goes up as it is
            small, large = [], todo
        if len(small) > threshold:
            message = (f"{len(small)} small files (under {small_limit} bytes each) in one "
                       f"submission, more than the registry's {threshold}. They are packed into "
                       "one upload unit, but the registry, the validator and everyone who pulls "
                       "the data work best with fewer, larger files: consider one HDF5 file per "
                       "run or session.")
            summary.warnings.append(message)
            events.warn(message)
        with tempfile.TemporaryDirectory(prefix="conform-pack-") as tmp:
            packs = self._pack(small, prefix, pack_bytes, int(limits["archive_max_members"]),
                               Path(tmp), events)
            events.start(len(entries), sum(p[1].size for p in packs) + sum(e[2] for e in large))
            for done in summary.files:
                events.file_done(done)
            for remote, manifest, members in packs:
                sent = self.upload_file(dataset, manifest.path, remote, unpack=True,
                                        sha256=manifest.sha256, progress=events)
                summary.packs.append({"path": remote, "size": manifest.size,
                                      "sha256": manifest.sha256, "members": len(members),
                                      "action": sent.action, "network_bytes": sent.network_bytes,
                                      "chunks_sent": sent.chunks_sent})
                for local, member_remote, size, sha in members:
                    transfer = FileTransfer(member_remote, size, sha, "packed", str(local))
                    summary.files.append(transfer)
                    events.file_done(transfer)
        for local, remote, _size, sha in large:
            transfer = self.upload_file(dataset, local, remote, sha256=sha, progress=events)
            summary.files.append(transfer)
            events.file_done(transfer)
        summary.files.sort(key=lambda f: f.path)
        summary.job = (self.get_dataset(dataset).get("draft") or {}).get("validation")
        return summary

    def _pack(self, small: list[tuple[Path, str, int, str]], prefix: str, pack_bytes: int,
              max_members: int, tmp: Path, events: TransferProgress) -> list[tuple[str, Any, Any]]:
        """Pack the small files into tars of at most ``pack_bytes`` bytes (deterministic)."""
        from ._archive import pack

        groups: list[list[tuple[Path, str, int, str]]] = []
        total = 0
        for entry in small:  # sorted by remote path: the same files give the same tars
            if not groups or total + entry[2] > pack_bytes or len(groups[-1]) >= max_members:
                groups.append([])
                total = 0
            groups[-1].append(entry)
            total += entry[2]
        folder = prefix.strip("/")
        packs = []
        for k, group in enumerate(groups):
            events.note(f"packing {len(group)} small files into one archive")
            names = [(local, remote[len(folder) + 1:] if folder else remote)
                     for local, remote, _, _ in group]
            name = f"conform-pack-{k:03d}.tar"
            manifest = pack(names, tmp / name)
            by_name = {f.name: f for f in manifest.files}
            for local, remote, _size, sha in group:  # a file changed since it was hashed
                packed = by_name[remote[len(folder) + 1:] if folder else remote]
                if packed.sha256 != sha:
                    raise client_error("submit.file_changed", f"{str(local)!r} changed while it was "
                                 "being uploaded.", "Upload it again once it is complete.")
            packs.append((f"{folder}/{name}" if folder else name, manifest, group))
        return packs
