"""SQLite's hot transactions: statements on the loop, the wait for the disk
in a thread.

Through the async driver every statement is a round trip between the event
loop and the driver's thread, and under load each round trip waits its turn
on a busy loop (and for the GIL: a thread that gave it up for a system call
waits up to the switch interval, 5 ms, to get it back while the loop
computes). A claim or commit transaction then held SQLite's single write
lock for 25-50 ms, and that lock set the speed of small uploads.

Here a transaction's statements (plain SQL, see ``sql``) run on the event
loop on our own ``sqlite3`` connection: on a local file in WAL mode each
takes microseconds and never waits for another writer (the repository's
write lock queues them). Only the one slow step leaves the loop: a durable
commit's fsync runs in this writer's thread, once per transaction. A relaxed
commit (synchronous=NORMAL: no fsync) is a write to the WAL and stays on the
loop. Automatic checkpoints are off on this connection, since one would
fsync on the loop; the thread runs them after durable commits instead.

The hot reads (a file, a version's manifest) run on the loop the same way,
on a second connection, which WAL never makes wait for the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from echofs.metadata.sql import Sql, SqliteSql

_T = TypeVar("_T")

# Checkpoint after this many transactions (a small upload's commit adds a
# few pages to the WAL; SQLite's own default is every 1000 pages).
_CHECKPOINT_EVERY = 256


class SqliteWriter:
    """Runs write transactions on one SQLite file. Not reentrant: the caller
    holds the repository's write lock around :meth:`run`."""

    def __init__(self, path: str) -> None:
        self._since_checkpoint = 0
        # Autocommit mode: transactions are begun and ended by our own
        # statements, so nothing is opened behind our back.
        self._connection = sqlite3.connect(path, timeout=30, isolation_level=None,
                                           check_same_thread=False)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000",
                       "wal_autocheckpoint=0"):
            self._connection.execute(f"PRAGMA {pragma}")
        self._sql = SqliteSql(self._connection)
        # Reads get a connection of their own: in WAL mode it never waits
        # for the writer, even while a commit's fsync holds the other one.
        self._reader = sqlite3.connect(path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
        self._reader.execute("PRAGMA query_only=ON")
        self._read_sql = SqliteSql(self._reader)
        self._synchronous: str | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="echofs-sqlite-commit")

    async def run(self, body: Callable[[Sql], _T], *, relaxed: bool) -> _T:
        """Run ``body`` in one transaction; committed (durably unless
        ``relaxed``) when this returns, rolled back if ``body`` raised."""
        self._set_synchronous("NORMAL" if relaxed else "FULL")
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = body(self._sql)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        self._since_checkpoint += 1
        if relaxed:
            connection.execute("COMMIT")
            return result
        commit = asyncio.get_running_loop().run_in_executor(self._thread, self._commit)
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            # The commit goes on in the thread; the caller's write lock must
            # stay held until it is over.
            await asyncio.wait([commit])
            raise
        return result

    def read(self, body: Callable[[Sql], _T]) -> _T:
        """Run ``body``'s reads on the loop, in one read transaction: one
        snapshot for all its statements, even if a commit lands between them."""
        self._reader.execute("BEGIN")
        try:
            return body(self._read_sql)
        finally:
            self._reader.execute("COMMIT")

    def _set_synchronous(self, level: str) -> None:
        if level != self._synchronous:  # outside any transaction, as SQLite wants
            self._connection.execute(f"PRAGMA synchronous={level}")
            self._synchronous = level

    def _commit(self) -> None:
        try:
            self._connection.execute("COMMIT")
        except BaseException:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            raise
        if self._since_checkpoint >= _CHECKPOINT_EVERY:
            self._since_checkpoint = 0
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._connection.close()
        self._reader.close()
