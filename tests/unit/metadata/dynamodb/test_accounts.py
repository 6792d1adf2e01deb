"""Accounts and access keys on DynamoDB, where uniqueness and the last admin
are conditional writes: concurrent writers from two repositories (two
masters) meet on the marker and counter items, and exactly one wins."""

from __future__ import annotations

import asyncio

import pytest

from echofs.core.errors import Conflict
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository


async def test_one_name_created_at_once_from_two_masters_is_one_account(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    one, two = two_masters
    attempts = [r.users.create("alice", f"hash-{n}", email=f"a{n}@example.com")
                for n in range(6) for r in (one, two)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    made = [r for r in results if not isinstance(r, BaseException)]
    assert len(made) == 1, results
    assert all(isinstance(r, Conflict) and r.code == "username_taken"
               for r in results if r is not made[0])
    found = await two.users.by_username("alice")
    assert found is not None and found.user_id == made[0].user_id
    # The losers' addresses were never taken: their markers went with them.
    free = [n for n in range(6) if f"a{n}@example.com" != made[0].email]
    assert all([await one.users.by_email(f"a{n}@example.com") is None for n in free])


async def test_the_first_accounts_made_at_once_give_one_admin(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    one, two = two_masters
    made = await asyncio.gather(*[(one if n % 2 else two).users.create(f"u{n}", "h")
                                  for n in range(8)])
    assert sorted(u.role for u in made) == ["admin"] + ["user"] * 7


async def test_one_address_taken_at_once_by_two_names_is_one_account(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    one, two = two_masters
    results = await asyncio.gather(one.users.create("a", "h", email="X@example.com"),
                                   two.users.create("b", "h", email="x@example.com"),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict)
    assert refused[0].code == "email_taken"
    # The loser's name was not kept either: it may be registered again.
    loser = "a" if await one.users.by_username("a") is None else "b"
    assert (await two.users.create(loser, "h")).username == loser


async def test_admins_deleted_at_once_from_two_masters_leave_one(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    one, two = two_masters
    admins = [await one.users.create(f"admin{n}", "h", role="admin") for n in range(4)]
    results = await asyncio.gather(*[(one if n % 2 else two).users.delete(a.user_id)
                                     for n, a in enumerate(admins)], return_exceptions=True)
    assert results.count(True) == 3, results
    [kept] = [a for a in admins if await one.users.by_id(a.user_id) is not None]
    assert kept.role == "admin"
    with pytest.raises(Conflict) as refused:
        await two.users.set_role(kept.user_id, "user")
    assert refused.value.code == "last_admin"
