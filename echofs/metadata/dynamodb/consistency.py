"""The consistency controller's state on DynamoDB (the SQL repository's
``echofs.metadata.consistency``): modes, hints, critical keys, the global
override and the audit log of transitions, with the same methods and
records.

Items of the ``controller`` table:

``MODE`` / ``<object_id>``            a file's current mode: ``mode``,
                                       ``reason``, ``score``, ``changed_at``.
``HINT`` / ``<object_id>``            a hint other than ``auto``.
``CRITICAL`` / ``<object_id>``        a critical key: ``added_at``.
``SETTING`` / ``<key>``               a lever (the global override).
``SEQ`` / ``TRANSITIONS``             the last audit entry id handed out.
``T`` / ``<id:020d>``                 an audit entry: ``at``, ``object_id``,
                                       ``from_mode``, ``to_mode``,
                                       ``reason``, ``score``, ``signals``
                                       (JSON text, as on SQL).
``TO#<object_id>`` / ``<id:020d>``    the same entry in its file's
                                       partition, so one file's history is
                                       a strongly consistent Query too.

Ids come from an atomic ``ADD`` on the ``SEQ`` item: unique and increasing
(newest first is the descending sort key), like the SQL autoincrement. A
batch of transitions is written by transactions of at most 100 items:
each entry's two items and, for the batch's last change of each file, its
mode — an entry is never half-written and a mode never moves without its
entry. The controller's tables stay small (one item per tracked file), so
whole partitions are read by Query.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from echofs.core.consistency import Mode
from echofs.metadata.consistency import StoredMode, Transition
from echofs.metadata.dynamodb.base import CONTROLLER
from echofs.metadata.dynamodb.connection import encode, value

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.repository import DynamoMetadataRepository

MODE, HINT, CRITICAL, SETTING, AUDIT = "MODE", "HINT", "CRITICAL", "SETTING", "T"
SEQUENCE = ("SEQ", "TRANSITIONS")
OVERRIDE = "override"
TRANSACTION_ITEMS = 100


def audit_sort_key(entry_id: int) -> str:
    return f"{entry_id:020d}"


def file_audit_key(object_id: str) -> str:
    return f"TO#{object_id}"


def _transition(item: dict[str, Any]) -> Transition:
    score = item.get("score")
    return Transition(int(item["id"]), float(item["at"]), item["object_id"], item["from_mode"],
                      item["to_mode"], item["reason"], None if score is None else float(score),
                      json.loads(item["signals"]))


class DynamoConsistency:
    def __init__(self, repo: DynamoMetadataRepository) -> None:
        self._repo = repo
        self._db = repo.db
        self._table = self._db.table(CONTROLLER)

    async def _partition(self, pk: str) -> list[dict[str, Any]]:
        return [item async for item in self._db.query(
            CONTROLLER, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": value(pk)})]

    async def _put(self, item: dict[str, Any]) -> None:
        await self._db.call("put_item", TableName=self._table, Item=encode(item))

    async def _delete(self, pk: str, sk: str) -> None:
        await self._db.call("delete_item", TableName=self._table,
                            Key=encode({"pk": pk, "sk": sk}))

    async def modes(self) -> list[StoredMode]:
        return [StoredMode(item["sk"], Mode(item["mode"]), item["reason"],
                           None if item.get("score") is None else float(item["score"]),
                           float(item["changed_at"]))
                for item in await self._partition(MODE)]

    async def _ids(self, count: int) -> range:
        answer = await self._db.call(
            "update_item", TableName=self._table,
            Key=encode({"pk": SEQUENCE[0], "sk": SEQUENCE[1]}),
            UpdateExpression="ADD last_id :n", ExpressionAttributeValues={":n": value(count)},
            ReturnValues="UPDATED_NEW")
        last = int(answer["Attributes"]["last_id"]["N"])
        return range(last - count + 1, last + 1)

    async def record_transitions(self, changes: list[Transition]) -> None:
        """Persist new modes and their audit entries (see the module's
        docstring for how a large batch is split)."""
        if not changes:
            return
        last_of = {change.object_id: n for n, change in enumerate(changes)}
        groups: list[list[dict[str, Any]]] = []
        ids = await self._ids(len(changes))
        for n, (change, entry_id) in enumerate(zip(changes, ids, strict=True)):
            entry = {"id": entry_id, "at": change.at, "object_id": change.object_id,
                     "from_mode": change.from_mode.value, "to_mode": change.to_mode.value,
                     "reason": change.reason, "score": change.score,
                     "signals": json.dumps(change.signals, sort_keys=True)}
            sk = audit_sort_key(entry_id)
            items = [{"pk": AUDIT, "sk": sk, **entry},
                     {"pk": file_audit_key(change.object_id), "sk": sk, **entry}]
            if last_of[change.object_id] == n:
                # A transaction may not touch one item twice: a file that
                # changed twice in the batch gets its last mode.
                items.append({"pk": MODE, "sk": change.object_id,
                              "mode": change.to_mode.value, "reason": change.reason,
                              "score": change.score, "changed_at": change.at})
            if not groups or len(groups[-1]) + len(items) > TRANSACTION_ITEMS:
                groups.append([])
            groups[-1].extend(items)
        for group in groups:
            await self._db.call(
                "transact_write_items", ClientRequestToken=uuid.uuid4().hex, TransactItems=[
                    {"Put": {"TableName": self._table, "Item": encode(item)}} for item in group])

    async def transitions(self, *, object_id: str | None = None, limit: int = 100,
                          before_id: int | None = None) -> list[Transition]:
        """The newest entries first (of one file, or of all), those older
        than ``before_id`` if given, at most ``limit``."""
        if limit <= 0 or (before_id is not None and before_id <= 1):
            return []
        pk = AUDIT if object_id is None else file_audit_key(object_id)
        condition, values = "pk = :pk", {":pk": value(pk)}
        if before_id is not None:
            condition += " AND sk < :before"
            values[":before"] = value(audit_sort_key(before_id))
        return [_transition(item) async for item in self._db.query(
            CONTROLLER, limit=limit, KeyConditionExpression=condition,
            ExpressionAttributeValues=values, ScanIndexForward=False)]

    async def hints(self) -> dict[str, str]:
        return {item["sk"]: item["hint"] for item in await self._partition(HINT)}

    async def set_hint(self, object_id: str, hint: str) -> None:
        if hint == "auto":
            await self._delete(HINT, object_id)
        else:
            await self._put({"pk": HINT, "sk": object_id, "hint": hint,
                             "updated_at": time.time()})

    async def critical_keys(self) -> set[str]:
        return {item["sk"] for item in await self._partition(CRITICAL)}

    async def add_critical_keys(self, keys: list[str]) -> None:
        now = time.time()
        await self._db.write_many(CONTROLLER, puts=[
            {"pk": CRITICAL, "sk": key, "added_at": now} for key in dict.fromkeys(keys)])

    async def remove_critical_keys(self, keys: list[str]) -> None:
        await self._db.write_many(CONTROLLER, deletes=[(CRITICAL, key) for key in keys])

    async def override(self) -> str | None:
        item = await self._db.get(CONTROLLER, SETTING, OVERRIDE)
        return None if item is None else str(item["value"])

    async def set_override(self, mode: str | None) -> None:
        if mode is None:
            await self._delete(SETTING, OVERRIDE)
        else:
            await self._put({"pk": SETTING, "sk": OVERRIDE, "value": mode,
                             "updated_at": time.time()})
