"""S3 access keys in the metadata store: which account a key id belongs
to, and its secret sealed (see :mod:`echofs.auth.access_keys` for how).
Shares its repository's sessions and SQLite writer lock; no memoized answer
reads this table."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select

from echofs.metadata.models import AccessKeyRow, UserRow
from echofs.metadata.repository import MetadataRepository


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    user_id: str
    secret_sealed: str
    created_at: float


def _record(row: AccessKeyRow) -> AccessKeyRecord:
    return AccessKeyRecord(row.access_key_id, row.user_id, row.secret_sealed, row.created_at)


class AccessKeysRepository:
    def __init__(self, repo: MetadataRepository) -> None:
        self._repo = repo

    async def add(self, access_key_id: str, user_id: str, secret_sealed: str) -> AccessKeyRecord:
        row = AccessKeyRow(access_key_id=access_key_id, user_id=user_id,
                           secret_sealed=secret_sealed, created_at=time.time())
        async with self._repo.writing_unmemoized() as session:
            session.add(row)
        return _record(row)

    async def get(self, access_key_id: str) -> AccessKeyRecord | None:
        """A key whose account still exists (a deleted account's keys sign nothing)."""
        async with self._repo.reading() as session:
            row = (await session.execute(
                select(AccessKeyRow).join(UserRow, UserRow.id == AccessKeyRow.user_id)
                .where(AccessKeyRow.access_key_id == access_key_id))).scalar_one_or_none()
        return _record(row) if row else None

    async def of_user(self, user_id: str) -> list[AccessKeyRecord]:
        async with self._repo.reading() as session:
            rows = (await session.execute(
                select(AccessKeyRow).where(AccessKeyRow.user_id == user_id)
                .order_by(AccessKeyRow.created_at))).scalars().all()
        return [_record(r) for r in rows]

    async def delete(self, access_key_id: str, user_id: str) -> bool:
        """Revoke a key of ``user_id``; False if it has no such key."""
        async with self._repo.writing_unmemoized() as session:
            done = await session.execute(delete(AccessKeyRow).where(
                AccessKeyRow.access_key_id == access_key_id, AccessKeyRow.user_id == user_id))
            return bool(done.rowcount)
