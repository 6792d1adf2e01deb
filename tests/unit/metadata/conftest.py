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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from echofs.metadata import database
from echofs.metadata.repository import MetadataRepository
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
