"""Accounts: a token generation per user, so logout can revoke tokens.

A token carries the generation it was issued in and is accepted only while
the account's generation is the same; logout adds one. Existing accounts
start at 0, which is also what a token issued before this revision counts as.

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("token_generation", sa.Integer(), nullable=False,
                                     server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_generation")
