"""S3's per-version metadata commits with its version, on every engine: in
group commits and upload-session completion, and it goes with its version
(retention, deleting one version, deleting the file). The SQL engines' own
steps: test_object_meta_sql.py."""

from __future__ import annotations

import dataclasses

from echofs.metadata.records import ObjectMeta
from echofs.metadata.repository import MetadataRepository
from echofs.metadata.upload_sessions import SessionCommit

from .conftest import ALL_BACKENDS, chunk, request
from .test_upload_sessions import new_session, record, stored

METADATA_BACKENDS = ALL_BACKENDS


def _meta(n: int) -> ObjectMeta:
    return ObjectMeta(f'"{n:032x}"', {"Content-Type": "text/plain"}, {"n": str(n)})


async def _commit(repo: MetadataRepository, path: str, meta: ObjectMeta | None, *,
                  versions_kept: int = 10, name: str | None = None):  # type: ignore[no-untyped-def]
    chunks = [chunk(name or f"{path}/{meta}")]
    await repo.claim_chunks(chunks)
    [outcome] = await repo.commit_versions([dataclasses.replace(
        request("alice", path, chunks, versions_kept=versions_kept), object_meta=meta)])
    assert not isinstance(outcome, Exception)
    return outcome


async def test_meta_commits_with_its_version(repo: MetadataRepository) -> None:
    buckets = repo.buckets
    record_, version = await _commit(repo, "b/k", _meta(1))
    assert await buckets.meta(record_.file_id, version.version) == _meta(1)
    # A version without (the REST API's) has none; the next S3 one has its own.
    _, plain = await _commit(repo, "b/k", None, name="plain")
    assert await buckets.meta(record_.file_id, plain.version) is None
    _, third = await _commit(repo, "b/k", _meta(3))
    assert await buckets.metas([(record_.file_id, v) for v in (1, 2, 3)]) == {
        (record_.file_id, 1): _meta(1), (record_.file_id, 3): _meta(3)}
    assert third.version == 3


async def test_group_commit_writes_each_requests_meta(repo: MetadataRepository) -> None:
    buckets = repo.buckets
    chunks = [chunk("g1"), chunk("g2"), chunk("g3")]
    await repo.claim_chunks(chunks)
    outcomes = await repo.commit_versions([
        dataclasses.replace(request("alice", "b/one", [chunks[0]]), object_meta=_meta(1)),
        request("alice", "b/two", [chunks[1]]),
        dataclasses.replace(request("alice", "b/one", [chunks[2]]), object_meta=_meta(2)),
    ])
    (one, v1), (two, _), (_, v3) = outcomes  # type: ignore[misc]
    assert (v1.version, v3.version) == (1, 2)
    assert await buckets.metas([(one.file_id, 1), (two.file_id, 1), (one.file_id, 2)]) == {
        (one.file_id, 1): _meta(1), (one.file_id, 2): _meta(2)}


async def test_meta_goes_with_its_version(repo: MetadataRepository) -> None:
    buckets = repo.buckets
    for n in (1, 2, 3):
        record_, _ = await _commit(repo, "b/kept", _meta(n), versions_kept=2)
    file_id = record_.file_id
    # Retention dropped version 1, and its meta with it.
    assert await buckets.metas([(file_id, n) for n in (1, 2, 3)]) == {
        (file_id, 2): _meta(2), (file_id, 3): _meta(3)}
    await repo.delete_file(file_id, "alice", 2)
    assert await buckets.meta(file_id, 2) is None
    assert await buckets.meta(file_id, 3) == _meta(3)
    await repo.delete_file(file_id, "alice")
    assert await buckets.meta(file_id, 3) is None


async def test_session_completion_commits_the_meta(repo: MetadataRepository) -> None:
    buckets = repo.buckets
    session = await new_session(repo, path="b/multi")
    for part in (stored(0, "m0"), stored(1, "m1")):
        await record(repo, session.session_id, part)
    commit = SessionCommit("f" * 64, ((0, f"{0:064x}"), (1, f"{1:064x}")), 200, 5,
                           _meta(9))
    record_, version, made = await repo.complete_upload_session(session.session_id, commit)
    assert made and await buckets.meta(record_.file_id, version.version) == _meta(9)
    # A retried complete answers the same version and keeps its meta.
    again = await repo.complete_upload_session(session.session_id, commit)
    assert again[2] is False
    assert await buckets.meta(record_.file_id, version.version) == _meta(9)
