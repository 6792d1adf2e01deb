"""Plain SQL for the hot writes: one text for SQLite and PostgreSQL.

A small upload makes two write transactions (its chunk claims and its
commit), shared with every upload in flight by group commit. Built through
the ORM they cost milliseconds of CPU each (statement compilation, cache
keys, the unit of work), which under load was most of a small upload's
cost. The statements here are written once, in SQL both databases accept
(``INSERT ... ON CONFLICT DO NOTHING``, ``RETURNING``, row values in ``IN
(VALUES ...)``), with ``?`` placeholders, and run through :class:`Sql`:

- :class:`SqliteSql`, straight on a ``sqlite3`` connection (the writer of
  ``sqlite_writer``);
- :class:`SessionSql`, through a SQLAlchemy session's connection
  (PostgreSQL, where ``?`` becomes psycopg's ``%s``, and an in-memory SQLite
  that has no writer of its own).

The schema itself stays with SQLAlchemy's models and Alembic.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from echofs.core.vocabulary import ChunkState

# Bound parameter lists well under SQLite's and PostgreSQL's limits.
BATCH = 500
_LIVE = ChunkState.LIVE.value

Row = tuple[Any, ...]


class Sql(Protocol):
    postgres: bool

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class SqliteSql:
    postgres = False

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._connection.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.execute(sql, params)

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._connection.executemany(sql, rows)


class SessionSql:
    def __init__(self, session: Session) -> None:
        self._connection = session.connection()
        self.postgres = self._connection.dialect.name == "postgresql"

    def _text(self, sql: str) -> str:
        return _format_style(sql) if self.postgres else sql

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self._connection.exec_driver_sql(self._text(sql), tuple(params))]

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.exec_driver_sql(self._text(sql), tuple(params))

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._connection.exec_driver_sql(self._text(sql), [tuple(r) for r in rows])


@functools.lru_cache(maxsize=256)
def _format_style(sql: str) -> str:
    # Our statements hold no '?' or '%' of their own: placeholders only.
    assert "%" not in sql
    return sql.replace("?", "%s")


def marks(count: int) -> str:
    """``?, ?, ?`` for ``count`` parameters."""
    return ", ".join("?" * count)


def batches(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), BATCH):
        yield items[i : i + BATCH]


def lock_chunks(db: Sql, ids: Iterable[str], *, skip_locked: bool = False) -> list[str]:
    """Lock chunk rows in id order (PostgreSQL; SQLite's writers are
    serialised already) and return the ids locked. One order for every
    transaction means two of them never wait for each other in a cycle.
    ``skip_locked`` leaves out rows another transaction holds."""
    ordered = sorted(set(ids))
    if not db.postgres:
        return ordered
    skip = " SKIP LOCKED" if skip_locked else ""
    locked: list[str] = []
    for batch in batches(ordered):
        locked.extend(r[0] for r in db.rows(
            f"SELECT id FROM chunks WHERE id IN ({marks(len(batch))}) ORDER BY id "
            f"FOR NO KEY UPDATE{skip}", batch))
    return locked


def touch_live(db: Sql, ids: Sequence[str], now: float) -> dict[str, str]:
    """Each of these chunks' state (absent: no row), touching the live ones.
    The rows must be locked already (``lock_chunks``), so states read here
    hold until commit.

    The state is filtered here, not in SQL: with ``state = ?`` beside the id
    list, SQLite's planner picks the (state, touched_at) index and scans
    every live chunk, which made each small upload's cost grow with the
    store."""
    states: dict[str, str] = {}
    for batch in batches(ids):
        states.update(db.rows(
            f"SELECT id, state FROM chunks WHERE id IN ({marks(len(batch))})", batch))
    live = sorted(chunk_id for chunk_id, state in states.items() if state == _LIVE)
    for batch in batches(live):
        db.run(f"UPDATE chunks SET touched_at = ? WHERE id IN ({marks(len(batch))})",
               [now, *batch])
    return states


def replicas_of(db: Sql, ids: Sequence[str]) -> dict[str, list[str]]:
    """Where each of these chunks has copies (workers in id order)."""
    found: dict[str, list[str]] = defaultdict(list)
    for batch in batches(ids):
        for chunk_id, worker_id in db.rows(
                f"SELECT chunk_id, worker_id FROM chunk_replicas WHERE chunk_id IN "
                f"({marks(len(batch))}) ORDER BY chunk_id, worker_id", batch):
            found[chunk_id].append(worker_id)
    return found


def delete_versions(db: Sql, version_ids: Sequence[int]) -> None:
    """Remove these versions, their manifests and S3's metadata of them
    (their chunks stay, for the collector to find unreferenced)."""
    for batch in batches(version_ids):
        numbered = db.rows(f"SELECT file_id, version FROM versions WHERE id IN "
                           f"({marks(len(batch))})", batch)
        # One primary-key lookup each: a join here would scan the table on SQLite.
        db.run_many("DELETE FROM object_meta WHERE file_id = ? AND version = ?", numbered)
        db.run(f"DELETE FROM version_chunks WHERE version_id IN ({marks(len(batch))})", batch)
        db.run(f"DELETE FROM versions WHERE id IN ({marks(len(batch))})", batch)


def queue_copies(db: Sql, chunk_id: str, targets: Sequence[str], reason: str,
                 now: float) -> None:
    """Durable intents to copy ``chunk_id`` to each of ``targets`` (one per
    chunk and target: queuing it again is harmless)."""
    db.run_many("INSERT INTO replication_tasks (chunk_id, target_worker, reason, created_at, "
                "next_attempt_at, attempts) VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
                [(chunk_id, target, str(reason), now, now) for target in targets])
