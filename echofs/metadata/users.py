"""Accounts in the metadata store. Shares its repository's sessions and
SQLite writer lock (its public ``reading`` and ``writing_unmemoized``); no
memoized answer reads accounts, so a change to one leaves the read memo alone.

A store keeps at least one admin: the changes that would remove the last one
(deleting or demoting it) are refused inside the same transaction that counts
the admins, with their rows locked, so two concurrent demotions cannot both
pass the check.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from echofs.core.errors import Conflict
from echofs.metadata.models import UserRow
from echofs.metadata.repository import MetadataRepository

ROLES = ("user", "admin")


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    username: str
    password_hash: str
    role: str
    created_at: float
    # Tokens issued in another generation are revoked (see ``revoke_tokens``).
    token_generation: int = 0
    # Lowercased; None for an account made without one.
    email: str | None = None


def _record(row: UserRow) -> UserRecord:
    return UserRecord(row.id, row.username, row.password_hash, row.role, row.created_at,
                      row.token_generation or 0, row.email)


async def _refuse_removing_last_admin(session: AsyncSession, row: UserRow) -> None:
    if row.role != "admin":
        return
    # FOR UPDATE: a concurrent demotion of another admin waits for this
    # transaction and then counts again (PostgreSQL); SQLite writes are serial.
    admins = (await session.execute(
        select(UserRow.id).where(UserRow.role == "admin").with_for_update())).scalars().all()
    if len(admins) <= 1:
        raise Conflict(f"{row.username!r} is the last admin; make another admin first",
                       code="last_admin")


class UsersRepository:
    def __init__(self, repo: MetadataRepository) -> None:
        self._repo = repo

    async def create(self, username: str, password_hash: str,
                     role: str | None = None, email: str | None = None) -> UserRecord:
        """Create an account. Without an explicit role, the first account of
        the store becomes ``admin`` and every later one ``user``. ``email``
        (optional) is stored lowercased; another account's address is a 409."""
        email = email.lower() if email else None
        row = UserRow(id=uuid.uuid4().hex, username=username, password_hash=password_hash,
                      role=role or "user", created_at=time.time(), token_generation=0,
                      email=email)
        try:
            async with self._repo.writing_unmemoized() as session:
                if role is None:
                    count = (await session.execute(select(func.count(UserRow.id)))).scalar_one()
                    row.role = "admin" if count == 0 else "user"
                session.add(row)
        except IntegrityError:
            # Which unique column refused it: the database's message differs
            # between drivers, so ask (the username is the older rule).
            if await self.by_username(username) is None and email is not None \
                    and await self.by_email(email) is not None:
                raise Conflict(f"email {email!r} is already registered",
                               code="email_taken") from None
            raise Conflict(f"username {username!r} is taken", code="username_taken") from None
        return _record(row)

    async def by_email(self, email: str) -> UserRecord | None:
        async with self._repo.reading() as session:
            row = (await session.execute(
                select(UserRow).where(UserRow.email == email.lower()))).scalar_one_or_none()
        return _record(row) if row else None

    async def by_username(self, username: str) -> UserRecord | None:
        async with self._repo.reading() as session:
            row = (await session.execute(
                select(UserRow).where(UserRow.username == username))).scalar_one_or_none()
        return _record(row) if row else None

    async def by_id(self, user_id: str) -> UserRecord | None:
        async with self._repo.reading() as session:
            row = await session.get(UserRow, user_id)
        return _record(row) if row else None

    async def set_role(self, user_id: str, role: str) -> UserRecord | None:
        """Give an account ``role``; None if there is no such account."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        async with self._repo.writing_unmemoized() as session:
            row = await session.get(UserRow, user_id)
            if row is None:
                return None
            if role != "admin":
                await _refuse_removing_last_admin(session, row)
            row.role = role
            return _record(row)

    async def delete(self, user_id: str) -> bool:
        """Remove an account (its files stay, still owned by its id); False
        if there was none."""
        async with self._repo.writing_unmemoized() as session:
            row = await session.get(UserRow, user_id)
            if row is None:
                return False
            await _refuse_removing_last_admin(session, row)
            await session.delete(row)
            return True

    async def revoke_tokens(self, user_id: str) -> bool:
        """Revoke every token issued so far to an account (its next login
        gets a token of the new generation); False if there is no account."""
        async with self._repo.writing_unmemoized() as session:
            done = await session.execute(
                update(UserRow).where(UserRow.id == user_id)
                .values(token_generation=UserRow.token_generation + 1))
            return bool(done.rowcount)
