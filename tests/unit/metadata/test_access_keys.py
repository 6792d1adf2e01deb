"""S3 access keys in the store, on SQLite, PostgreSQL and DynamoDB: a key is
found by its id while its account exists, an account lists its own keys
oldest first, and only the key's account may revoke it."""

from __future__ import annotations

from echofs.metadata.repository import MetadataRepository

from .conftest import ALL_BACKENDS

METADATA_BACKENDS = ALL_BACKENDS


async def test_keys_are_found_listed_and_revoked_by_their_account(
        repo: MetadataRepository) -> None:
    users, keys = repo.users, repo.access_keys
    alice = await users.create("alice", "h")
    bob = await users.create("bob", "h")
    first = await keys.add("EKFIRST", alice.user_id, "sealed-1")
    second = await keys.add("EKSECOND", alice.user_id, "sealed-2")
    await keys.add("EKBOB", bob.user_id, "sealed-b")
    assert first.created_at <= second.created_at
    assert await keys.get("EKFIRST") == first
    assert await keys.get("EKNONE") is None
    assert [k.access_key_id for k in await keys.of_user(alice.user_id)] == [
        "EKFIRST", "EKSECOND"]
    assert await keys.of_user("0" * 32) == []
    assert await keys.delete("EKFIRST", bob.user_id) is False  # not bob's
    assert await keys.get("EKFIRST") == first
    assert await keys.delete("EKFIRST", alice.user_id) is True
    assert await keys.delete("EKFIRST", alice.user_id) is False
    assert await keys.get("EKFIRST") is None
    assert [k.access_key_id for k in await keys.of_user(alice.user_id)] == ["EKSECOND"]


async def test_a_deleted_accounts_keys_are_not_found(repo: MetadataRepository) -> None:
    users, keys = repo.users, repo.access_keys
    await users.create("admin", "h")
    user = await users.create("user", "h")
    await keys.add("EKUSER", user.user_id, "sealed")
    assert (await keys.get("EKUSER")) is not None
    assert await users.delete(user.user_id) is True
    assert await keys.get("EKUSER") is None
