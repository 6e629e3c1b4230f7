"""Chunked, resumable, verified uploads into a dataset's draft.

Order of events, and why nothing half-written is ever visible:

1. ``create_upload`` checks the size, chunk size and path against the configuration before
   any byte is stored, and records an open upload (or returns the open one with the same
   dataset, path, size, sha256 and ``unpack``: the client resumes it).
2. ``put_chunk`` checks the chunk's size and sha256 (``X-Chunk-SHA256``), writes it under a
   temporary name, fsyncs it and renames it to its final name (the store does this), and
   only then records its row. The 200 answer follows the row: acknowledged = durable.
3. ``complete_upload`` assembles the chunks into a blob, checking the whole file's sha256
   and size, and moves it into place (or drops it: the same content is stored already).
   Archives (``unpack``) are then inspected with the archive limits and their members
   stored as blobs. Only after that, in ONE transaction, the draft's assets are added or
   replaced, the upload marked complete, a validation job queued and the audit row written.
   A server killed at any point before that commit leaves the draft as it was.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ._archive import extract
from ._archive_checks import ArchiveError
from ._auth import Principal
from ._db import Asset, Audit, Blob, Dataset, Site, Upload, UploadChunk, Version, utcnow
from ._service_base import KeyedLocks, RegistryError, batched, check_path, check_sha256, iso
from ._service_jobs import JobsMixin
from ._store import BlobIntegrityError, BlobNotFoundError

__all__ = ["UploadsMixin"]

_AUDIT_FILES = 10_000  # files listed in an upload's audit row (the answer to a repeated complete)


def _count(value: object, name: str, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise RegistryError(422, "request.invalid", f"{name} must be an integer >= {least}; got "
                            f"{value!r}.", f"Send {name} as a whole number.")
    return value


class UploadsMixin(JobsMixin):
    """Upload operations of :class:`~conform_registry.RegistryService`."""

    _completing: KeyedLocks

    # ------------------------------------------------------------------ helpers
    def _upload(self, session: Session, upload_id: str, principal: Principal | None,
                action: str) -> Upload:
        """Return an upload of a dataset whose draft the caller may write (one query)."""
        row = session.execute(select(Upload, Dataset.name, Site.name)
                              .join(Dataset, Dataset.id == Upload.dataset_id)
                              .join(Site, Site.id == Dataset.site_id)
                              .where(Upload.id == str(upload_id)[:64])).first()
        if row is None:
            raise RegistryError(404, "upload.not_found", f"There is no upload {upload_id!r}.",
                                "Start the upload again with POST /api/v1/datasets/NAME/uploads.")
        upload, dataset, site = row
        if principal is None or not (principal.is_curator or principal.site == site):
            self._owned_dataset(session, dataset, principal, action)  # raises 401, 403 or 404
        return upload

    def _received(self, session: Session, upload: Upload) -> list[int]:
        """Return the indices of the chunks the server holds: recorded AND present in the store.

        If the store no longer holds the chunks because they were already joined into the
        blob (a server killed between the two steps of ``complete``), every recorded chunk
        still counts: ``complete`` re-checks the blob against the chunks' digests.
        """
        rows = dict(session.execute(select(UploadChunk.index, UploadChunk.sha256)
                                    .where(UploadChunk.upload_id == upload.id)).all())
        if upload.state == "complete":
            return list(range(upload.n_chunks))
        if upload.state != "open":
            return []
        stored = set(self.store.list_chunks(upload.id))
        if not stored and len(rows) == upload.n_chunks and upload.n_chunks and \
                self.store.exists(upload.sha256):
            return sorted(rows)
        return sorted(set(rows) & stored)

    def _upload_json(self, session: Session, upload: Upload) -> dict[str, Any]:
        dataset = session.get(Dataset, upload.dataset_id)
        return {"upload_id": upload.id, "dataset": dataset.name if dataset else None,
                "path": upload.path, "size": upload.size, "sha256": upload.sha256,
                "chunk_bytes": upload.chunk_bytes, "n_chunks": upload.n_chunks,
                "unpack": upload.unpack, "received": self._received(session, upload),
                "state": upload.state, "created_at": iso(upload.created_at),
                "completed_at": iso(upload.completed_at)}

    def _chunk_size(self, upload: Upload, index: int) -> int:
        if not 0 <= index < upload.n_chunks:
            raise RegistryError(422, "chunk.bad_index", f"Chunk index {index} is outside the upload's "
                                f"{upload.n_chunks} chunks (0 to {upload.n_chunks - 1}).",
                                "Split the file into chunk_bytes pieces numbered from 0.")
        return min(upload.chunk_bytes, upload.size - index * upload.chunk_bytes)

    # ------------------------------------------------------------------ operations
    def create_upload(self, principal: Principal | None, dataset: str, *, path: str, size: int,
                      sha256: str, chunk_bytes: int | None = None,
                      unpack: bool = False) -> tuple[dict[str, Any], bool]:
        """Start an upload into the draft, or find the open one to resume.

        Returns
        -------
        tuple of (dict, bool)
            The upload's JSON and whether it is new (False: resume it; ``received`` lists
            the chunks the server holds).
        """
        path = check_path(path)
        size = _count(size, "size")
        if size > self.config.max_file_bytes:
            raise RegistryError(413, "upload.too_large", f"The file {path!r} has {size} bytes; this "
                                f"registry accepts at most {self.config.max_file_bytes} per file.",
                                "Split the file, or ask the operator to raise max_file_bytes.")
        sha = check_sha256(sha256)
        chunk = self.config.chunk_bytes if chunk_bytes is None else _count(chunk_bytes, "chunk_bytes",
                                                                           least=1)
        if chunk > self.config.max_upload_chunk_bytes:
            raise RegistryError(413, "upload.chunk_too_large", f"chunk_bytes={chunk} is above the "
                                f"server's limit of {self.config.max_upload_chunk_bytes} bytes.",
                                f"Use chunks of at most {self.config.max_upload_chunk_bytes} bytes.")
        if not isinstance(unpack, bool):
            raise RegistryError(422, "request.invalid", f"unpack must be true or false; got {unpack!r}.",
                                "Send a JSON boolean.")
        with self._tx() as session:
            owned = self._owned_dataset(session, dataset, principal, f"upload to {dataset!r}")
            assert principal is not None  # _owned_dataset refuses anonymous callers
            found = session.scalar(select(Upload).where(
                Upload.dataset_id == owned.id, Upload.path == path, Upload.size == size,
                Upload.sha256 == sha, Upload.unpack == unpack, Upload.state == "open",
            ).order_by(Upload.created_at.desc()).limit(1))
            if found is not None:
                return self._upload_json(session, found), False
            upload = Upload(id=uuid.uuid4().hex, dataset_id=owned.id,
                            site_id=self._site_id(session, principal), path=path, size=size,
                            sha256=sha, chunk_bytes=chunk, n_chunks=math.ceil(size / chunk),
                            unpack=unpack, state="open", created_at=utcnow())
            session.add(upload)
            self._audit(session, principal, "upload.create", owned.name,
                        {"upload_id": upload.id, "path": path, "size": size, "sha256": sha,
                         "unpack": unpack})
            session.flush()
            return self._upload_json(session, upload), True

    def get_upload(self, principal: Principal | None, upload_id: str) -> dict[str, Any]:
        """Return an upload's JSON (``received``: the chunks the server holds)."""
        with self._tx() as session:
            return self._upload_json(session, self._upload(session, upload_id, principal,
                                                           "see this upload"))

    def put_chunk(self, principal: Principal | None, upload_id: str, index: int, data: bytes,
                  sha256: str | None) -> dict[str, Any]:
        """Store one chunk durably after checking its size and sha256; idempotent."""
        if sha256 is None or not str(sha256).strip():
            raise RegistryError(400, "chunk.no_sha256", "The chunk has no X-Chunk-SHA256 header.",
                                "Send the sha256 (hex) of the chunk's bytes in X-Chunk-SHA256.")
        claimed = check_sha256(sha256, "X-Chunk-SHA256")
        with self._tx() as session:
            upload = self._upload(session, upload_id, principal, "upload to this dataset")
            if upload.state != "open":
                raise self._not_open(upload)
            expected = self._chunk_size(upload, _count(index, "index"))
        if len(data) > upload.chunk_bytes:
            raise RegistryError(413, "chunk.too_large", f"Chunk {index} has {len(data)} bytes; the "
                                f"upload's chunk_bytes is {upload.chunk_bytes}.",
                                "Send chunks of chunk_bytes bytes (the last one may be shorter).")
        if len(data) != expected:
            raise RegistryError(422, "chunk.size_mismatch", f"Chunk {index} has {len(data)} bytes; "
                                f"it should have {expected}.", "Send the chunk again, whole.")
        actual = hashlib.sha256(data).hexdigest()
        if actual != claimed:
            raise RegistryError(422, "chunk.checksum_mismatch", f"Chunk {index} has sha256 {actual} "
                                f"but X-Chunk-SHA256 says {claimed}; nothing was kept.",
                                "Send the chunk again (it was corrupted on the way, or the file "
                                "changed).")
        self.store.put_chunk(upload.id, index, data)  # fsynced under its final name
        with self._tx() as session:
            current = session.get(Upload, upload.id, with_for_update=True)
            if current is None or current.state != "open":  # aborted meanwhile
                self.store.discard_staging(upload.id)
                raise self._not_open(current or upload)
            row = {"upload_id": upload.id, "index": index, "sha256": actual, "size": len(data)}
            session.execute(self._insert(session, UploadChunk).values(**row).on_conflict_do_update(
                index_elements=["upload_id", "index"], set_={"sha256": actual, "size": len(data)}))
        return {"index": index, "sha256": actual, "size": len(data)}

    def abort_upload(self, principal: Principal | None, upload_id: str) -> None:
        """Abort an open upload and discard its chunks (an aborted one: nothing to do)."""
        with self._tx() as session:
            upload = self._upload(session, upload_id, principal, "abort this upload")
            if upload.state == "complete":
                raise RegistryError(409, "upload.complete", f"Upload {upload.id} is complete; its "
                                    "file is in the draft.", "Delete the file from the draft instead.")
            if upload.state == "open":
                upload.state = "aborted"
                session.execute(delete(UploadChunk).where(UploadChunk.upload_id == upload.id))
                dataset = session.get(Dataset, upload.dataset_id)
                self._audit(session, principal, "upload.abort", dataset.name if dataset else "",
                            {"upload_id": upload.id, "path": upload.path})
        self.store.discard_staging(upload.id)

    def _not_open(self, upload: Upload) -> RegistryError:
        return RegistryError(409, f"upload.{upload.state}", f"Upload {upload.id} is {upload.state}; "
                             "it takes no more chunks.", "Start a new upload for this file.")

    def complete_upload(self, principal: Principal | None, upload_id: str) -> dict[str, Any]:
        """Verify the whole file, then add it (or the archive's members) to the draft at once."""
        with self._completing.hold(str(upload_id)):  # one completion of an upload at a time
            with self._tx() as session:
                upload = self._upload(session, upload_id, principal, "complete this upload")
                if upload.state == "complete":
                    return self._completed(session, upload)
                if upload.state != "open":
                    raise self._not_open(upload)
                received = self._received(session, upload)
                chunks = dict(session.execute(select(UploadChunk.index, UploadChunk.sha256)
                                              .where(UploadChunk.upload_id == upload.id)).all())
            if len(received) < upload.n_chunks:
                missing = sorted(set(range(upload.n_chunks)) - set(received))
                with self._tx() as session:  # forget rows whose chunk the store lost
                    session.execute(delete(UploadChunk).where(UploadChunk.upload_id == upload.id,
                                                              UploadChunk.index.in_(missing[:10000])))
                shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                raise RegistryError(409, "upload.incomplete", f"Upload {upload.id} lacks {len(missing)} "
                                    f"of its {upload.n_chunks} chunks (indices {shown}).",
                                    "Send the missing chunks (GET the upload for 'received'), "
                                    "then complete it again.")
            self._assemble(upload, chunks, principal)
            members = self._unpack(upload, principal) if upload.unpack else \
                [{"path": upload.path, "size": upload.size, "sha256": upload.sha256}]
            return self._commit_upload(upload.id, principal, members)

    def _assemble(self, upload: Upload, chunks: dict[int, str], principal: Principal | None) -> None:
        stored = self.store.list_chunks(upload.id)
        if not stored and upload.n_chunks and self.store.exists(upload.sha256):
            if self._blob_matches(upload, chunks):  # joined before a crash; re-checked here
                return
        try:
            self.store.assemble(upload.id, upload.n_chunks, upload.sha256, upload.size)
        except BlobIntegrityError as exc:
            self._reject(upload, principal, "upload.checksum_mismatch", str(exc))
            raise RegistryError(422, "upload.checksum_mismatch", f"{upload.path!r}: {exc}",
                                "The upload was aborted; start it again from the file as it is "
                                "now.") from None
        except BlobNotFoundError as exc:
            held = self.store.list_chunks(upload.id)
            with self._tx() as session:  # forget the chunks the store does not hold
                session.execute(delete(UploadChunk).where(UploadChunk.upload_id == upload.id,
                                                          UploadChunk.index.not_in(held)))
            raise RegistryError(409, "upload.incomplete", str(exc),
                                "Send the missing chunks (GET the upload for 'received'), then "
                                "complete again.") from None

    def _blob_matches(self, upload: Upload, chunks: dict[int, str]) -> bool:
        with self.store.open(upload.sha256) as handle:
            for index in range(upload.n_chunks):
                piece = handle.read(upload.chunk_bytes)
                if hashlib.sha256(piece).hexdigest() != chunks.get(index):
                    return False
            return handle.read(1) == b""

    def _reject(self, upload: Upload, principal: Principal | None, code: str, reason: str) -> None:
        with self._tx() as session:
            current = session.get(Upload, upload.id, with_for_update=True)
            if current is not None and current.state == "open":
                current.state = "aborted"
                session.execute(delete(UploadChunk).where(UploadChunk.upload_id == upload.id))
                dataset = session.get(Dataset, upload.dataset_id)
                self._audit(session, principal, "upload.reject", dataset.name if dataset else "",
                            {"upload_id": upload.id, "path": upload.path, "code": code,
                             "reason": reason[:2000]})
        self.store.discard_staging(upload.id)

    def _unpack(self, upload: Upload, principal: Principal | None) -> list[dict[str, Any]]:
        """Check the archive blob with the archive limits and store each member as a blob."""
        parent = PurePosixPath(upload.path).parent
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="unpack-", dir=self.scratch_dir))
        try:
            if isinstance(self.store.fs, LocalFileSystem):
                archive = Path(self.store.blob_path(upload.sha256))
            else:
                archive = tmp / "archive"
                with self.store.open(upload.sha256) as src, open(archive, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            try:
                members = extract(archive, tmp / "files", self.config.archive_limits)
                files = [(check_path(str(parent / m.name) if str(parent) != "." else m.name), m)
                         for m in members]
            except (ArchiveError, RegistryError) as exc:
                self._reject(upload, principal, getattr(exc, "code", "archive.invalid"), str(exc))
                text = str(exc).replace(str(archive), upload.path)
                code = exc.code
                raise RegistryError(422, code, f"The archive was refused: {text}",
                                    "The upload was aborted; fix the archive and upload it "
                                    "again.") from None
            stored = []
            for path, member in files:
                with open(tmp / "files" / member.name, "rb") as handle:
                    sha, size = self.store.put_stream(handle, expected_size=member.size)
                stored.append({"path": path, "size": size, "sha256": sha})
            return stored
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _commit_upload(self, upload_id: str, principal: Principal | None,
                       files: list[dict[str, Any]]) -> dict[str, Any]:
        """Make the upload's file(s) visible in the draft, in one transaction."""
        job_id = None
        with self._tx() as session:
            upload = session.get(Upload, upload_id, with_for_update=True)
            assert upload is not None
            if upload.state == "complete":  # a concurrent complete won
                return self._completed(session, upload)
            if upload.state != "open":
                raise self._not_open(upload)
            dataset = session.get(Dataset, upload.dataset_id)
            assert dataset is not None
            draft = self._draft(session, dataset.id, lock=True)
            blobs = {f["sha256"]: f["size"] for f in files}
            if upload.unpack:
                blobs[upload.sha256] = upload.size  # the archive stays stored (re-uploads dedup)
            now = utcnow()
            for sha, size in sorted(blobs.items()):  # one order: no deadlock between two inserts
                session.execute(self._insert(session, Blob).values(
                    sha256=sha, size=size, created_at=now, verified_at=now).on_conflict_do_nothing())
            changed = self._put_assets(session, draft, files)
            upload.state, upload.completed_at = "complete", now
            session.execute(delete(UploadChunk).where(UploadChunk.upload_id == upload.id))
            job = None
            if changed:
                draft.changed_at = now
                job = self._queue_job(session, draft, now, f"upload of {upload.path!r}")
                job_id = job.id
            self._audit(session, principal, "upload.complete", dataset.name,
                        {"upload_id": upload.id, "path": upload.path, "sha256": upload.sha256,
                         "changed": changed, "job": job_id, "n_files": len(files),
                         "files": files[:_AUDIT_FILES]}, at=now)
            session.flush()
            result = {"upload": self._upload_json(session, upload), "files": files,
                      "job": None if job is None else self._job_json(job, dataset.name, full=False)}
        self.store.discard_staging(upload_id)  # a chunk re-sent while completing
        if job_id is not None:
            self._notify_jobs()
        return result

    def _completed(self, session: Session, upload: Upload) -> dict[str, Any]:
        """Answer a second completion: what the first one added."""
        dataset = session.get(Dataset, upload.dataset_id)
        files: list[dict[str, Any]] = []
        if upload.completed_at is not None:
            rows = session.scalars(select(Audit).where(
                Audit.action == "upload.complete", Audit.target == (dataset.name if dataset else ""),
                Audit.at >= upload.completed_at).order_by(Audit.id).limit(1000))
            for row in rows:
                if isinstance(row.detail, dict) and row.detail.get("upload_id") == upload.id:
                    files = list(row.detail.get("files") or [])
                    break
        return {"upload": self._upload_json(session, upload), "files": files, "job": None}

    def _put_assets(self, session: Session, draft: Version, files: list[dict[str, Any]]) -> bool:
        """Add or replace ``files`` in the draft; refuse a file inside a file. Return changed."""
        existing = dict(session.execute(select(Asset.path, Asset.blob_sha256)
                                        .where(Asset.version_id == draft.id)).all())
        new = {f["path"]: f for f in files}
        everything = set(existing) | set(new)
        folders = {str(p) for path in everything for p in PurePosixPath(path).parents
                   if str(p) != "."}
        clash = sorted(p for p in everything if p in folders and (p in new or any(
            n.startswith(p + "/") for n in new)))
        if clash:
            inside = next((n for n in sorted(everything) if n.startswith(clash[0] + "/")), "")
            raise RegistryError(409, "path.conflict", f"{clash[0]!r} would be both a file and the "
                                f"folder of {inside!r} in the draft.",
                                "Rename one of them, or delete the old one from the draft first.")
        replaced = [p for p, f in new.items() if p in existing and existing[p] != f["sha256"]]
        added = [f for p, f in new.items() if existing.get(p) != f["sha256"]]
        for part in batched(replaced):
            session.execute(delete(Asset).where(Asset.version_id == draft.id, Asset.path.in_(part)))
        session.add_all(Asset(version_id=draft.id, path=f["path"], blob_sha256=f["sha256"],
                              size=f["size"]) for f in added)
        return bool(added)
