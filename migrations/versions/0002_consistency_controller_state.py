"""Consistency controller state: modes, hints, critical keys, override, audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 04:34:38.520277
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consistency_hints",
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("object_id", name=op.f("pk_consistency_hints")),
    )
    op.create_table(
        "consistency_modes",
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=True),
        sa.Column("changed_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("object_id", name=op.f("pk_consistency_modes")),
    )
    op.create_table(
        "controller_settings",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_controller_settings")),
    )
    op.create_table(
        "critical_keys",
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("object_id", name=op.f("pk_critical_keys")),
    )
    op.create_table(
        "mode_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(precision=53), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("from_mode", sa.String(length=16), nullable=False),
        sa.Column("to_mode", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=True),
        sa.Column("signals", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_transitions")),
    )
    with op.batch_alter_table("mode_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_mode_transitions_at", ["at"], unique=False)
        batch_op.create_index("ix_mode_transitions_object", ["object_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mode_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_mode_transitions_object")
        batch_op.drop_index("ix_mode_transitions_at")

    op.drop_table("mode_transitions")
    op.drop_table("critical_keys")
    op.drop_table("controller_settings")
    op.drop_table("consistency_modes")
    op.drop_table("consistency_hints")
