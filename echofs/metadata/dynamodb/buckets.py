"""The buckets of the metadata contract on DynamoDB (the SQL repository's
``echofs.metadata.buckets``), and S3's metadata of each version.

A bucket is ``B#<bucket>`` / ``BUCKET`` in the files table (``name``,
``owner``, ``created_at``), in ``gsi1`` as ``BO#<owner>`` / ``<bucket>``;
its name is unique because it is put under ``attribute_not_exists``. Its
objects are its owner's files ``<bucket>/<key>``: emptiness is a Query of
the owner's heads. A version's object metadata is ``I#<file_id>`` /
``S#<version:010d>`` (``etag``, ``headers``, ``user_meta``), put only while
the version exists and removed with it (retention, deletes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from echofs.metadata.buckets import BucketRecord, BucketTaken, ObjectMeta
from echofs.metadata.dynamodb.base import FILES, INDEX
from echofs.metadata.dynamodb.connection import (
    conditional_failed,
    encode,
    transaction_cancelled,
)
from echofs.metadata.dynamodb.files import head_key, meta_item, meta_key, version_key
from echofs.metadata.dynamodb.long_keys import key_prefix

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.repository import DynamoMetadataRepository


def bucket_key(name: str) -> tuple[str, str]:
    return f"B#{name}", "BUCKET"


class DynamoBuckets:
    def __init__(self, repo: DynamoMetadataRepository) -> None:
        self._repo = repo
        self._db = repo.db

    # -- buckets -----------------------------------------------------------------------

    async def create(self, name: str, owner: str) -> BucketRecord:
        """Create a bucket; :class:`BucketTaken` if the name is in use."""
        record = BucketRecord(name, owner, time.time())
        pk, sk = bucket_key(name)
        try:
            await self._db.call(
                "put_item", TableName=self._db.table(FILES),
                Item=encode({"pk": pk, "sk": sk, "name": name, "owner": owner,
                             "created_at": record.created_at, "g1pk": f"BO#{owner}",
                             "g1sk": name}),
                ConditionExpression="attribute_not_exists(pk)")
        except Exception as exc:
            if not conditional_failed(exc):
                raise
            found = await self.get(name)
            raise BucketTaken(found.owner if found else "") from None
        return record

    async def get(self, name: str) -> BucketRecord | None:
        item = await self._db.get(FILES, *bucket_key(name))
        return _bucket(item) if item else None

    async def owned_by(self, owner: str | None) -> list[BucketRecord]:
        """An owner's buckets by name (``None``: everyone's). One owner's
        are a Query of ``gsi1`` (eventually consistent); everyone's a Scan
        of the files table, whose cost grows with the store."""
        if owner is not None:
            return [_bucket(item) async for item in self._db.query(
                FILES, index=INDEX, KeyConditionExpression="g1pk = :owner",
                ExpressionAttributeValues=encode({":owner": f"BO#{owner}"}))]
        found = [_bucket(item) async for item in self._db.scan(
            FILES, FilterExpression="sk = :bucket",
            ExpressionAttributeValues=encode({":bucket": "BUCKET"}), ConsistentRead=True)]
        return sorted(found, key=lambda b: b.name)

    async def is_empty(self, name: str, owner: str) -> bool:
        # A bucket's name (at most 63 characters) with its slash is always
        # short enough to be a prefix of its objects' keys (``long_keys``).
        start, _ = key_prefix(f"{name}/")
        async for _ in self._db.query(
                FILES, limit=1, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
                ExpressionAttributeValues=encode({":pk": head_key(owner, "")[0],
                                                  ":p": f"P#{start}"})):
            return False
        return True

    async def delete(self, name: str, owner: str) -> bool:
        """Remove an empty bucket; False if it held objects (or was gone, or
        is not ``owner``'s).

        Emptiness is read (strongly) just before the delete, which is
        conditional on the owner; an object committed in between is the
        owner's file ``<bucket>/<key>`` still, reachable again if the bucket
        is re-created — what SQL promises for one committed after."""
        if not await self.is_empty(name, owner):
            return False
        pk, sk = bucket_key(name)
        try:
            await self._db.call(
                "delete_item", TableName=self._db.table(FILES),
                Key=encode({"pk": pk, "sk": sk}), ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues=encode({":owner": owner}))
        except Exception as exc:
            if not conditional_failed(exc):
                raise
            return False
        return True

    # -- per-version object metadata -----------------------------------------------------

    async def put_meta(self, file_id: str, version: int, meta: ObjectMeta) -> None:
        """Record ``meta`` for a version just committed: only while the
        version exists (one that retention or a delete already removed
        gains nothing, so no metadata outlives its version)."""
        pk, sk = version_key(file_id, version)
        try:
            await self._db.call("transact_write_items", TransactItems=[
                {"ConditionCheck": {"TableName": self._db.table(FILES),
                                    "Key": encode({"pk": pk, "sk": sk}),
                                    "ConditionExpression": "attribute_exists(pk)"}},
                {"Put": {"TableName": self._db.table(FILES),
                         "Item": encode(meta_item(file_id, version, meta))}}])
        except Exception as exc:
            if not transaction_cancelled(exc):
                raise

    async def meta(self, file_id: str, version: int) -> ObjectMeta | None:
        item = await self._db.get(FILES, *meta_key(file_id, version))
        return _meta(item) if item else None

    async def metas(self, versions: Sequence[tuple[str, int]]
                    ) -> dict[tuple[str, int], ObjectMeta]:
        """The metadata of many versions at once (a listing page)."""
        keys = {meta_key(file_id, number): (file_id, number) for file_id, number in versions}
        found = await self._db.get_many(FILES, list(keys))
        return {keys[key]: _meta(item) for key, item in found.items()}


def _bucket(item: dict[str, Any]) -> BucketRecord:
    return BucketRecord(item["name"], item["owner"], float(item["created_at"]))


def _meta(item: dict[str, Any]) -> ObjectMeta:
    return ObjectMeta(item["etag"], json.loads(item["headers"]), json.loads(item["user_meta"]))
