"""Buckets and S3's object metadata on DynamoDB: one bucket per name when
two masters race for it, everyone's buckets, and metadata that lives
exactly as long as its version (published with it when the commit carries
it, never stored for a version already gone, removed by retention)."""

from __future__ import annotations

import asyncio
import dataclasses

from echofs.metadata.buckets import BucketTaken, ObjectMeta
from echofs.metadata.dynamodb.base import FILES
from echofs.metadata.dynamodb.files import meta_key
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository
from echofs.metadata.repository import MetadataRepository

from ..conftest import chunk, request, upload

METADATA_BACKENDS = ["dynamodb"]


async def test_one_bucket_per_name_whoever_asks_at_once(repo: DynamoMetadataRepository,
                                                        database_url: str) -> None:
    from echofs.metadata import backends

    other: MetadataRepository = backends.open_metadata(database_url)  # type: ignore[assignment]
    try:
        outcomes = await asyncio.gather(
            *(master.buckets.create("shared", owner)
              for master, owner in [(repo, "alice"), (other, "bob")] * 5),
            return_exceptions=True)
    finally:
        await other.close()
    made = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(made) == 1
    assert all(isinstance(o, BucketTaken) and o.owner == made[0].owner  # type: ignore[union-attr]
               for o in outcomes if isinstance(o, BaseException))
    await repo.buckets.create("zeta", "carol")
    everyone = await repo.buckets.owned_by(None)
    assert [(b.name, b.owner) for b in everyone] == [("shared", made[0].owner),  # type: ignore[union-attr]
                                                     ("zeta", "carol")]


async def test_metadata_lives_exactly_as_long_as_its_version(
        repo: DynamoMetadataRepository) -> None:
    meta = ObjectMeta('"0cc175b9c0f1b6a831c399e269772661"', {"Content-Type": "text/plain"},
                      {"colour": "blue"})
    first = chunk("first")
    await repo.claim_chunks([first])
    base = request("alice", "b/k", [first], versions_kept=1)
    [outcome] = await repo.commit_versions([dataclasses.replace(base, object_meta=meta)])
    assert not isinstance(outcome, Exception)
    record, version = outcome
    # Published with the version, in its transaction.
    assert await repo.buckets.meta(record.file_id, version.version) == meta

    await upload(repo, "alice", "b/k", [chunk("second")], versions_kept=1)  # prunes it

    assert await repo.db.get(FILES, *meta_key(record.file_id, 1)) is None
    # Metadata for a version already gone is not stored.
    await repo.buckets.put_meta(record.file_id, 1, meta)
    assert await repo.buckets.meta(record.file_id, 1) is None
    await repo.buckets.put_meta(record.file_id, 2, meta)
    assert await repo.buckets.metas([(record.file_id, 1), (record.file_id, 2)]) == {
        (record.file_id, 2): meta}
