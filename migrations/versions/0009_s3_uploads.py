"""S3 multipart uploads: what S3 says about an upload session.

An S3 multipart upload is an upload session (``upload_sessions``) plus what
S3 gives at CreateMultipartUpload and wants on the object at the end: the
bucket and key (listed by ListMultipartUploads), the content headers and
``x-amz-meta-*``. The row goes with its session (ON DELETE CASCADE): an
aborted or expired upload leaves nothing behind here.

Revision ID: 0009
Revises: 0008
Create Date: 2027-03-08 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "s3_uploads",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("user_meta", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["upload_sessions.id"], ondelete="CASCADE",
                                name="fk_s3_uploads_session_id_upload_sessions"),
        sa.PrimaryKeyConstraint("session_id", name="pk_s3_uploads"),
    )
    op.create_index("ix_s3_uploads_bucket_key", "s3_uploads", ["bucket", "key"])


def downgrade() -> None:
    op.drop_index("ix_s3_uploads_bucket_key", table_name="s3_uploads")
    op.drop_table("s3_uploads")
