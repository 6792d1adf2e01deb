"""Fixtures for the metadata layer: a repository on a freshly migrated database.

The schema is created only through the Alembic migrations, never through
``Base.metadata.create_all``, so these tests exercise the schema operators get.

Every test that uses ``repo`` runs once per engine: SQLite (a new file per
test), PostgreSQL (the real server of ``ECHOFS_TEST_POSTGRES_URL``: one
throwaway database per session, migrated once, its tables emptied before
each test) and DynamoDB (moto in server mode on loopback, one process per
session, a fresh set of tables per test). If a server does not answer, its
half fails; it is never skipped.

A module runs on the engines its ``METADATA_BACKENDS`` lists (default:
``BACKENDS``); a test that inspects SQL rows itself asks for
``SQL_BACKENDS``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import blake3 as blake3_lib
import pytest

from echofs.core.consistency import Mode
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.metadata import backends, database
from echofs.metadata.repository import CommitRequest, MetadataRepository
from echofs.testing import services

SQL_BACKENDS = ["sqlite", "postgresql"]
ALL_BACKENDS = [*SQL_BACKENDS, "dynamodb"]
BACKENDS = SQL_BACKENDS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        engines = getattr(metafunc.module, "METADATA_BACKENDS", BACKENDS)
        metafunc.parametrize("database_url", engines, indirect=True)


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: str) -> Iterator[str]:
    with services.throwaway_database(postgres_server) as url:
        database.upgrade(url)
        yield url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database of the parametrized backend holding no rows
    (SQLite: not even a schema yet; PostgreSQL: migrated, tables empty;
    DynamoDB: tables of a prefix of its own, not created yet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    if request.param == "dynamodb":
        return dynamodb_url(request.getfixturevalue("dynamodb_server"))
    url: str = request.getfixturevalue("migrated_postgres")
    services.empty_tables(url)
    return url


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[services.MotoServer]:
    """moto's DynamoDB (the same server as its S3) for the session."""
    with services.MotoServer() as server:
        yield server


def dynamodb_url(server: services.MotoServer) -> str:
    return (f"dynamodb://?endpoint={server.endpoint_url}&region=us-east-1"
            f"&prefix=t{uuid.uuid4().hex[:12]}-")


@pytest.fixture
def fresh_dynamodb_url(dynamodb_server: services.MotoServer) -> str:
    """A DynamoDB URL whose tables do not exist yet."""
    return dynamodb_url(dynamodb_server)


@pytest.fixture(autouse=True)
def _aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto accepts any credentials; botocore needs some to sign with.
    for name, value in services.S3_TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[MetadataRepository]:
    # The embedded rule (create or migrate on the spot); PostgreSQL at head
    # already only checks.
    await backends.prepare(database_url, migrate=True)
    repository = backends.open_metadata(database_url)
    try:
        yield repository  # type: ignore[misc]  # either engine: one contract
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
