"""The study loop: studies, their datasets, protocol requests and ingested contributions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Only new tables (no existing table changes), so SQLite needs no table rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("contribution", "protocol_request", "study_dataset", "study")
"""The new tables, children before parents (the order to drop them)."""


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(column: str, target: str, table: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    parent = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{parent}"))


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("embeddings_sha256", sa.String(64), nullable=False),
        sa.Column("images_sha256", sa.String(64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _fk("site_id", "site.id", "study"),
        _fk("embeddings_sha256", "blob.sha256", "study"),
        _fk("images_sha256", "blob.sha256", "study"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study")),
        sa.UniqueConstraint("name", name=op.f("uq_study_name")),
    )
    op.create_table(
        "study_dataset",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.CheckConstraint("role IN ('contribution', 'protocol', 'catalog')",
                           name=op.f("ck_study_dataset_role")),
        _fk("dataset_id", "dataset.id", "study_dataset"),
        _fk("study_id", "study.id", "study_dataset"),
        sa.PrimaryKeyConstraint("dataset_id", name=op.f("pk_study_dataset")),
    )
    op.create_index(op.f("ix_study_dataset_study_id"), "study_dataset", ["study_id"])
    op.create_table(
        "protocol_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("n_participants", sa.Integer(), nullable=False),
        sa.Column("session_minutes", sa.Float(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        _time("created_at"),
        _fk("study_id", "study.id", "protocol_request"),
        _fk("site_id", "site.id", "protocol_request"),
        _fk("token_id", "token.id", "protocol_request", ondelete="SET NULL"),
        _fk("dataset_id", "dataset.id", "protocol_request"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protocol_request")),
        sa.UniqueConstraint("study_id", "number", name=op.f("uq_protocol_request_study_id_number")),
    )
    op.create_index(op.f("ix_protocol_request_study_id"), "protocol_request", ["study_id"])
    op.create_table(
        "contribution",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("subjects", sa.JSON(), nullable=False),
        sa.Column("catalog_version", sa.Integer(), nullable=True),
        _time("created_at"),
        _fk("study_id", "study.id", "contribution"),
        _fk("version_id", "version.id", "contribution"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contribution")),
        sa.UniqueConstraint("version_id", name=op.f("uq_contribution_version_id")),
    )
    op.create_index(op.f("ix_contribution_study_id"), "contribution", ["study_id"])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_table(table)
