"""S3: buckets, per-version object metadata, access keys.

Buckets are first-class metadata (name unique in the store, owner, creation
time); an object's MD5 ETag, content headers and user metadata are kept per
version of its file; access keys hold their secrets encrypted (see
echofs.auth.access_keys).

Revision ID: 0008
Revises: 0007
Create Date: 2027-03-01 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EPOCH = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "buckets",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("created_at", _EPOCH, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_buckets"),
    )
    op.create_index("ix_buckets_owner", "buckets", ["owner"])
    op.create_table(
        "object_meta",
        sa.Column("file_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("user_meta", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], ondelete="CASCADE",
                                name="fk_object_meta_file_id_files"),
        sa.PrimaryKeyConstraint("file_id", "version", name="pk_object_meta"),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("secret_sealed", sa.String(255), nullable=False),
        sa.Column("created_at", _EPOCH, nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_access_keys"),
    )
    op.create_index("ix_access_keys_user_id", "access_keys", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_access_keys_user_id", table_name="access_keys")
    op.drop_table("access_keys")
    op.drop_table("object_meta")
    op.drop_index("ix_buckets_owner", table_name="buckets")
    op.drop_table("buckets")
