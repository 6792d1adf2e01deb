"""Alembic environment: runs migrations synchronously against the URL that
``echofs.metadata.database.alembic_config`` (or alembic.ini / DATABASE_URL)
provides. Synchronous on purpose: it is called from a thread by ``echofs
serve`` and must not need an event loop of its own."""

from __future__ import annotations

import logging.config
import os

from alembic import context
from sqlalchemy import engine_from_config, event, pool

from echofs.metadata.database import sync_url
from echofs.metadata.models import Base

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
if not url:
    raise SystemExit("set DATABASE_URL (or sqlalchemy.url) to run migrations")
config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        # All of SQLite's DDL in one real transaction: one fsync instead of one
        # per statement (start-up time), and all-or-nothing after a crash.
        @event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection):  # type: ignore[no-untyped-def]
            connection.exec_driver_sql("BEGIN")

    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
                transactional_ddl=True if sqlite else None,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
