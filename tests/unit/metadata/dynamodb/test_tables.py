"""The DynamoDB engine's set-up: its URL, creating and checking the tables,
and the chunk references every part relies on (against moto in server mode)."""

from __future__ import annotations

import time

import pytest

from echofs.config import Settings
from echofs.metadata import backends
from echofs.metadata.dynamodb.base import CHUNKS, DynamoBase, chunk_key
from echofs.metadata.dynamodb.connection import Dynamo, Target
from echofs.metadata.dynamodb.tables import TablesUnusable, check_tables, create_tables


def test_the_url_and_the_originals_variables_name_the_tables() -> None:
    target = Target.from_url("dynamodb://?region=eu-west-1&prefix=prod-",
                             {"DYNAMODB_CHUNKS_TABLE": "legacy-chunks"})
    assert target.region == "eu-west-1" and target.endpoint_url is None
    assert target.tables["files"] == "prod-files"
    assert target.tables["chunks"] == "legacy-chunks"
    local = Target.from_url("dynamodb://", {"DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8000",
                                            "AWS_REGION": "ap-south-1"})
    assert local.endpoint_url == "http://127.0.0.1:8000" and local.region == "ap-south-1"
    with pytest.raises(ValueError, match="unknown DynamoDB URL options: regoin"):
        Target.from_url("dynamodb://?regoin=x", {})
    # The original's variables alone choose DynamoDB.
    assert Settings.load({"DYNAMODB_FILES_TABLE": "files"}).metadata_url == "dynamodb://"


async def test_tables_are_created_once_and_missing_ones_are_named(
        fresh_dynamodb_url: str) -> None:
    url = fresh_dynamodb_url
    db = Dynamo(Target.from_url(url))
    try:
        with pytest.raises(TablesUnusable) as missing:
            await check_tables(db)
        for name in db.tables.values():
            assert name in str(missing.value)
        assert "echofs db upgrade" in str(missing.value)
        with pytest.raises(ValueError, match="missing"):
            await backends.prepare(url, migrate=False)  # how a master is refused
        assert sorted(await create_tables(db)) == sorted(db.tables.values())
        assert await create_tables(db) == []  # idempotent
        await check_tables(db)
        await backends.prepare(url, migrate=False)
    finally:
        await db.close()


async def test_references_are_taken_only_on_live_chunks_and_given_back(
        fresh_dynamodb_url: str) -> None:
    base = DynamoBase(Target.from_url(fresh_dynamodb_url))
    try:
        await create_tables(base.db)
        now = time.time()
        pk, sk = chunk_key("c1")
        await base.db.write_many(CHUNKS, puts=[{"pk": pk, "sk": sk, "state": "live",
                                                "refs": 0, "touched_at": now - 100,
                                                "g1pk": "GC", "g1sk": "x"}])
        assert await base.add_refs(["c1", "c1", "nope"], now) == {"nope"}
        item = await base.db.get(CHUNKS, pk, sk)
        assert item is not None and int(item["refs"]) == 2 and "g1pk" not in item
        assert float(item["touched_at"]) == pytest.approx(now)
        await base.drop_refs(["c1"], now)
        item = await base.db.get(CHUNKS, pk, sk)
        assert item is not None and int(item["refs"]) == 1 and "g1pk" not in item
        await base.drop_refs(["c1"], now + 1)
        item = await base.db.get(CHUNKS, pk, sk)
        assert item is not None and int(item["refs"]) == 0 and item["g1pk"] == "GC"
        await base.drop_refs(["c1"], now + 2)  # nothing left to give: no negative count
        item = await base.db.get(CHUNKS, pk, sk)
        assert item is not None and int(item["refs"]) == 0
        await base.db.call("update_item", TableName=base.db.table(CHUNKS),
                           Key={"pk": {"S": pk}, "sk": {"S": sk}},
                           UpdateExpression="SET #s = :d", ExpressionAttributeNames={"#s": "state"},
                           ExpressionAttributeValues={":d": {"S": "deleting"}})
        assert await base.add_refs(["c1"], now) == {"c1"}
    finally:
        await base.close()
