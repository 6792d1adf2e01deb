"""S3 access keys on DynamoDB (the SQL repository's
``echofs.metadata.access_keys``): the same methods and records.

Items of the ``accounts`` table, written and removed together by one
transaction:

``K#<access_key_id>`` / ``KEY``        the key by id (signing looks it
                                         up): ``user_id``, ``secret_sealed``,
                                         ``created_at``.
``U#<user_id>`` / ``K#<access_key_id>`` the same key in its account's
                                         partition, so an account's keys are
                                         one strongly consistent Query.

An account's deletion leaves its keys; :meth:`DynamoAccessKeys.get` answers
a key only while its account exists, as the SQL join does.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from echofs.core.errors import Conflict
from echofs.metadata.access_keys import AccessKeyRecord
from echofs.metadata.dynamodb.base import ACCOUNTS
from echofs.metadata.dynamodb.connection import (
    cancellation_reasons,
    encode,
    transaction_cancelled,
    value,
)
from echofs.metadata.dynamodb.users import user_key

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.repository import DynamoMetadataRepository


def key_key(access_key_id: str) -> tuple[str, str]:
    return f"K#{access_key_id}", "KEY"


def account_key_key(user_id: str, access_key_id: str) -> tuple[str, str]:
    return user_key(user_id)[0], f"K#{access_key_id}"


def _record(item: dict[str, Any]) -> AccessKeyRecord:
    return AccessKeyRecord(item["access_key_id"], item["user_id"], item["secret_sealed"],
                           float(item["created_at"]))


class DynamoAccessKeys:
    def __init__(self, repo: DynamoMetadataRepository) -> None:
        self._repo = repo
        self._db = repo.db
        self._table = self._db.table(ACCOUNTS)

    async def add(self, access_key_id: str, user_id: str, secret_sealed: str) -> AccessKeyRecord:
        record = AccessKeyRecord(access_key_id, user_id, secret_sealed, time.time())
        fields = {"access_key_id": access_key_id, "user_id": user_id,
                  "secret_sealed": secret_sealed, "created_at": record.created_at}
        items = [{"Put": {"TableName": self._table,
                          "Item": encode({"pk": pk, "sk": sk, **fields}),
                          "ConditionExpression": "attribute_not_exists(pk)"}}
                 for pk, sk in (key_key(access_key_id),
                                account_key_key(user_id, access_key_id))]
        try:
            await self._db.call("transact_write_items", TransactItems=items,
                                ClientRequestToken=uuid.uuid4().hex)
        except Exception as exc:
            if transaction_cancelled(exc) and "ConditionalCheckFailed" in \
                    cancellation_reasons(exc):
                # Key ids are random: a clash is a retry's or a caller's error.
                raise Conflict(f"access key {access_key_id!r} exists already",
                               code="access_key_exists") from None
            raise
        return record

    async def get(self, access_key_id: str) -> AccessKeyRecord | None:
        """A key whose account still exists (a deleted account's keys sign nothing)."""
        item = await self._db.get(ACCOUNTS, *key_key(access_key_id))
        if item is None or await self._db.get(ACCOUNTS, *user_key(item["user_id"])) is None:
            return None
        return _record(item)

    async def of_user(self, user_id: str) -> list[AccessKeyRecord]:
        records = [_record(item) async for item in self._db.query(
            ACCOUNTS, KeyConditionExpression="pk = :pk AND begins_with(sk, :k)",
            ExpressionAttributeValues={":pk": value(user_key(user_id)[0]),
                                       ":k": value("K#")})]
        return sorted(records, key=lambda r: (r.created_at, r.access_key_id))

    async def delete(self, access_key_id: str, user_id: str) -> bool:
        """Revoke a key of ``user_id``; False if it has no such key."""
        pk, sk = key_key(access_key_id)
        own_pk, own_sk = account_key_key(user_id, access_key_id)
        items = [
            {"Delete": {"TableName": self._table, "Key": encode({"pk": pk, "sk": sk}),
                        "ConditionExpression": "user_id = :u",
                        "ExpressionAttributeValues": {":u": value(user_id)}}},
            {"Delete": {"TableName": self._table, "Key": encode({"pk": own_pk, "sk": own_sk})}},
        ]
        try:
            await self._db.call("transact_write_items", TransactItems=items,
                                ClientRequestToken=uuid.uuid4().hex)
        except Exception as exc:
            if transaction_cancelled(exc) and "ConditionalCheckFailed" in \
                    cancellation_reasons(exc):
                return False  # no such key, or another account's
            raise
        return True
