"""Resumable upload sessions: the session, the parts it holds and their chunks.

A part's chunks are referenced by ``upload_part_chunks`` until the session
completes (its version then references them) or expires or is aborted (then
nothing does, and the collector removes them).

Revision ID: 0007
Revises: 0005
Create Date: 2027-03-01 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Epoch = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=True),
        sa.Column("part_size", sa.BigInteger(), nullable=False),
        sa.Column("total_parts", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("file_id", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("blake3", sa.String(64), nullable=True),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("expires_at", Epoch, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upload_sessions"),
        sa.CheckConstraint("mode IN ('strong', 'hybrid', 'available')",
                           name="ck_upload_sessions_mode"),
        sa.CheckConstraint("state IN ('open', 'completed')", name="ck_upload_sessions_state"),
    )
    op.create_index("ix_upload_sessions_owner_state", "upload_sessions", ["owner", "state"])
    op.create_index("ix_upload_sessions_expires", "upload_sessions", ["expires_at"])
    op.create_table(
        "upload_parts",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("blake3", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("replicas_acked", sa.Integer(), nullable=False),
        sa.Column("stored_at", Epoch, nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["upload_sessions.id"], ondelete="CASCADE",
                                name="fk_upload_parts_session_id_upload_sessions"),
        sa.PrimaryKeyConstraint("session_id", "part", name="pk_upload_parts"),
    )
    op.create_table(
        "upload_part_chunks",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"],
                                name="fk_upload_part_chunks_chunk_id_chunks"),
        sa.ForeignKeyConstraint(["session_id", "part"],
                                ["upload_parts.session_id", "upload_parts.part"],
                                ondelete="CASCADE",
                                name="fk_upload_part_chunks_part_upload_parts"),
        sa.PrimaryKeyConstraint("session_id", "part", "seq", name="pk_upload_part_chunks"),
    )
    op.create_index("ix_upload_part_chunks_chunk_id", "upload_part_chunks", ["chunk_id"])


def downgrade() -> None:
    op.drop_index("ix_upload_part_chunks_chunk_id", table_name="upload_part_chunks")
    op.drop_table("upload_part_chunks")
    op.drop_table("upload_parts")
    op.drop_index("ix_upload_sessions_expires", table_name="upload_sessions")
    op.drop_index("ix_upload_sessions_owner_state", table_name="upload_sessions")
    op.drop_table("upload_sessions")
