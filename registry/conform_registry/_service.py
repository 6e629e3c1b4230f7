"""The registry service: every operation of the HTTP API, over the database and the blob store.

:class:`RegistryService` is what the API (:mod:`._api`) and the administration commands
(``conform registry token create``, ``fsck``) call. Its operations take the caller's
:class:`~conform_registry._auth.Principal` (``None``: no token) and raise
:class:`~conform_registry._service_base.RegistryError` (an HTTP status, a code, a message
and a fix) when they refuse. They are split by concern:

- :mod:`._service_datasets`: datasets, versions, file reads, deletes, publishing;
- :mod:`._service_uploads`: chunked, resumable, verified uploads (and archives);
- :mod:`._service_jobs`: validation jobs in the database (the worker is :mod:`._jobs`).

Example::

    service = RegistryService(RegistryConfig(data_dir="/srv/conform"))
    service.startup()                      # migrate, requeue jobs of a killed server
    token = service.create_token("cam", "contributor")
    me = service.authenticate(token)
    service.create_dataset(me, "cam-mosaic", kind="mosaic")
"""

from __future__ import annotations

import re
import threading
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ._auth import (
    Principal,
    check_role,
    check_token,
    hash_token,
    new_token,
    parse_bearer,
    token_prefix,
)
from ._config import RegistryConfig
from ._db import (
    Asset,
    Blob,
    Dataset,
    Site,
    Token,
    Version,
    make_engine,
    make_session_factory,
    upgrade,
    utcnow,
)
from ._service_base import KeyedLocks, RegistryError, batched, registry_error, rowcount
from ._service_datasets import FileRef
from ._service_ingest import IngestMixin
from ._service_jobs import Claim
from ._service_uploads import UploadsMixin
from ._store import BlobNotFoundError, BlobStore

__all__ = ["Claim", "FileRef", "RegistryError", "RegistryService"]

_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


class RegistryService(IngestMixin, UploadsMixin):
    """The registry's operations over its database and blob store.

    Parameters
    ----------
    config : RegistryConfig or None, default=None
        Where the data lives and the limits; None reads ``CONFORM_REGISTRY_*`` variables
        (:meth:`RegistryConfig.from_env`).

    Notes
    -----
    Creating the service opens nothing; :meth:`startup` migrates the database and requeues
    jobs a killed server left running (call it once per server start). :meth:`create_token`
    and :meth:`fsck` migrate the database themselves, so administration commands work on a
    fresh data folder without a running server.
    """

    def __init__(self, config: RegistryConfig | None = None) -> None:
        self.config = RegistryConfig.from_env() if config is None else config
        self.engine = make_engine(self.config.db_url)
        self._sessions = make_session_factory(self.engine)
        try:
            self.store = BlobStore(self.config.store_url)
        except (ImportError, ValueError, OSError) as exc:
            raise RegistryError(500, "store.unavailable", f"Cannot open the blob store "
                                f"{self.config.store_url!r}: {type(exc).__name__}: {exc}.",
                                "Check --store (e.g. file:///srv/conform/blobs); other "
                                "filesystems need their fsspec package (s3fs for s3://).") from None
        self.scratch_dir = self.config.data_dir / "tmp"
        self._job_listeners = []
        self._completing = KeyedLocks()
        self._migrated = False
        self._started = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RegistryService(db={self.engine.url!r}, store={self.store.url!r})"

    def __enter__(self) -> RegistryService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ lifecycle
    def migrate(self) -> None:
        """Bring the database schema to the newest revision (once per service)."""
        with self._lock:
            if not self._migrated:
                try:
                    upgrade(self.engine)
                except OperationalError as exc:
                    url = self.engine.url.render_as_string(hide_password=True)
                    raise RegistryError(503, "db.unavailable", f"Cannot use the database {url}: "
                                        f"{' '.join(str(exc.orig or exc).split())[:300].rstrip('.?')}.",
                                        "Check --db, that the server runs and that the user may "
                                        "create tables.") from None
                self._migrated = True

    def startup(self) -> int:
        """Migrate the database and requeue the jobs a killed server left running.

        Safe to call more than once: only the first call requeues.

        Returns
        -------
        int
            The number of jobs requeued.
        """
        self.migrate()
        with self._lock:
            if self._started:
                return 0
            self._started = True
        return self.requeue_running()

    def close(self) -> None:
        """Release the database connections (the service can be used again afterwards)."""
        self.engine.dispose()

    def health(self) -> dict[str, Any]:
        """Return the health answer: status, conform version, validator version and limits."""
        from conform_core import __version__

        from ._validators import validator_version

        c = self.config
        return {"status": "ok", "version": __version__, "validator_version": validator_version(),
                "limits": {"max_file_bytes": c.max_file_bytes, "chunk_bytes": c.chunk_bytes,
                           "max_upload_chunk_bytes": c.max_upload_chunk_bytes,
                           "pack_threshold_files": c.pack_threshold_files,
                           "archive_max_members": c.archive_max_members}}

    # ------------------------------------------------------------------ tokens
    def create_token(self, site: str, role: str, label: str | None = None) -> str:
        """Create an API token for ``site`` (created if new) and return it; only its hash is kept.

        Parameters
        ----------
        site : str
            The site's name (letters, digits, ``_ . @ -``; at most 128 characters).
        role : {"contributor", "curator"}
            What the token may do.
        label : str or None, default=None
            A note shown in listings (e.g. who holds the token).

        Returns
        -------
        str
            The token (``"cfr_..."``). It cannot be shown again.

        Raises
        ------
        RegistryError
            If the site name or the role is invalid (422).
        """
        try:
            role_name = check_role(role).value
        except Exception as exc:
            raise registry_error(exc) from None
        if not isinstance(site, str) or not _SITE.match(site):
            raise RegistryError(422, "site.bad_name", f"Site name {site!r} is not allowed: use letters, "
                                "digits, '_', '.', '@' or '-', starting with a letter or digit, at "
                                "most 128 characters.", "For example 'cambridge-mrc'.")
        self.migrate()
        token = new_token()
        for _attempt in range(3):
            try:
                with self._tx() as session:
                    row = session.scalar(select(Site).where(Site.name == site))
                    if row is None:
                        row = Site(name=site, created_at=utcnow())
                        session.add(row)
                        session.flush()
                    entry = Token(site_id=row.id, role=role_name, token_hash=hash_token(token),
                                  prefix=token_prefix(token), label=(label or "")[:128],
                                  created_at=utcnow())
                    session.add(entry)
                    session.flush()
                    self._audit(session, None, "token.create", site,
                                {"prefix": entry.prefix, "role": role_name, "label": entry.label,
                                 "token_id": entry.id}, site_id=row.id)
                return token
            except IntegrityError:  # the site was created concurrently: use it
                continue
        raise RegistryError(409, "site.busy", f"Could not create a token for site {site!r}.", "Retry.")

    def revoke_token(self, prefix: str) -> int:
        """Revoke the tokens whose first 8 characters are ``prefix``; return how many."""
        self.migrate()
        with self._tx() as session:
            result = session.execute(update(Token).where(Token.prefix == prefix,
                                                         Token.revoked_at.is_(None))
                                     .values(revoked_at=utcnow()))
            count = rowcount(result)
            if count:
                self._audit(session, None, "token.revoke", prefix, {"count": count})
            return count

    def authenticate(self, token: str) -> Principal:
        """Return the caller a token identifies.

        Raises
        ------
        RegistryError
            401 if the token is missing, malformed, unknown or revoked.
        """
        try:
            token = check_token(token)
        except Exception as exc:
            raise registry_error(exc) from None
        with self._tx() as session:
            row = session.execute(select(Token.id, Token.role, Token.revoked_at, Site.name)
                                  .join(Site, Site.id == Token.site_id)
                                  .where(Token.token_hash == hash_token(token))).first()
        if row is None or row.revoked_at is not None:
            what = "was revoked" if row is not None else "is not known to this registry"
            raise RegistryError(401, "auth.invalid", f"The token starting {token[:8]!r} {what}.",
                                "Ask a curator for a new token (`conform registry token create`).")
        return Principal(row.id, row.name, row.role)

    def authenticate_header(self, header: str | None) -> Principal:
        """Return the caller of an ``Authorization: Bearer <token>`` header (401 if wrong)."""
        try:
            token = parse_bearer(header)
        except Exception as exc:
            raise registry_error(exc) from None
        return self.authenticate(token)

    # ------------------------------------------------------------------ fsck
    def fsck(self) -> list[dict[str, Any]]:
        """Re-hash every stored blob the database knows; return the problems found.

        Returns
        -------
        list of dict
            One entry per bad blob: ``sha256``, ``problem`` (``"missing"``: not in the store;
            ``"mismatch"``: its content no longer has its sha256; ``"size"``: its size is not
            the recorded one), ``size`` (recorded) and ``used_by`` (up to 20
            ``"DATASET@VERSION:PATH"``). Empty when every blob is intact; good blobs get a
            new ``verified_at``.
        """
        self.migrate()
        with self._tx() as session:
            blobs = dict(session.execute(select(Blob.sha256, Blob.size).order_by(Blob.sha256)).all())
        problems, good = [], []
        for sha, size in blobs.items():
            try:
                if not self.store.verify(sha):
                    problem = "mismatch"
                elif self.store.size(sha) != size:
                    problem = "size"
                else:
                    good.append(sha)
                    continue
            except (BlobNotFoundError, FileNotFoundError):
                problem = "missing"
            problems.append({"sha256": sha, "problem": problem, "size": int(size), "used_by": []})
        with self._tx() as session:
            now = utcnow()
            for part in batched(good):
                session.execute(update(Blob).where(Blob.sha256.in_(part)).values(verified_at=now))
            for entry in problems:
                rows = session.execute(select(Dataset.name, Version.number, Asset.path)
                                       .join(Version, Version.id == Asset.version_id)
                                       .join(Dataset, Dataset.id == Version.dataset_id)
                                       .where(Asset.blob_sha256 == entry["sha256"])
                                       .order_by(Dataset.name, Asset.path).limit(20))
                entry["used_by"] = [f"{d}@{'draft' if n is None else n}:{p}" for d, n, p in rows]
        return problems
