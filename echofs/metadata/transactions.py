"""The base every part of the repository stands on: one database, its
sessions, the SQLite writer lock, the read memo, and what every write
transaction states about the memo answers it may change.

The concurrency rules these serve are in the package docstring
(``echofs.metadata``).
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from echofs.metadata.memoized import Tag
from echofs.metadata.read_memo import ReadMemo
from echofs.metadata.sql import SessionSql, Sql, lock_chunks, replicas_of
from echofs.metadata.sqlite_writer import SqliteWriter

# What a write that changes no memoized answer declares: timestamps, queue
# bookkeeping, unreferenced chunks, and the tables the memo never answers
# from (accounts, controller state).
NOTHING_READ_VISIBLE: tuple[Tag, ...] = ()

_P = ParamSpec("_P")
_T = TypeVar("_T")


# PostgreSQL's deadlock_detected and serialization_failure: the transaction
# was rolled back and may simply be run again.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 5


def retried(method: Callable[_P, Awaitable[_T]]) -> Callable[_P, Awaitable[_T]]:
    """Run a one-transaction write method again if PostgreSQL aborted it as a
    deadlock victim or a serialization failure."""

    @functools.wraps(method)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await method(*args, **kwargs)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate not in _RETRYABLE_SQLSTATES or attempt == ATTEMPTS:
                    raise
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
        raise AssertionError("unreachable")

    return run


class Transactions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self._dialect == "sqlite" else None
        # The hot statements' own connection (SQLite on a file; see
        # sqlite_writer), which also serves the relaxed commits there.
        self._writer: SqliteWriter | None = None
        if self._dialect == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self._writer = SqliteWriter(engine.url.database)
        # Set by the master that owns the store alone (see read_memo).
        self.memo: ReadMemo | None = None

    def keep_read_answers(self) -> None:
        """Only for the store's sole writer: remember read answers until the
        next write that may change them."""
        self.memo = ReadMemo()

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        await self.engine.dispose()

    # -- for the tables the memo never answers from ---------------------------------

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (accounts, controller state)."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def writing_unmemoized(self) -> AsyncIterator[AsyncSession]:
        """One write transaction, in this store's writer queue, on tables no
        memoized answer is read from (accounts, controller state): it leaves
        the read memo as it is."""
        async with self._write(invalidates=NOTHING_READ_VISIBLE) as session:
            yield session

    # -- the repository's own ----------------------------------------------------------

    @asynccontextmanager
    async def _write(self, *, invalidates: Sequence[Tag],
                     relaxed: bool = False) -> AsyncIterator[AsyncSession]:
        """One write transaction that changes the memoized answers filed
        under ``invalidates`` (see memoized), and no other. A write that
        learns what it changes as it goes passes a list and fills it.

        The tags are invalidated after the transaction, committed or not:
        a rolled-back write changed nothing (a partial list is enough), and a
        commit that failed in doubt had filled its list before committing.
        So no write needs to forget the whole memo.

        ``relaxed``: the commit returns without waiting for the disk
        (PostgreSQL synchronous_commit off; on a SQLite file the relaxed
        writes go through ``_transact``, synchronous=NORMAL). Only for writes
        nothing is acknowledged on: chunk claims and touches. The
        log is sequential in both databases, so the durable commit of the
        version that relies on a claim makes the claim durable too; a claim
        lost in a crash before that only leaves copies of an unacknowledged
        upload without a row, which the orphan sweeper removes. Skipping the
        wait matters: on a disk busy with chunk writes, a synchronous commit
        waits for all of them (ext4 orders its journal), tens of ms.
        """
        sessions = self._sessions
        try:
            if self._write_lock is None:
                async with sessions() as session, session.begin():
                    if relaxed:
                        await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                    yield session
            else:
                async with self._write_lock, sessions() as session, session.begin():
                    yield session
        finally:
            # After the commit (or the rollback): answers memoized from here
            # on were read after this write.
            if self.memo is not None and invalidates:
                self.memo.invalidate(invalidates)

    async def _transact(self, body: Callable[[Sql], _T], *, invalidates: Sequence[Tag],
                        relaxed: bool = False) -> _T:
        """Run ``body`` as one write transaction, like ``_write`` (same
        ``invalidates`` and ``relaxed``), for the hot writes: ``body`` is
        synchronous plain SQL (see ``sql``). On a SQLite file it runs on our
        own connection (see ``sqlite_writer``); otherwise through the
        session's connection, with ``run_sync``."""
        if self._writer is None:
            async with self._write(invalidates=invalidates, relaxed=relaxed) as session:
                return await session.run_sync(lambda sync: body(SessionSql(sync)))
        try:
            assert self._write_lock is not None
            async with self._write_lock:
                return await self._writer.run(body, relaxed=relaxed)
        finally:
            if self.memo is not None and invalidates:
                self.memo.invalidate(invalidates)

    async def _read_sql(self, body: Callable[[Sql], _T]) -> _T:
        """Run ``body`` (synchronous plain SQL, see ``sql``) as one read: on a
        SQLite file on the loop, through the writer's read connection;
        otherwise through a session, with ``run_sync``."""
        if self._writer is not None:
            return self._writer.read(body)
        async with self._read() as session:
            return await session.run_sync(lambda sync: body(SessionSql(sync)))

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(table)

    async def _lock_chunks(self, session: AsyncSession, ids: Iterable[str], *,
                           skip_locked: bool = False) -> list[str]:
        """See ``sql.lock_chunks``."""
        if self._dialect != "postgresql":
            return sorted(set(ids))
        return await session.run_sync(
            lambda sync: lock_chunks(SessionSql(sync), ids, skip_locked=skip_locked))

    async def _replicas_of(self, session: AsyncSession,
                           ids: Sequence[str]) -> dict[str, list[str]]:
        return await session.run_sync(lambda sync: replicas_of(SessionSql(sync), ids))
