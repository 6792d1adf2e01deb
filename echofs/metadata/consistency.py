"""Persistence of the consistency controller: modes, hints, critical keys, the
global override and the audit log of transitions.

It shares its :class:`MetadataRepository`'s sessions (and, on SQLite, its
writer lock) through the repository's public ``reading`` and
``writing_unmemoized``, so a node running master and controller in one
process has one writer queue for one database file; none of these tables is
read by a memoized answer, so a transition, hint or lever leaves the read
memo alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from echofs.core.consistency import Mode
from echofs.metadata.models import (
    ConsistencyHintRow,
    ConsistencyModeRow,
    ControllerSettingRow,
    CriticalKeyRow,
    ModeTransitionRow,
)
from echofs.metadata.repository import MetadataRepository

_OVERRIDE = "override"


@dataclass(frozen=True, slots=True)
class StoredMode:
    object_id: str
    mode: Mode
    reason: str
    score: float | None
    changed_at: float


@dataclass(frozen=True, slots=True)
class Transition:
    id: int
    at: float
    object_id: str
    from_mode: Mode
    to_mode: Mode
    reason: str
    score: float | None
    signals: dict[str, Any]

    def __post_init__(self) -> None:
        # The boundary: callers may name modes by their strings.
        object.__setattr__(self, "from_mode", Mode(self.from_mode))
        object.__setattr__(self, "to_mode", Mode(self.to_mode))


_MAX_ID = 2**31 - 1


class ConsistencyRepository:
    def __init__(self, repo: MetadataRepository) -> None:
        self._repo = repo

    async def modes(self) -> list[StoredMode]:
        async with self._repo.reading() as session:
            rows = (await session.execute(select(ConsistencyModeRow))).scalars().all()
        return [StoredMode(r.object_id, Mode(r.mode), r.reason, r.score, r.changed_at)
                for r in rows]

    async def record_transitions(self, changes: list[Transition]) -> None:
        """Persist new modes and their audit entries in one transaction."""
        if not changes:
            return
        async with self._repo.writing_unmemoized() as session:
            for change in changes:
                await session.merge(ConsistencyModeRow(
                    object_id=change.object_id, mode=change.to_mode, reason=change.reason,
                    score=change.score, changed_at=change.at))
                session.add(ModeTransitionRow(
                    at=change.at, object_id=change.object_id, from_mode=change.from_mode,
                    to_mode=change.to_mode, reason=change.reason, score=change.score,
                    signals=json.dumps(change.signals, sort_keys=True)))

    async def transitions(self, *, object_id: str | None = None, limit: int = 100,
                          before_id: int | None = None) -> list[Transition]:
        query = select(ModeTransitionRow).order_by(ModeTransitionRow.id.desc()).limit(limit)
        if object_id is not None:
            query = query.where(ModeTransitionRow.object_id == object_id)
        if before_id is not None:
            if before_id <= 1:
                return []  # ids start at 1
            # The id column is 32-bit on PostgreSQL (SERIAL): no row lies
            # beyond it, and comparing with a larger value is an error there.
            query = query.where(ModeTransitionRow.id <= min(before_id - 1, _MAX_ID))
        async with self._repo.reading() as session:
            rows = (await session.execute(query)).scalars().all()
        return [Transition(r.id, r.at, r.object_id, r.from_mode, r.to_mode, r.reason, r.score,
                           json.loads(r.signals)) for r in rows]

    async def hints(self) -> dict[str, str]:
        async with self._repo.reading() as session:
            rows = (await session.execute(select(ConsistencyHintRow))).scalars().all()
        return {r.object_id: r.hint for r in rows}

    async def set_hint(self, object_id: str, hint: str) -> None:
        async with self._repo.writing_unmemoized() as session:
            if hint == "auto":
                await session.execute(delete(ConsistencyHintRow).where(
                    ConsistencyHintRow.object_id == object_id))
            else:
                await session.merge(ConsistencyHintRow(object_id=object_id, hint=hint,
                                                       updated_at=time.time()))

    async def critical_keys(self) -> set[str]:
        async with self._repo.reading() as session:
            return set((await session.execute(select(CriticalKeyRow.object_id))).scalars())

    async def add_critical_keys(self, keys: list[str]) -> None:
        async with self._repo.writing_unmemoized() as session:
            for key in keys:
                await session.merge(CriticalKeyRow(object_id=key, added_at=time.time()))

    async def remove_critical_keys(self, keys: list[str]) -> None:
        async with self._repo.writing_unmemoized() as session:
            await session.execute(delete(CriticalKeyRow).where(CriticalKeyRow.object_id.in_(keys)))

    async def override(self) -> str | None:
        async with self._repo.reading() as session:
            row = await session.get(ControllerSettingRow, _OVERRIDE)
        return row.value if row else None

    async def set_override(self, mode: str | None) -> None:
        async with self._repo.writing_unmemoized() as session:
            if mode is None:
                await session.execute(delete(ControllerSettingRow).where(
                    ControllerSettingRow.key == _OVERRIDE))
            else:
                await session.merge(ControllerSettingRow(key=_OVERRIDE, value=mode,
                                                         updated_at=time.time()))


def signals_summary(values: Mapping[str, Any]) -> dict[str, Any]:
    """Round floats so the audit log stays readable."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}
