"""Connecting to the metadata store and bringing its schema up to date."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Accept the usual spellings and return the async driver's URL.

    ``sqlite:///x`` → aiosqlite; ``postgres://`` (the seed's form) and
    ``postgresql://`` → psycopg 3.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database through a synchronous driver, for Alembic."""
    parsed = make_url(async_url(url))
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def sqlite_url_for(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def create_engine(url: str) -> AsyncEngine:
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets downloads read while an upload commits; FULL makes every
    # committed version survive a power cut, which "acknowledged" promises.
    # (The hot statements' own connection, sqlite_writer, sets its own.)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrations_dir() -> Path:
    return Path(str(resources.files("echofs.migrations")))


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # '%' is ConfigParser's interpolation character; URLs may contain it.
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (blocking; call from a thread inside an event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine as create_sync_engine

    engine = create_sync_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def prepare_schema(url: str, *, migrate: bool) -> None:
    """Make the schema current, or refuse to use the database.

    ``migrate``: the embedded SQLite store, which only this process uses, is
    created or migrated on the spot. Otherwise (a shared database: other
    masters may be running on the old schema) it is only checked, and a
    schema not at head raises ValueError: the operator runs ``echofs db
    upgrade``. The one rule for ``echofs serve`` and the CLI's local admin
    commands. Blocking: call from a thread inside an event loop.
    """
    if migrate:
        upgrade(url)
        return
    found, head = current(url), head_revision()
    if found != head:
        raise ValueError(f"metadata schema at {found or 'nothing'}, this EchoFS needs {head}: "
                         "run `echofs db upgrade` first")
