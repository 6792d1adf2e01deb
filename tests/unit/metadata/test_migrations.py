"""The Alembic migrations: they build the schema the models describe, and undo
it, on SQLite and on PostgreSQL (a throwaway database on the real server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from echofs.metadata import database
from echofs.metadata.models import Base
from echofs.testing import services

TABLES = {
    "files",
    "versions",
    "chunks",
    "version_chunks",
    "chunk_replicas",
    "replication_tasks",
    "consistency_modes",
    "consistency_hints",
    "critical_keys",
    "controller_settings",
    "mode_transitions",
    "users",
    "upload_sessions",
    "upload_parts",
    "upload_part_chunks",
    # S3 (0008)
    "buckets",
    "object_meta",
    "access_keys",
    # S3 multipart (0009)
    "s3_uploads",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    with services.throwaway_database(request.getfixturevalue("postgres_server")) as pg_url:
        yield pg_url


@pytest.fixture
def sync_engine(url: str) -> Iterator[sqlalchemy.Engine]:
    engine = sqlalchemy.create_engine(database.sync_url(url))
    try:
        yield engine
    finally:
        engine.dispose()


def table_names(engine: sqlalchemy.Engine) -> set[str]:
    return set(sqlalchemy.inspect(engine).get_table_names())


def test_head_revision_exists() -> None:
    head = database.head_revision()
    assert head is not None
    assert database.migrations_dir().is_dir()


def test_upgrade_creates_every_table(url: str, sync_engine: sqlalchemy.Engine) -> None:
    assert database.current(url) is None

    database.upgrade(url)

    assert table_names(sync_engine) == TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == TABLES
    assert database.current(url) == database.head_revision()


def test_upgrade_is_idempotent(url: str, sync_engine: sqlalchemy.Engine) -> None:
    database.upgrade(url)
    database.upgrade(url)
    assert database.current(url) == database.head_revision()
    assert table_names(sync_engine) >= TABLES


def test_downgrade_to_base_and_back(url: str, sync_engine: sqlalchemy.Engine) -> None:
    database.upgrade(url)

    database.downgrade(url, "base")

    # Alembic keeps its (now empty) version table; nothing else may remain.
    assert table_names(sync_engine) - {"alembic_version"} == set()
    assert database.current(url) is None
    index_query = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name != 'alembic_version'"
        if sync_engine.dialect.name == "sqlite" else
        "SELECT indexname FROM pg_indexes"
        " WHERE schemaname = 'public' AND tablename != 'alembic_version'"
    )
    with sync_engine.connect() as conn:
        indexes = conn.execute(sqlalchemy.text(index_query)).scalars().all()
    assert indexes == []

    database.upgrade(url)

    assert table_names(sync_engine) == TABLES | {"alembic_version"}
    assert database.current(url) == database.head_revision()


def test_models_match_migrations(url: str, sync_engine: sqlalchemy.Engine) -> None:
    """A model change without a migration makes this diff non-empty."""
    database.upgrade(url)

    with sync_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)

    assert diff == []


def test_migrated_schema_has_the_models_indexes_and_constraints(
    url: str, sync_engine: sqlalchemy.Engine
) -> None:
    database.upgrade(url)
    inspector = sqlalchemy.inspect(sync_engine)

    def indexes(table: str) -> set[str]:
        # PostgreSQL backs each unique constraint with an index of its own.
        return {i["name"] for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")}

    assert indexes("chunks") == {"ix_chunks_state_touched"}
    assert indexes("replication_tasks") == {"ix_replication_due"}
    assert indexes("version_chunks") == {"ix_version_chunks_chunk_id"}
    uniques = {
        table: {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
        for table in ("files", "versions", "replication_tasks")
    }
    assert uniques == {
        "files": {("owner", "path")},
        "versions": {("file_id", "version")},
        "replication_tasks": {("chunk_id", "target_worker")},
    }
    fks = {
        (fk["constrained_columns"][0], fk["referred_table"], fk["options"].get("ondelete"))
        for fk in inspector.get_foreign_keys("version_chunks")
    }
    assert fks == {("version_id", "versions", "CASCADE"), ("chunk_id", "chunks", None)}


def test_models_differ_from_an_incomplete_schema(url: str, sync_engine: sqlalchemy.Engine) -> None:
    """The comparison above can fail: drop a table and it notices."""
    database.upgrade(url)
    with sync_engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP TABLE replication_tasks"))

    with sync_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    added = [d[1].name for d in diff if isinstance(d, tuple) and d[0] == "add_table"]
    assert added == ["replication_tasks"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x", "sqlite+aiosqlite:///x"),
        ("sqlite:////abs/path/meta.db", "sqlite+aiosqlite:////abs/path/meta.db"),
        ("sqlite+aiosqlite:///x", "sqlite+aiosqlite:///x"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u:p%40ss@h:5433/db", "postgresql+psycopg://u:p%40ss@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_async_url(given: str, expected: str) -> None:
    assert database.async_url(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite+aiosqlite:///x", "sqlite:///x"),
        ("sqlite:///x", "sqlite:///x"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_sync_url(given: str, expected: str) -> None:
    assert database.sync_url(given) == expected


def test_sqlite_url_for_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    assert database.sync_url(database.sqlite_url_for(path)) == f"sqlite:///{path}"


def test_vocabulary_checks_keep_existing_rows(url: str, sync_engine: sqlalchemy.Engine) -> None:
    """0004 rebuilds tables on SQLite (batch mode): the rows, and the manifests
    and copies that reference them, are all still there afterwards, and the
    downgrade keeps them too."""
    database.upgrade(url, "0003")
    statements = [
        "INSERT INTO files VALUES ('f1', 'alice', 'a.txt', 1, 1.0, 1.0)",
        "INSERT INTO chunks VALUES ('c1', 10, 10, false, 'live', 1.0, 1.0)",
        "INSERT INTO versions (id, file_id, version, size, blake3, chunk_count, mode,"
        " replicas_acked, created_at) VALUES (1, 'f1', 1, 10, 'b', 1, 'strong', 1, 1.0)",
        "INSERT INTO version_chunks VALUES (1, 0, 'c1', 0, 10)",
        "INSERT INTO chunk_replicas VALUES ('c1', 'w1', 1.0)",
        "INSERT INTO replication_tasks (chunk_id, target_worker, reason, created_at,"
        " next_attempt_at, attempts) VALUES ('c1', 'w2', 'rehome', 1.0, 1.0, 0)",
        "INSERT INTO consistency_modes VALUES ('f1', 'hybrid', 'policy', NULL, 1.0)",
        "INSERT INTO mode_transitions (at, object_id, from_mode, to_mode, reason, score,"
        " signals) VALUES (1.0, 'f1', 'strong', 'hybrid', 'policy', NULL, '{}')",
    ]
    with sync_engine.begin() as conn:
        for statement in statements:
            conn.execute(sqlalchemy.text(statement))
    counted = ("files", "chunks", "versions", "version_chunks", "chunk_replicas",
               "replication_tasks", "consistency_modes", "mode_transitions")

    def counts() -> dict[str, int]:
        with sync_engine.connect() as conn:
            return {table: conn.execute(sqlalchemy.text(f"SELECT count(*) FROM {table}"))
                    .scalar_one() for table in counted}

    database.upgrade(url)
    assert counts() == dict.fromkeys(counted, 1)
    with pytest.raises(sqlalchemy.exc.IntegrityError), sync_engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE versions SET mode = 'quorum'"))

    database.downgrade(url, "0003")
    assert counts() == dict.fromkeys(counted, 1)
    with sync_engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE versions SET mode = 'quorum'"))
