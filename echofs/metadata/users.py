"""Accounts in the metadata store. Shares its repository's sessions and
SQLite writer lock (its public ``reading`` and ``writing_unmemoized``); no
memoized answer reads accounts, so a new one leaves the read memo alone."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from echofs.core.errors import Conflict
from echofs.metadata.models import UserRow
from echofs.metadata.repository import MetadataRepository


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    username: str
    password_hash: str
    role: str
    created_at: float


def _record(row: UserRow) -> UserRecord:
    return UserRecord(row.id, row.username, row.password_hash, row.role, row.created_at)


class UsersRepository:
    def __init__(self, repo: MetadataRepository) -> None:
        self._repo = repo

    async def create(self, username: str, password_hash: str,
                     role: str | None = None) -> UserRecord:
        """Create an account. Without an explicit role, the first account of
        the store becomes ``admin`` and every later one ``user``."""
        row = UserRow(id=uuid.uuid4().hex, username=username, password_hash=password_hash,
                      role=role or "user", created_at=time.time())
        try:
            async with self._repo.writing_unmemoized() as session:
                if role is None:
                    count = (await session.execute(select(func.count(UserRow.id)))).scalar_one()
                    row.role = "admin" if count == 0 else "user"
                session.add(row)
        except IntegrityError:
            raise Conflict(f"username {username!r} is taken", code="username_taken") from None
        return _record(row)

    async def by_username(self, username: str) -> UserRecord | None:
        async with self._repo.reading() as session:
            row = (await session.execute(
                select(UserRow).where(UserRow.username == username))).scalar_one_or_none()
        return _record(row) if row else None

    async def by_id(self, user_id: str) -> UserRecord | None:
        async with self._repo.reading() as session:
            row = await session.get(UserRow, user_id)
        return _record(row) if row else None
