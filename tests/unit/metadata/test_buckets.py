"""S3's metadata on every engine: buckets (unique names, owners,
emptiness checked in the deleting transaction), per-version object metadata
(kept with its version, gone with its file), and access keys (a deleted
account's keys are no keys)."""

from __future__ import annotations

import pytest

from echofs.auth.access_keys import AccessKeys, SecretBox
from echofs.core.consistency import Mode
from echofs.core.manifest import NewChunk
from echofs.metadata.buckets import BucketTaken, ObjectMeta
from echofs.metadata.records import CommitRequest
from echofs.metadata.repository import MetadataRepository

from .conftest import ALL_BACKENDS

METADATA_BACKENDS = ALL_BACKENDS


async def _commit(repo: MetadataRepository, owner: str, path: str,  # type: ignore[no-untyped-def]
                  meta: ObjectMeta | None = None):
    chunk = NewChunk("c" * 64, 3, 3, False, ("w1",))
    await repo.claim_chunks([chunk])
    outcome = (await repo.commit_versions([CommitRequest(
        owner=owner, path=path, size=3, blake3="b" * 64, mode=Mode.STRONG,
        replicas_acked=1, chunks=(chunk,), versions_kept=5, object_meta=meta)]))[0]
    return outcome


async def test_buckets(repo: MetadataRepository) -> None:
    buckets = repo.buckets
    made = await buckets.create("photos", "alice")
    assert (made.name, made.owner) == ("photos", "alice")
    with pytest.raises(BucketTaken) as taken:
        await buckets.create("photos", "bob")
    assert taken.value.owner == "alice"
    await buckets.create("music", "alice")
    await buckets.create("bobs", "bob")
    assert [b.name for b in await buckets.owned_by("alice")] == ["music", "photos"]
    assert await buckets.is_empty("photos", "alice")
    await _commit(repo, "alice", "photos/a.jpg")
    assert not await buckets.is_empty("photos", "alice")
    assert await buckets.delete("photos", "alice") is False  # not empty
    assert await buckets.delete("music", "bob") is False  # not bob's
    assert await buckets.delete("music", "alice") is True
    assert await buckets.get("music") is None


async def test_object_meta_follows_versions_and_files(repo: MetadataRepository) -> None:
    buckets = repo.buckets
    meta = ObjectMeta('"abc"', {"Content-Type": "text/plain"}, {"colour": "blue"})
    record, version = await _commit(repo, "alice", "b/k", meta)
    assert await buckets.meta(record.file_id, version.version) == meta
    assert await buckets.metas([(record.file_id, version.version), ("x" * 32, 1)]) == {
        (record.file_id, version.version): meta}
    await repo.delete_file(record.file_id)
    assert await buckets.meta(record.file_id, version.version) is None


async def test_access_keys_of_deleted_accounts_sign_nothing(repo: MetadataRepository) -> None:
    users = repo.users
    admin = await users.create("admin", "h")
    user = await users.create("user", "h")
    keys = AccessKeys(repo.access_keys, "s" * 40, ttl=0)
    record, secret = await keys.create(user.user_id)
    owner = await keys.owner_of(record.access_key_id)
    assert owner is not None and (owner.user_id, owner.secret) == (user.user_id, secret)
    assert secret not in record.secret_sealed  # stored sealed, not as it is
    assert await AccessKeys(keys.repo, "another server secret" * 2, ttl=0).owner_of(
        record.access_key_id) is None
    await users.delete(user.user_id)
    assert await keys.owner_of(record.access_key_id) is None
    assert admin.user_id


def test_sealed_secrets_open_only_for_their_key_id() -> None:
    box = SecretBox("t" * 40)
    sealed = box.seal("EKONE", "the secret")
    assert box.open("EKONE", sealed) == "the secret"
    assert box.open("EKTWO", sealed) is None
    assert box.open("EKONE", "garbage") is None
