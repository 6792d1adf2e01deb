"""Accounts on DynamoDB (the SQL repository's ``echofs.metadata.users``):
the same methods, records and errors.

Items of the ``accounts`` table:

``U#<user_id>`` / ``USER``    an account: ``username``, ``password_hash``,
                               ``role``, ``created_at``,
                               ``token_generation``, ``email``.
``N#<username>`` / ``NAME``   the username's marker: ``user_id``.
``E#<email>`` / ``EMAIL``     the (lowercased) address's marker:
                               ``user_id``.
``COUNTS`` / ``COUNTS``       ``users`` and ``admins``: how many accounts
                               and admins the store has.

Uniqueness is kept by the markers: an account is created by one
transaction that puts its item and its markers, each under the condition
that it does not exist, so two creations of one name cannot both pass.
The counters are changed in the same transaction as the account, under a
condition: the first account (``users = 0``) becomes admin, and a
demotion or deletion of an admin needs ``admins > 1`` — two concurrent
demotions meet on the ``COUNTS`` item and the second one fails its
condition (the store keeps at least one admin, as on SQL).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from echofs.core.errors import Conflict
from echofs.metadata.dynamodb.base import ACCOUNTS
from echofs.metadata.dynamodb.connection import (
    conditional_failed,
    encode,
    value,
)
from echofs.metadata.users import ROLES, UserRecord

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.repository import DynamoMetadataRepository

USER = "USER"
COUNTS = ("COUNTS", "COUNTS")
FAILED = "ConditionalCheckFailed"
# Rounds of read-then-conditional-write before giving up on a contended item
# (each lost round means another writer changed the same account or counters).
ROUNDS = 50


def user_key(user_id: str) -> tuple[str, str]:
    return f"U#{user_id}", USER


def name_key(username: str) -> tuple[str, str]:
    return f"N#{username}", "NAME"


def email_key(email: str) -> tuple[str, str]:
    return f"E#{email}", "EMAIL"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": value(pk), "sk": value(sk)}


def _record(item: dict[str, Any]) -> UserRecord:
    return UserRecord(item["user_id"], item["username"], item["password_hash"], item["role"],
                      float(item["created_at"]), int(item.get("token_generation", 0)),
                      item.get("email"))


class DynamoUsers:
    def __init__(self, repo: DynamoMetadataRepository) -> None:
        self._repo = repo
        self._db = repo.db
        self._table = self._db.table(ACCOUNTS)

    async def _counts(self) -> tuple[int, int]:
        item = await self._db.get(ACCOUNTS, *COUNTS)
        if item is None:
            return 0, 0
        return int(item.get("users", 0)), int(item.get("admins", 0))

    async def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        return await self._db.transact(items)

    async def create(self, username: str, password_hash: str,
                     role: str | None = None, email: str | None = None) -> UserRecord:
        """Create an account. Without an explicit role, the first account of
        the store becomes ``admin`` and every later one ``user``. ``email``
        (optional) is stored lowercased; another account's address is a 409."""
        email = email.lower() if email else None
        user_id = uuid.uuid4().hex
        now = time.time()
        for _ in range(ROUNDS):
            users, _admins = await self._counts()
            chosen = role or ("admin" if users == 0 else "user")
            item = {"pk": user_key(user_id)[0], "sk": USER, "user_id": user_id,
                    "username": username, "password_hash": password_hash, "role": chosen,
                    "created_at": now, "token_generation": 0, "email": email}
            name_pk, name_sk = name_key(username)
            items: list[dict[str, Any]] = [
                {"Put": {"TableName": self._table,
                         "Item": encode({"pk": name_pk, "sk": name_sk, "user_id": user_id}),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self._table, "Item": encode(item),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                # The count the role was chosen by must still hold; later
                # accounts only need the counters to move.
                {"Update": {"TableName": self._table, "Key": _key(*COUNTS),
                            "UpdateExpression": "SET #u = if_not_exists(#u, :z) + :one, "
                                                "#a = if_not_exists(#a, :z) + :adm",
                            "ConditionExpression": "attribute_not_exists(#u) OR #u = :seen",
                            "ExpressionAttributeNames": {"#u": "users", "#a": "admins"},
                            "ExpressionAttributeValues": {
                                ":z": value(0), ":one": value(1), ":seen": value(users),
                                ":adm": value(1 if chosen == "admin" else 0)}}},
            ]
            if email is not None:
                email_pk, email_sk = email_key(email)
                items.append({"Put": {
                    "TableName": self._table,
                    "Item": encode({"pk": email_pk, "sk": email_sk, "user_id": user_id}),
                    "ConditionExpression": "attribute_not_exists(pk)"}})
            reasons = await self._transact(items)
            if reasons is None:
                return _record(item)
            # The username is the older rule: it is reported first.
            if reasons[0] == FAILED:
                raise Conflict(f"username {username!r} is taken", code="username_taken")
            if len(reasons) > 3 and reasons[3] == FAILED:
                raise Conflict(f"email {email!r} is already registered", code="email_taken")
            # The counters moved under us (another account was made): count again.
        raise Conflict("too many concurrent account changes; try again", code="busy")

    async def by_email(self, email: str) -> UserRecord | None:
        marker = await self._db.get(ACCOUNTS, *email_key(email.lower()))
        return None if marker is None else await self.by_id(marker["user_id"])

    async def by_username(self, username: str) -> UserRecord | None:
        marker = await self._db.get(ACCOUNTS, *name_key(username))
        return None if marker is None else await self.by_id(marker["user_id"])

    async def by_id(self, user_id: str) -> UserRecord | None:
        item = await self._db.get(ACCOUNTS, *user_key(user_id))
        return None if item is None else _record(item)

    def _role_change(self, record: UserRecord, role: str) -> dict[str, Any]:
        """The account's update, conditioned on the role it was read with."""
        return {"Update": {
            "TableName": self._table, "Key": _key(*user_key(record.user_id)),
            "UpdateExpression": "SET #r = :new",
            "ConditionExpression": "attribute_exists(pk) AND #r = :old",
            "ExpressionAttributeNames": {"#r": "role"},
            "ExpressionAttributeValues": {":new": value(role), ":old": value(record.role)}}}

    def _count_change(self, users: int, admins: int) -> dict[str, Any]:
        """Move the counters; taking an admin away needs another to remain."""
        change: dict[str, Any] = {
            "TableName": self._table, "Key": _key(*COUNTS),
            "UpdateExpression": "SET #u = if_not_exists(#u, :z) + :du, "
                                "#a = if_not_exists(#a, :z) + :da",
            "ExpressionAttributeNames": {"#u": "users", "#a": "admins"},
            "ExpressionAttributeValues": {":z": value(0), ":du": value(users),
                                          ":da": value(admins)}}
        if admins < 0:
            change["ConditionExpression"] = "#a > :one"
            change["ExpressionAttributeValues"][":one"] = value(1)
        return {"Update": change}

    async def set_role(self, user_id: str, role: str) -> UserRecord | None:
        """Give an account ``role``; None if there is no such account."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        for _ in range(ROUNDS):
            record = await self.by_id(user_id)
            if record is None:
                return None
            if record.role == role:
                return record
            delta = 1 if role == "admin" else -1 if record.role == "admin" else 0
            reasons = await self._transact([self._role_change(record, role),
                                            self._count_change(0, delta)])
            if reasons is None:
                return UserRecord(record.user_id, record.username, record.password_hash, role,
                                  record.created_at, record.token_generation, record.email)
            if reasons[0] != FAILED and reasons[1] == FAILED:
                raise Conflict(f"{record.username!r} is the last admin; make another admin "
                               "first", code="last_admin")
            # The account changed meanwhile: read it again.
        raise Conflict("too many concurrent account changes; try again", code="busy")

    async def delete(self, user_id: str) -> bool:
        """Remove an account (its files stay, still owned by its id); False
        if there was none."""
        for _ in range(ROUNDS):
            record = await self.by_id(user_id)
            if record is None:
                return False
            items: list[dict[str, Any]] = [
                {"Delete": {"TableName": self._table, "Key": _key(*user_key(user_id)),
                            "ConditionExpression": "attribute_exists(pk) AND #r = :old",
                            "ExpressionAttributeNames": {"#r": "role"},
                            "ExpressionAttributeValues": {":old": value(record.role)}}},
                self._count_change(-1, -1 if record.role == "admin" else 0),
                {"Delete": {"TableName": self._table,
                            "Key": _key(*name_key(record.username))}},
            ]
            if record.email is not None:
                items.append({"Delete": {"TableName": self._table,
                                         "Key": _key(*email_key(record.email))}})
            reasons = await self._transact(items)
            if reasons is None:
                return True
            if reasons[0] != FAILED and reasons[1] == FAILED:
                raise Conflict(f"{record.username!r} is the last admin; make another admin "
                               "first", code="last_admin")
        raise Conflict("too many concurrent account changes; try again", code="busy")

    async def revoke_tokens(self, user_id: str) -> bool:
        """Revoke every token issued so far to an account (its next login
        gets a token of the new generation); False if there is no account."""
        try:
            await self._db.call(
                "update_item", TableName=self._table, Key=_key(*user_key(user_id)),
                UpdateExpression="SET token_generation = if_not_exists(token_generation, :z) "
                                 "+ :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":z": value(0), ":one": value(1)})
        except Exception as exc:
            if conditional_failed(exc):
                return False
            raise
        return True
