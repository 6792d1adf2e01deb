"""Fixtures for the metadata layer: a repository on a freshly migrated database.

The schema is created only through the Alembic migrations, never through
``Base.metadata.create_all``, so these tests exercise the schema operators get.

Every test that uses ``repo`` runs once per entry of ``BACKENDS``. To add a
backend (PostgreSQL), add its name to ``BACKENDS`` and a URL factory to
``_URL_FACTORIES`` that yields the URL of an empty database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from echofs.metadata import database
from echofs.metadata.repository import MetadataRepository

BACKENDS = ["sqlite"]


@contextmanager
def _sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'metadata.db'}"


_URL_FACTORIES: dict[str, Callable[[Path], AbstractContextManager[str]]] = {
    "sqlite": _sqlite_url,
}


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the parametrized backend."""
    with _URL_FACTORIES[request.param](tmp_path) as url:
        yield url


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[MetadataRepository]:
    # upgrade() is blocking (Alembic is synchronous); keep it off the loop.
    await asyncio.to_thread(database.upgrade, database_url)
    repository = MetadataRepository(database.create_engine(database_url))
    try:
        yield repository
    finally:
        await repository.close()
