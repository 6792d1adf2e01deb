"""Choosing the metadata engine from the URL: SQLite or PostgreSQL through
SQLAlchemy (``echofs.metadata.database``), or DynamoDB
(``echofs.metadata.dynamodb``). The roles and the CLI open the store only
through here, and get one object with the same methods either way."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Union

from echofs.metadata import database
from echofs.metadata.dynamodb.connection import Dynamo, Target, is_dynamodb

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.repository import DynamoMetadataRepository
    from echofs.metadata.repository import MetadataRepository

Metadata = Union["MetadataRepository", "DynamoMetadataRepository"]

__all__ = ["Metadata", "describe", "is_dynamodb", "open_metadata", "prepare", "upgrade"]


def open_metadata(url: str) -> Metadata:
    """The repository for ``url`` (not yet touched: nothing is sent until
    the first call)."""
    if is_dynamodb(url):
        from echofs.metadata.dynamodb.repository import DynamoMetadataRepository

        return DynamoMetadataRepository(Target.from_url(url))
    from echofs.metadata.repository import MetadataRepository

    return MetadataRepository(database.create_engine(url))


async def prepare(url: str, *, migrate: bool) -> None:
    """Make the store usable or refuse it with ValueError naming why
    (``database.prepare_schema``'s rule: ``migrate`` only for the embedded
    store; a shared one is only checked)."""
    if not is_dynamodb(url):
        await asyncio.to_thread(database.prepare_schema, url, migrate=migrate)
        return
    from echofs.metadata.dynamodb.tables import TablesUnusable, check_tables, create_tables

    db = Dynamo(Target.from_url(url))
    try:
        if migrate:
            await create_tables(db)
        else:
            await check_tables(db)
    except TablesUnusable as exc:
        raise ValueError(str(exc)) from None
    finally:
        await db.close()


def upgrade(url: str, revision: str = "head") -> str:
    """``echofs db upgrade``: bring the store to this version's schema and
    say where it stands. Blocking."""
    if not is_dynamodb(url):
        database.upgrade(url, revision)
        return describe(url)
    from echofs.metadata.dynamodb.tables import create_tables

    async def run() -> list[str]:
        db = Dynamo(Target.from_url(url))
        try:
            return await create_tables(db)
        finally:
            await db.close()

    created = asyncio.run(run())
    names = ", ".join(Target.from_url(url).tables.values())
    return (f"DynamoDB tables ready: {names}"
            + (f" (created: {', '.join(created)})" if created else " (all existed)"))


def describe(url: str) -> str:
    if is_dynamodb(url):
        return "DynamoDB tables: " + ", ".join(Target.from_url(url).tables.values())
    return (f"schema revision: {database.current(url) or 'none'} "
            f"(head: {database.head_revision()})")
