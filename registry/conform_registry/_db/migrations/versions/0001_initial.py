"""Initial schema: sites, tokens, datasets, versions, blobs, assets, uploads, jobs, audit.

Revision ID: 0001
Revises:
Create Date: 2026-12-03

A migration is a frozen snapshot: it spells its tables out instead of importing the
models, so later model changes cannot change what it creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("upload_chunk", "job", "asset", "version", "upload", "audit", "token", "dataset",
           "site", "blob")
"""Every table, children before parents (the order to drop them)."""


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _sha(name: str = "sha256", *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(64), nullable=nullable)


def _fk(column: str, target: str, table: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    parent = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{parent}"))


def upgrade() -> None:
    op.create_table(
        "blob",
        _sha(),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _time("created_at"),
        _time("verified_at", nullable=True),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blob")),
    )
    op.create_table(
        "site",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
        sa.UniqueConstraint("name", name=op.f("uq_site_name")),
    )
    op.create_table(
        "dataset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("protocol", sa.String(152), nullable=True),
        _time("created_at"),
        sa.CheckConstraint("kind IS NULL OR kind IN ('mosaic', 'protocol', 'bids', 'other')",
                           name=op.f("ck_dataset_kind")),
        _fk("site_id", "site.id", "dataset"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset")),
        sa.UniqueConstraint("name", name=op.f("uq_dataset_name")),
    )
    op.create_index(op.f("ix_dataset_site_id"), "dataset", ["site_id"])
    op.create_table(
        "token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.CheckConstraint("role IN ('contributor', 'curator')", name=op.f("ck_token_role")),
        _fk("site_id", "site.id", "token"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_token_token_hash")),
    )
    op.create_index(op.f("ix_token_site_id"), "token", ["site_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        _time("at"),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(1024), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        _fk("site_id", "site.id", "audit", ondelete="SET NULL"),
        _fk("token_id", "token.id", "audit", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_at"), "audit", ["at"])
    op.create_table(
        "upload",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _sha(),
        sa.Column("chunk_bytes", sa.BigInteger(), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("unpack", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("created_at"),
        _time("completed_at", nullable=True),
        sa.CheckConstraint("state IN ('open', 'complete', 'aborted')", name=op.f("ck_upload_state")),
        _fk("dataset_id", "dataset.id", "upload"),
        _fk("site_id", "site.id", "upload"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload")),
    )
    op.create_index(op.f("ix_upload_dataset_id"), "upload", ["dataset_id"])
    op.create_table(
        "version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=True),
        _sha("manifest_sha256", nullable=True),
        _time("created_at"),
        _time("published_at", nullable=True),
        sa.Column("published_by", sa.Integer(), nullable=True),
        _time("changed_at", nullable=True),
        sa.CheckConstraint("(state = 'draft' AND number IS NULL) OR "
                           "(state = 'published' AND number IS NOT NULL AND number >= 1)",
                           name=op.f("ck_version_state_number")),
        _fk("dataset_id", "dataset.id", "version"),
        _fk("published_by", "token.id", "version"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version")),
        sa.UniqueConstraint("dataset_id", "number", name=op.f("uq_version_dataset_id_number")),
    )
    # At most one draft per dataset (NULL numbers are distinct for the unique constraint).
    op.create_index("ix_version_one_draft", "version", ["dataset_id"], unique=True,
                    sqlite_where=sa.text("number IS NULL"),
                    postgresql_where=sa.text("number IS NULL"))
    op.create_table(
        "asset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        _sha("blob_sha256"),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _fk("blob_sha256", "blob.sha256", "asset"),
        _fk("version_id", "version.id", "asset", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset")),
        sa.UniqueConstraint("version_id", "path", name=op.f("uq_asset_version_id_path")),
    )
    op.create_index(op.f("ix_asset_blob_sha256"), "asset", ["blob_sha256"])
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        _time("created_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        _sha("content_sha256", nullable=True),
        _time("draft_changed_at", nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'passed', 'failed')",
                           name=op.f("ck_job_state")),
        _fk("version_id", "version.id", "job", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index(op.f("ix_job_state"), "job", ["state"])
    op.create_index(op.f("ix_job_version_id"), "job", ["version_id"])
    op.create_table(
        "upload_chunk",
        sa.Column("upload_id", sa.String(32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        _sha(),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _fk("upload_id", "upload.id", "upload_chunk", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_id", "index", name=op.f("pk_upload_chunk")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints.
    for table in _TABLES:
        op.drop_table(table)
