"""The database refuses words outside the vocabulary: a version's mode, a
chunk's state, and the controller's modes.

The allowed values are written out here, not taken from the enums: a
migration describes the schema as it was at this revision, whatever the code
says later.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-18 09:12:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MODES = "('strong', 'hybrid', 'available')"
_CHUNK_STATES = "('live', 'deleting')"

# (table, constraint, condition); on SQLite each table is rebuilt (batch mode).
_CHECKS = [
    ("versions", "ck_versions_mode", f"mode IN {_MODES}"),
    ("chunks", "ck_chunks_state", f"state IN {_CHUNK_STATES}"),
    ("consistency_modes", "ck_consistency_modes_mode", f"mode IN {_MODES}"),
    ("mode_transitions", "ck_mode_transitions_from_mode", f"from_mode IN {_MODES}"),
    ("mode_transitions", "ck_mode_transitions_to_mode", f"to_mode IN {_MODES}"),
]


def upgrade() -> None:
    for table in dict.fromkeys(table for table, _, _ in _CHECKS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _, name, condition in (c for c in _CHECKS if c[0] == table):
                batch_op.create_check_constraint(name, condition)


def downgrade() -> None:
    for table in dict.fromkeys(table for table, _, _ in reversed(_CHECKS)):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for _, name, _ in (c for c in _CHECKS if c[0] == table):
                batch_op.drop_constraint(name, type_="check")
