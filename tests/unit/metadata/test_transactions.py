"""Write transactions: which wait for the disk."""

from __future__ import annotations

from echofs.metadata.repository import MetadataRepository

from .conftest import chunk, upload

# -- durability ---------------------------------------------------------------

async def test_only_claims_and_touches_skip_waiting_for_the_disk(
    repo: MetadataRepository,
) -> None:
    from sqlalchemy import text

    if repo.engine.dialect.name == "postgresql":
        # Relaxed per transaction, with SET LOCAL: nothing leaks to the pool.
        async with repo._write(invalidates=(), relaxed=True) as session:
            assert (await session.execute(text("SHOW synchronous_commit"))).scalar_one() == "off"
        async with repo._write(invalidates=()) as session:
            assert (await session.execute(text("SHOW synchronous_commit"))).scalar_one() == "on"
        return

    async def synchronous(engine) -> int:  # type: ignore[no-untyped-def]
        async with engine.connect() as conn:
            return (await conn.execute(text("PRAGMA synchronous"))).scalar_one()

    async def hot_path_synchronous(relaxed: bool) -> int:
        [(level,)] = await repo._transact(lambda db: db.rows("PRAGMA synchronous"),
                                          invalidates=(), relaxed=relaxed)
        return int(level)

    assert await synchronous(repo.engine) == 2  # FULL: versions, deletes, intents
    assert await hot_path_synchronous(relaxed=False) == 2  # FULL: version commits
    assert await hot_path_synchronous(relaxed=True) == 1  # NORMAL: claims, touches
    # A version committed after its claims makes them durable with it (one WAL).
    await upload(repo, "alice", "durable", [chunk("relaxed-claim")])
    assert (await repo.find_file("alice", "durable")).current_version == 1
