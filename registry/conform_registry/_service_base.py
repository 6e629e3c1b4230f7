"""Shared pieces of the registry service: its error, transactions, access rules and JSON shapes.

:class:`RegistryError` is the one error the service raises: an HTTP status, a stable dotted
code, a message naming the value, and the fix. :func:`registry_error` turns the errors of the
lower layers (auth, archives, blob store, parameters) into it, so the API answers every
rejected request with ``{"error": {"code", "message", "fix"}}``.

:class:`ServiceBase` holds what every part of :class:`~conform_registry.RegistryService`
needs: the engine and sessions, the blob store, the audit writer, and the access rules
(who may see a dataset, who may touch its draft). Draft writes lock the draft's row first
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises every transaction), so uploads,
deletes, validation requests, job claims and publishing of one dataset happen one after the
other and job ids follow the order of the content they validate.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from conform_core.exceptions import ConformError, ParameterError

from ._archive_checks import ArchiveError
from ._auth import AuthenticationError, AuthorizationError, Principal
from ._config import RegistryConfig
from ._db import Asset, Audit, Dataset, Job, Token, Version, utcnow
from ._db.models import MAX_PATH
from ._store import BlobIntegrityError, BlobNotFoundError, BlobStore

__all__ = ["KeyedLocks", "RegistryError", "ServiceBase", "check_path", "check_sha256", "manifest_sha256",
           "registry_error"]

_SHA = re.compile(r"^[0-9a-f]{64}$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IN_BATCH = 500  # values per IN (...) clause


class RegistryError(ConformError):
    """A request the registry refuses: HTTP status, dotted code, message and fix.

    Parameters
    ----------
    status : int
        The HTTP status (401 no/invalid token, 403 not allowed, 404 unknown, 409 conflict,
        413 too large, 422 bad input, 400 malformed).
    code : str
        A stable machine-readable reason such as ``"upload.checksum_mismatch"``.
    message : str
        What is wrong, naming the value.
    fix : str
        What to do about it.
    """

    def __init__(self, status: int, code: str, message: str, fix: str = "") -> None:
        super().__init__(f"{message} {fix}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.fix = fix

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.code, self.message, self.fix))

    def to_dict(self) -> dict[str, Any]:
        """Return the API's error body ``{"error": {"code", "message", "fix"}}``."""
        return {"error": {"code": self.code, "message": self.message, "fix": self.fix}}


def registry_error(exc: BaseException) -> RegistryError:
    """Return ``exc`` as a :class:`RegistryError` with the right status and code.

    Parameters
    ----------
    exc : BaseException
        An error of the service or of a lower layer.

    Returns
    -------
    RegistryError
        ``exc`` itself if it is one; else a translation (auth 401/403, archives and
        checksums 422, bad parameters 422, other conform errors 400).
    """
    if isinstance(exc, RegistryError):
        return exc
    text = str(exc)
    if isinstance(exc, AuthenticationError):
        return RegistryError(401, "auth.unauthenticated", text,
                             "Send 'Authorization: Bearer <token>' with a token a curator made "
                             "with `conform registry token create`.")
    if isinstance(exc, AuthorizationError):
        return RegistryError(403, "auth.forbidden", text, "Use a token that is allowed to do this.")
    if isinstance(exc, ArchiveError):
        return RegistryError(422, exc.code, text, "Fix the archive as the message says and upload "
                             "it again.")
    if isinstance(exc, BlobIntegrityError):
        return RegistryError(422, "upload.checksum_mismatch", text,
                             "Re-hash the file and upload it again.")
    if isinstance(exc, BlobNotFoundError):
        return RegistryError(500, "store.missing", text, "Tell the registry operator to run `conform registry fsck`.")
    if isinstance(exc, ParameterError):
        return RegistryError(422, "request.invalid", text, "Correct the value as the message says.")
    if isinstance(exc, ConformError):
        return RegistryError(400, "request.refused", text, "Correct the request as the message says.")
    return RegistryError(500, "server.internal", f"The registry failed: {type(exc).__name__}.",
                         "Retry; if it persists, send the server log to the registry operator.")


def check_sha256(value: object, name: str = "sha256") -> str:
    """Return a lower-case sha256 hex digest or raise a 422 :class:`RegistryError`."""
    if isinstance(value, str) and _SHA.match(value.strip().lower()):
        return value.strip().lower()
    shown = repr(value) if not isinstance(value, str) or len(value) < 80 else repr(value[:77] + "...")
    raise RegistryError(422, "request.bad_sha256", f"{name} must be a sha256 digest (64 hexadecimal "
                        f"characters); got {shown}.",
                        "Send hashlib.sha256(content).hexdigest() (or `sha256sum FILE`).")


def check_path(path: object, *, what: str = "file path") -> str:
    """Return a safe relative ``/``-separated path (``./a//b`` -> ``a/b``) or raise 422.

    Refused: empty paths, absolute paths, ``..``, backslashes and drive letters, control
    characters, text that is not UTF-8, more than 1024 characters.
    """
    fix = "Give a relative path inside the dataset, e.g. 'sub-01/ses-01/func/run-01_events.tsv'."
    if not isinstance(path, str) or not path.strip():
        raise RegistryError(422, "path.invalid", f"The {what} {path!r} is empty or not text.", fix)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise RegistryError(422, "path.not_utf8", f"The {what} {path!r} is not valid UTF-8.",
                            "Rename the file with a UTF-8 name.") from None
    if "\\" in path or _DRIVE.match(path):
        raise RegistryError(422, "path.windows", f"The {what} {path!r} is a Windows path.",
                            "Use '/' between folders. " + fix)
    if path.startswith("/"):
        raise RegistryError(422, "path.absolute", f"The {what} {path!r} is absolute.", fix)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RegistryError(422, "path.traversal", f"The {what} {path!r} contains '..'.", fix)
    if _CONTROL.search(path):
        raise RegistryError(422, "path.bad_chars", f"The {what} {path!r} contains control "
                            "characters.", "Rename the file with printable characters only.")
    clean = "/".join(parts)
    if not clean:
        raise RegistryError(422, "path.invalid", f"The {what} {path!r} names no file.", fix)
    if len(clean) > MAX_PATH:
        raise RegistryError(422, "path.too_long", f"The {what} has {len(clean)} characters; the "
                            f"limit is {MAX_PATH}.", "Use shorter folder and file names.")
    return clean


def manifest_sha256(files: Iterable[dict[str, Any]]) -> str:
    """Return the sha256 of a manifest: its canonical JSON, UTF-8.

    The canonical JSON is the list of ``{"path", "sha256", "size"}`` objects sorted by
    path, keys sorted, separators ``","`` and ``":"``, non-ASCII characters as they are
    (``json.dumps(files, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``).
    A draft's content and a published version's manifest use the same digest, so a job can
    say exactly which content it validated.
    """
    entries = sorted(({"path": f["path"], "sha256": f["sha256"], "size": int(f["size"])}
                      for f in files), key=lambda f: f["path"])
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rowcount(result: Any) -> int:
    """Return the number of rows an UPDATE or DELETE matched (0 if unknown)."""
    return int(getattr(result, "rowcount", 0) or 0)


def iso(value: datetime | None) -> str | None:
    """Return an ISO 8601 UTC timestamp, or None."""
    return None if value is None else value.isoformat()


def batched(values: list[Any], size: int = _IN_BATCH) -> Iterator[list[Any]]:
    """Yield ``values`` in lists of at most ``size`` (for IN clauses)."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


class KeyedLocks:
    """One lock per key (an upload id), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list[Any]] = {}  # key -> [lock, number of holders and waiters]

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` for the block."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


class ServiceBase:
    """Engine, sessions, blob store and the access rules shared by the service's parts."""

    config: RegistryConfig
    engine: Engine
    store: BlobStore
    scratch_dir: Path
    _sessions: sessionmaker[Session]
    _job_listeners: list[Callable[[], None]]

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on error."""
        with self._sessions.begin() as session:
            yield session

    def _insert(self, session: Session, table: Any) -> Any:
        """Return the dialect's INSERT (it has ``on_conflict_do_nothing``/``_do_update``)."""
        dialect = session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    def add_job_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (no arguments, must not block) after a job is queued."""
        self._job_listeners.append(callback)

    def _notify_jobs(self) -> None:
        for callback in list(self._job_listeners):
            callback()

    def _audit(self, session: Session, principal: Principal | None, action: str, target: str,
               detail: dict[str, Any] | None = None, *, site_id: int | None = None,
               at: datetime | None = None) -> None:
        """Add the audit row of a write, in the write's own transaction."""
        if principal is not None and site_id is None:
            site_id = self._site_id(session, principal)
        session.add(Audit(at=at or utcnow(), token_id=None if principal is None else principal.token_id,
                          site_id=site_id, action=action, target=target[:MAX_PATH], detail=detail))

    def _site_id(self, session: Session, principal: Principal) -> int:
        site_id = session.scalar(select(Token.site_id).where(Token.id == principal.token_id))
        if site_id is None:  # the token was deleted while the request ran
            raise RegistryError(401, "auth.invalid", "The token is no longer known to the registry.",
                                "Ask a curator for a new token.")
        return site_id

    # ------------------------------------------------------------------ access rules
    @staticmethod
    def _owns(principal: Principal | None, dataset: Dataset) -> bool:
        return principal is not None and (principal.is_curator or principal.site == dataset.site.name)

    def _has_published(self, session: Session, dataset: Dataset) -> bool:
        return (session.scalar(select(func.count(Version.id)).where(
            Version.dataset_id == dataset.id, Version.state == "published")) or 0) > 0

    def _not_found(self, name: str) -> RegistryError:
        return RegistryError(404, "dataset.not_found", f"There is no dataset {name!r} you can see.",
                             "Check the name with `conform registry list`; another site's "
                             "unpublished dataset is not visible.")

    def _dataset(self, session: Session, name: str, principal: Principal | None) -> Dataset:
        """Return a dataset the caller may see: published, or its own site's, or any (curator)."""
        dataset = session.scalar(select(Dataset).where(Dataset.name == str(name)))
        if dataset is None or not (self._owns(principal, dataset)
                                   or self._has_published(session, dataset)):
            raise self._not_found(str(name))
        return dataset

    def _owned_dataset(self, session: Session, name: str, principal: Principal | None,
                       action: str) -> Dataset:
        """Return a dataset whose draft the caller may read and write (owner site or curator)."""
        if principal is None:
            raise RegistryError(401, "auth.required", f"A token is needed to {action}.",
                                "Send 'Authorization: Bearer <token>' (set $CONFORM_REGISTRY_TOKEN).")
        dataset = self._dataset(session, name, principal)
        if not self._owns(principal, dataset):
            raise RegistryError(403, "auth.forbidden",
                                f"Site {principal.site!r} may not {action}: dataset {dataset.name!r} "
                                f"belongs to site {dataset.site.name!r}.",
                                "Use a token of that site, or ask a curator.")
        return dataset

    def _draft(self, session: Session, dataset_id: int, *, lock: bool = False) -> Version:
        """Return the dataset's draft; ``lock``: hold its row until the transaction ends."""
        query = select(Version).where(Version.dataset_id == dataset_id, Version.number.is_(None))
        if lock:
            query = query.with_for_update()
        draft = session.scalar(query)
        assert draft is not None, "every dataset has a draft"
        return draft

    @staticmethod
    def _files(session: Session, version_id: int) -> list[dict[str, Any]]:
        rows = session.execute(select(Asset.path, Asset.size, Asset.blob_sha256)
                               .where(Asset.version_id == version_id))
        # sorted here, by code point: a database's collation may order paths differently
        return sorted(({"path": p, "size": int(s), "sha256": h} for p, s, h in rows),
                      key=lambda f: f["path"])

    # ------------------------------------------------------------------ jobs as JSON
    def _job_json(self, job: Job, dataset: str, *, full: bool = True) -> dict[str, Any]:
        report = job.report if isinstance(job.report, dict) and "errors" in job.report else None
        out: dict[str, Any] = {
            "id": job.id, "kind": job.kind, "dataset": dataset, "state": job.state,
            "attempts": job.attempts, "created_at": iso(job.created_at),
            "started_at": iso(job.started_at), "finished_at": iso(job.finished_at),
            "draft_changed_at": iso(job.draft_changed_at), "content_sha256": job.content_sha256,
            "superseded_by": job.superseded_by,
            "errors": None if report is None else len(report["errors"]),
            "warnings": None if report is None else len(report["warnings"]),
        }
        if full:
            out["log"] = job.log
            out["report"] = report
        return out

    def _latest_job(self, session: Session, version_id: int) -> Job | None:
        return session.scalar(select(Job).where(Job.version_id == version_id)
                              .order_by(Job.id.desc()).limit(1))
