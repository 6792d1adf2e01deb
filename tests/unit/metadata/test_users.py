"""Accounts in the store, on SQLite, PostgreSQL and DynamoDB: roles, deletion, token
generations, the last admin kept, and accounts made before generations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy

from echofs.core.errors import Conflict
from echofs.metadata import database
from echofs.metadata.repository import MetadataRepository

from .conftest import ALL_BACKENDS

METADATA_BACKENDS = ALL_BACKENDS


async def test_role_changes_and_deletion(repo: MetadataRepository) -> None:
    users = repo.users
    alice = await users.create("alice", "hash-a")
    bob = await users.create("bob", "hash-b")
    assert (alice.role, bob.role) == ("admin", "user")
    promoted = await users.set_role(bob.user_id, "admin")
    assert promoted is not None and promoted.role == "admin"
    assert (await users.by_id(bob.user_id)).role == "admin"
    assert await users.set_role("0" * 32, "admin") is None
    with pytest.raises(ValueError):
        await users.set_role(bob.user_id, "root")
    assert await users.delete(alice.user_id) is True
    assert await users.by_id(alice.user_id) is None
    assert await users.by_username("alice") is None
    assert await users.delete(alice.user_id) is False


async def test_the_last_admin_is_kept(repo: MetadataRepository) -> None:
    users = repo.users
    alice = await users.create("alice", "hash-a")
    bob = await users.create("bob", "hash-b", role="admin")
    await users.set_role(bob.user_id, "user")
    for change in (users.set_role(alice.user_id, "user"), users.delete(alice.user_id)):
        with pytest.raises(Conflict) as refused:
            await change
        assert refused.value.code == "last_admin"
    assert (await users.by_id(alice.user_id)).role == "admin"
    plain = await users.create("carol", "hash-c")
    assert await users.delete(plain.user_id) is True  # a plain user goes freely


async def test_two_admins_demoting_each_other_at_once_leave_one(
        repo: MetadataRepository) -> None:
    users = repo.users
    alice = await users.create("alice", "hash-a")
    bob = await users.create("bob", "hash-b", role="admin")
    results = await asyncio.gather(users.set_role(alice.user_id, "user"),
                                   users.set_role(bob.user_id, "user"),
                                   return_exceptions=True)
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    roles = {(await users.by_id(u.user_id)).role for u in (alice, bob)}
    assert roles == {"admin", "user"}


async def test_revoking_tokens_moves_the_generation_on(repo: MetadataRepository) -> None:
    users = repo.users
    alice = await users.create("alice", "hash-a")
    assert alice.token_generation == 0
    assert await users.revoke_tokens(alice.user_id) is True
    assert await users.revoke_tokens(alice.user_id) is True
    assert (await users.by_id(alice.user_id)).token_generation == 2
    assert await users.revoke_tokens("0" * 32) is False


async def test_accounts_made_before_generations_start_at_zero(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(database.upgrade, url, "0004")
    engine = sqlalchemy.create_engine(database.sync_url(url))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(
            "INSERT INTO users (id, username, password_hash, role, created_at) "
            "VALUES ('a' || hex(randomblob(15)), 'old', 'hash', 'admin', 0)"))
    engine.dispose()
    await asyncio.to_thread(database.upgrade, url)
    repo = MetadataRepository(database.create_engine(url))
    try:
        old = await repo.users.by_username("old")
        assert old is not None and old.token_generation == 0
    finally:
        await repo.close()


async def test_email_is_stored_lowercased_unique_and_found(repo: MetadataRepository) -> None:
    users = repo.users
    alice = await users.create("alice", "hash-a", email="Alice@Example.COM")
    assert alice.email == "alice@example.com"
    assert (await users.by_email("ALICE@example.com")).user_id == alice.user_id
    assert (await users.by_id(alice.user_id)).email == "alice@example.com"
    with pytest.raises(Conflict) as taken:
        await users.create("alice2", "hash-b", email="alice@EXAMPLE.com")
    assert taken.value.code == "email_taken"
    with pytest.raises(Conflict) as taken:
        await users.create("alice", "hash-b", email="other@example.com")
    assert taken.value.code == "username_taken"
    # Accounts without an address do not collide with each other.
    assert (await users.create("bob", "hash-b")).email is None
    assert (await users.create("carol", "hash-c")).email is None
    assert await users.by_email("nobody@example.com") is None
