"""Creating the tables (``echofs db upgrade``) and checking them at start.

Every table has the same shape (see the package docstring): ``pk``/``sk``
strings, the sparse index ``gsi1`` on ``g1pk``/``g1sk``, on-demand
capacity. Creating is idempotent: a table that exists is left as it is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from echofs.metadata.dynamodb.connection import Dynamo, error_code

INDEX = "gsi1"


def table_spec(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g1pk", "g1sk")],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": INDEX,
            "KeySchema": [{"AttributeName": "g1pk", "KeyType": "HASH"},
                          {"AttributeName": "g1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    }


class TablesUnusable(Exception):
    """The tables are missing or may not be used; the message names them."""


async def create_tables(db: Dynamo, wait_up_to: float = 120.0) -> list[str]:
    """Create the tables that do not exist; return the names created.
    Waits until every table is ACTIVE."""
    created: list[str] = []
    for name in db.tables.values():
        try:
            await db.call("create_table", **table_spec(name))
            created.append(name)
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException":  # it exists already
                raise _unusable(exc, [name]) from exc
    deadline = time.monotonic() + wait_up_to
    for name in db.tables.values():
        while await _status(db, name) != "ACTIVE":
            if time.monotonic() > deadline:
                raise TablesUnusable(f"DynamoDB table {name} did not become ACTIVE "
                                     f"within {wait_up_to:.0f} s")
            await asyncio.sleep(0.5)
    return created


async def check_tables(db: Dynamo) -> None:
    """Raise :class:`TablesUnusable` naming every table that is missing or
    that these credentials may not describe."""
    missing: list[str] = []
    for name in db.tables.values():
        try:
            status = await _status(db, name)
        except Exception as exc:
            raise _unusable(exc, [name]) from exc
        if status is None:
            missing.append(name)
    if missing:
        raise TablesUnusable(
            f"DynamoDB table{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)} "
            f"(region {db.target.region}"
            f"{', endpoint ' + db.target.endpoint_url if db.target.endpoint_url else ''}): "
            "run `echofs db upgrade` first")


async def drop_tables(db: Dynamo) -> None:
    """Delete the tables (tests only: there is no undo)."""
    for name in db.tables.values():
        try:
            await db.call("delete_table", TableName=name)
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise


async def _status(db: Dynamo, name: str) -> str | None:
    try:
        answer = await db.call("describe_table", TableName=name)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return str(answer["Table"]["TableStatus"])


def _unusable(exc: BaseException, names: list[str]) -> TablesUnusable:
    code = error_code(exc)
    if code in ("AccessDeniedException", "UnrecognizedClientException",
                "InvalidSignatureException"):
        return TablesUnusable(f"DynamoDB refused access to {', '.join(names)} ({code}): "
                              "check the credentials and their permissions")
    return TablesUnusable(f"DynamoDB table {', '.join(names)}: {exc}")
