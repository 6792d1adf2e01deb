"""Fixtures shared by every layer of the suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from echofs.node import EmbeddedNode
from echofs.observability.logging import configure_logging
from echofs.testing import services
from echofs.testing.node import running_node

# Route structlog through the standard library as `echofs serve` does, so
# pytest's log capture sees every server event.
configure_logging("info")


@pytest.fixture
async def node(tmp_path) -> AsyncIterator[EmbeddedNode]:
    async with running_node(tmp_path / "data") as n:
        yield n


@pytest.fixture
async def http(node: EmbeddedNode) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=node.url) as session:
        yield session


# -- real servers behind the production backends (echofs/testing/services.py) --------
# A missing server fails the tests that need it (ServiceMissing); none is skipped.


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of the PostgreSQL server throwaway databases are made on."""
    return services.require_postgres()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty (unmigrated) PostgreSQL database, dropped after the test."""
    with services.throwaway_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis server (tests keep apart by key prefix)."""
    return services.require_redis()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[services.MotoServer]:
    """One S3 endpoint (moto) for the session; each test takes its own bucket."""
    with services.MotoServer() as server:
        yield server


@pytest.fixture
def s3_bucket(moto_server: services.MotoServer) -> str:
    return moto_server.create_bucket()
