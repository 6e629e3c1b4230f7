"""The registry's tables as SQLAlchemy 2 typed declarative models.

The schema is created and changed only by the Alembic migrations in ``migrations/versions``
(:func:`conform_registry._db.upgrade`); a test checks that the migrated schema equals
``Base.metadata``. Change a model, then add a migration (see
:func:`conform_registry._db.session.alembic_config`).

Conventions: times are timezone-aware UTC (:class:`UTCDateTime`); enumerations are short
strings with a CHECK constraint (portable, no PostgreSQL enum types to migrate); sizes are
64-bit; constraint names follow :data:`NAMING_CONVENTION`, so migrations can name them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from conform_core.exceptions import ParameterError

__all__ = [
    "DATASET_KINDS", "DATASET_NAME", "JOB_STATES", "NAMING_CONVENTION", "ROLES",
    "STUDY_ROLES", "UPLOAD_STATES", "VERSION_STATES", "Asset", "Audit", "Base", "Blob",
    "Contribution", "Dataset", "Job", "ProtocolRequest", "Site", "Study", "StudyDataset", "Token",
    "UTCDateTime", "Upload", "UploadChunk", "Version", "check_name", "utcnow",
]

ROLES = ("contributor", "curator")
DATASET_KINDS = ("mosaic", "protocol", "bids", "other")
VERSION_STATES = ("draft", "published")
UPLOAD_STATES = ("open", "complete", "aborted")
JOB_STATES = ("queued", "running", "passed", "failed")
STUDY_ROLES = ("contribution", "protocol", "catalog")
"""How a dataset belongs to a study: a site's data, a protocol package it was given, or
the study's merged catalog (one per study)."""
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
"""Dataset names: lower-case letters, digits, ``_``, ``.`` and ``-``, starting alphanumeric."""
MAX_NAME = 128
MAX_PATH = 1024

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def check_name(value: object, owner: str, example: str) -> str:
    """Return ``value`` if it is a valid dataset or study name (:data:`DATASET_NAME`).

    Raises
    ------
    ParameterError
        Naming the value, the rule and an example.
    """
    if not isinstance(value, str) or len(value) > MAX_NAME or not DATASET_NAME.match(value):
        raise ParameterError(
            param="name", value=value, owner=owner,
            allowed=f"lower-case letters, digits, '_', '.' or '-', starting with a letter "
                    f"or digit, at most {MAX_NAME} characters",
            fix=f"For example {example!r}.")
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, PostgreSQL converts to the session's zone: both come back as UTC.
    Naive datetimes are refused (they are ambiguous).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ParameterError(f"Timestamp {value!r} has no time zone. Pass an aware datetime, "
                                 "e.g. datetime.now(timezone.utc).")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _one_of(column: str, choices: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(c) for c in choices)})"


class Base(DeclarativeBase):
    """Declarative base of the registry models (its ``metadata`` is the schema)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Site(Base):
    """A contributing site (lab); tokens and datasets belong to one."""

    __tablename__ = "site"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[Token]] = relationship(back_populates="site")

    @validates("name")
    def _check_name(self, key: str, value: str) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
            raise ParameterError(param="name", value=value, owner="Site",
                                 allowed=f"a non-empty string of at most {MAX_NAME} characters",
                                 fix="Name the site, e.g. 'cambridge-mrc'.")
        return value


class Token(Base):
    """An API token: only its sha256 is stored; ``prefix`` identifies it in listings."""

    __tablename__ = "token"
    __table_args__ = (CheckConstraint(_one_of("role", ROLES), name="role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(MAX_NAME), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    site: Mapped[Site] = relationship(back_populates="tokens")


class Dataset(Base):
    """A named dataset owned by a site, with one draft and numbered published versions."""

    __tablename__ = "dataset"
    __table_args__ = (
        CheckConstraint(f"kind IS NULL OR {_one_of('kind', DATASET_KINDS)}", name="kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"), index=True)
    kind: Mapped[str | None] = mapped_column(String(16))
    protocol: Mapped[str | None] = mapped_column(String(MAX_NAME + 24))
    """``"NAME@N"``: the published protocol version the draft's events are checked against."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship()
    versions: Mapped[list[Version]] = relationship(back_populates="dataset",
                                                   order_by="Version.id")

    @validates("name")
    def _check_name(self, key: str, value: str) -> str:
        return check_name(value, "Dataset", "cam-mosaic-2025")


class Version(Base):
    """The draft (``number`` NULL) or a published, immutable version of a dataset."""

    __tablename__ = "version"
    __table_args__ = (
        UniqueConstraint("dataset_id", "number"),
        CheckConstraint("(state = 'draft' AND number IS NULL) OR "
                        "(state = 'published' AND number IS NOT NULL AND number >= 1)",
                        name="state_number"),
        Index("ix_version_one_draft", "dataset_id", unique=True,
              sqlite_where=text("number IS NULL"), postgresql_where=text("number IS NULL")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id"))
    number: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(16), default="draft")
    manifest: Mapped[list[Any] | None]
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    published_by: Mapped[int | None] = mapped_column(ForeignKey("token.id"))
    changed_at: Mapped[datetime | None]
    """Draft: when its files last changed (``None``: never since it was created)."""

    dataset: Mapped[Dataset] = relationship(back_populates="versions")
    assets: Mapped[list[Asset]] = relationship(back_populates="version", order_by="Asset.path",
                                               cascade="all, delete-orphan", passive_deletes=True)


class Blob(Base):
    """A stored file, named by the sha256 of its content."""

    __tablename__ = "blob"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]


class Asset(Base):
    """A file of a version: a path inside the dataset and the blob holding its content."""

    __tablename__ = "asset"
    __table_args__ = (UniqueConstraint("version_id", "path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("version.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(MAX_PATH))
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)

    version: Mapped[Version] = relationship(back_populates="assets")
    blob: Mapped[Blob] = relationship()


class Upload(Base):
    """A resumable chunked upload of one file into a dataset's draft."""

    __tablename__ = "upload"
    __table_args__ = (CheckConstraint(_one_of("state", UPLOAD_STATES), name="state"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    path: Mapped[str] = mapped_column(String(MAX_PATH))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    chunk_bytes: Mapped[int] = mapped_column(BigInteger)
    n_chunks: Mapped[int]
    unpack: Mapped[bool] = mapped_column(default=False)
    """The file is an archive whose members become the draft's files (not the file itself)."""
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]

    chunks: Mapped[list[UploadChunk]] = relationship(
        back_populates="upload", order_by="UploadChunk.index",
        cascade="all, delete-orphan", passive_deletes=True)


class UploadChunk(Base):
    """One received chunk of an upload, with the sha256 the server computed."""

    __tablename__ = "upload_chunk"
    upload_id: Mapped[str] = mapped_column(ForeignKey("upload.id", ondelete="CASCADE"),
                                           primary_key=True)
    index: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)

    upload: Mapped[Upload] = relationship(back_populates="chunks")


class Job(Base):
    """A background job on a version (e.g. ``kind="validate"``), with its log and report."""

    __tablename__ = "job"
    __table_args__ = (CheckConstraint(_one_of("state", JOB_STATES), name="state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    version_id: Mapped[int] = mapped_column(ForeignKey("version.id", ondelete="CASCADE"),
                                            index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    log: Mapped[str] = mapped_column(Text, default="")
    report: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    """The manifest sha256 of the draft content the job validated (set when it starts)."""
    draft_changed_at: Mapped[datetime | None]
    """The draft's ``changed_at`` when the job started (the state it validated)."""
    superseded_by: Mapped[int | None]
    """A queued job replaced by a newer one of the same draft before it ran: that job's id."""

    version: Mapped[Version] = relationship()


class Audit(Base):
    """One audited action: who (token, site), what (action, target) and details."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("token.id", ondelete="SET NULL"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(MAX_PATH), default="")
    detail: Mapped[dict[str, Any] | None]


class Study(Base):
    """A running study: a design pool and the allocation state of the study loop.

    ``state`` is the :class:`stimulus_design.StudyState` as JSON; ``revision`` mirrors its
    ``revision`` so that a change is one compare-and-swap
    (``UPDATE ... WHERE id = :id AND revision = :seen``): two protocol requests computed from
    the same state cannot both commit, on SQLite or PostgreSQL.
    """

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    """The site of the curator who created it."""
    state: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(default=0)
    embeddings_sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"))
    """Blob of the pool's embeddings as given at creation, a ``.npy`` file."""
    images_sha256: Mapped[str | None] = mapped_column(ForeignKey("blob.sha256"))
    """Blob of a JSON list, per pool row, of ``{"source": ..., "sha256": ...}`` (images by
    reference: the path or URL a site's stimulus computer uses), if given."""
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    site: Mapped[Site] = relationship()

    @validates("name")
    def _check_name(self, key: str, value: str) -> str:
        return check_name(value, "Study", "conform-vision-1")


class StudyDataset(Base):
    """A dataset that belongs to a study, and how (:data:`STUDY_ROLES`)."""

    __tablename__ = "study_dataset"
    __table_args__ = (CheckConstraint(_one_of("role", STUDY_ROLES), name="role"),)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id"), primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))

    dataset: Mapped[Dataset] = relationship()
    study: Mapped[Study] = relationship()


class ProtocolRequest(Base):
    """A site's protocol request: who asked, what it offered, which participants it got."""

    __tablename__ = "protocol_request"
    __table_args__ = (UniqueConstraint("study_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    number: Mapped[int]
    """The request's number within the study (``StudyParticipant.request``)."""
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("token.id", ondelete="SET NULL"))
    n_participants: Mapped[int]
    session_minutes: Mapped[float] = mapped_column(Float)
    participants: Mapped[list[Any]]
    """The participant labels allocated (``["sub-05", "sub-06"]``)."""
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id"))
    """The protocol dataset whose version 1 is the package (``None`` while being written)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    study: Mapped[Study] = relationship()
    site: Mapped[Site] = relationship()


class Contribution(Base):
    """A published version of a study's dataset, ingested into the study's catalog."""

    __tablename__ = "contribution"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("version.id"), unique=True)
    subjects: Mapped[list[Any]]
    """Who the data are of: participant labels of the study, or ``"SITE/sub-XX"`` for data
    the site directed itself."""
    catalog_version: Mapped[int | None]
    """The catalog version that first includes it (``None`` until it is built)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
