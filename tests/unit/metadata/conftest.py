"""Fixtures for the metadata layer: a repository on a freshly migrated database.

The schema is created only through the Alembic migrations, never through
``Base.metadata.create_all``, so these tests exercise the schema operators get.

Every test that uses ``repo`` runs once per entry of ``BACKENDS``: SQLite (a
new file per test) and PostgreSQL (the real server of
``ECHOFS_TEST_POSTGRES_URL``: one throwaway database per session, migrated
once, its tables emptied before each test). If PostgreSQL does not answer,
the PostgreSQL half fails; it is never skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import blake3 as blake3_lib
import pytest

from echofs.core.consistency import Mode
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.metadata import database
from echofs.metadata.repository import CommitRequest, MetadataRepository
from echofs.testing import services

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: str) -> Iterator[str]:
    with services.throwaway_database(postgres_server) as url:
        database.upgrade(url)
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database of the parametrized backend holding no rows
    (SQLite: not even a schema yet; PostgreSQL: migrated, tables empty)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    url: str = request.getfixturevalue("migrated_postgres")
    services.empty_tables(url)
    return url


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[MetadataRepository]:
    # upgrade() is blocking (Alembic is synchronous); keep it off the loop.
    # At head already (PostgreSQL) it only checks.
    await asyncio.to_thread(database.upgrade, database_url)
    repository = MetadataRepository(database.create_engine(database_url))
    try:
        yield repository
    finally:
        await repository.close()


# -- helpers the contract suites share (imported as ``from .conftest import``) ----

FAR_FUTURE_OFFSET = 3600.0


def cid(name: str) -> str:
    """A made-up, well-formed chunk id."""
    return blake3_lib.blake3(name.encode()).hexdigest()


def chunk(
    name: str,
    size: int = 100,
    *,
    stored_size: int | None = None,
    compressed: bool = False,
    replicas: Sequence[str] = ("w1",),
) -> NewChunk:
    return NewChunk(
        chunk_id=cid(name),
        size=size,
        stored_size=size if stored_size is None else stored_size,
        compressed=compressed,
        replicas=tuple(replicas),
    )


def request(owner: str, path: str, chunks: Sequence[NewChunk], *,
            mode: Mode = Mode.STRONG, versions_kept: int = 10) -> CommitRequest:
    digest = blake3_lib.blake3("".join(c.chunk_id for c in chunks).encode()).hexdigest()
    return CommitRequest(owner=owner, path=path, chunks=tuple(chunks),
                         size=sum(c.size for c in chunks), blake3=digest, mode=mode,
                         replicas_acked=max((len(c.replicas) for c in chunks), default=0),
                         versions_kept=versions_kept)


async def upload(
    repo: MetadataRepository,
    owner: str = "alice",
    path: str = "file.txt",
    chunks: Sequence[NewChunk] | None = None,
    *,
    versions_kept: int = 10,
    mode: Mode = Mode.STRONG,
    claim: bool = True,
) -> tuple[FileRecord, VersionRecord]:
    """What an upload does: claim its chunks, then commit the version."""
    if chunks is None:
        chunks = [chunk(f"{owner}/{path}/{time.monotonic_ns()}")]
    if claim:
        await repo.claim_chunks(chunks)
    [outcome] = await repo.commit_versions(
        [request(owner, path, chunks, mode=mode, versions_kept=versions_kept)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def scalar(repo: MetadataRepository, statement):  # type: ignore[no-untyped-def]
    async with repo.engine.connect() as conn:
        return (await conn.execute(statement)).scalar_one_or_none()


def future() -> float:
    return time.time() + FAR_FUTURE_OFFSET
