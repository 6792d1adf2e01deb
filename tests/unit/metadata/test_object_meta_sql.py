"""S3's per-version metadata on the SQL engines: written in the version's own
transaction (a failure after the version's rows undoes both), nothing left by
a refused request, and the longest escaped S3 key fits the path column."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from echofs.core.errors import Conflict
from echofs.metadata import commits
from echofs.metadata.models import ObjectMetaRow
from echofs.metadata.repository import MetadataRepository
from echofs.s3.keys import file_path

from .conftest import SQL_BACKENDS, chunk, request, scalar
from .test_object_meta import _commit, _meta

# They break the SQL commit's own steps and read SQL rows.
METADATA_BACKENDS = SQL_BACKENDS


async def test_a_failure_after_the_version_is_written_leaves_neither(
        repo: MetadataRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    """The meta is written after the version's rows, inside the same body:
    if that step fails, the version is rolled back with it."""
    buckets = repo.buckets
    written = []

    def failing(db, metas):  # type: ignore[no-untyped-def]
        written.append(metas)
        raise RuntimeError("the master stopped here")

    monkeypatch.setattr(commits, "_record_object_meta", failing)
    chunks = [chunk("doomed")]
    await repo.claim_chunks(chunks)
    with pytest.raises(RuntimeError):
        await repo.commit_versions([dataclasses.replace(request("alice", "b/doomed", chunks),
                                                        object_meta=_meta(7))])
    assert written  # the version's rows were in, then the meta's step failed
    assert await repo.list_files(owner="alice") == []
    monkeypatch.undo()
    record_, version = await _commit(repo, "b/doomed", _meta(8), name="doomed")
    assert version.version == 1  # the failed attempt left no version behind
    assert await buckets.meta(record_.file_id, 1) == _meta(8)


async def test_a_refused_request_leaves_no_meta(repo: MetadataRepository) -> None:
    never_claimed = chunk("gone")
    [outcome] = await repo.commit_versions([dataclasses.replace(
        request("alice", "b/gone", [never_claimed]), object_meta=_meta(1))])
    assert isinstance(outcome, Conflict)
    assert await repo.list_files(owner="alice") == []
    assert await scalar(repo, select(func.count()).select_from(ObjectMetaRow)) == 0


async def test_the_longest_escaped_key_fits_the_path_column(repo: MetadataRepository) -> None:
    """PostgreSQL's path column holds 1024 characters: a 1024-byte key under
    a 63-character bucket, escaped, fits, and so does its unique index entry."""
    buckets = repo.buckets
    for key in ("x" * 1024, "é" * 512, "a//" * 341 + "z", "\U0001f600" * 256):
        path = file_path("b" * 63, key)
        record_, version = await _commit(repo, path, _meta(len(key)), name=key)
        assert record_.path == path
        assert (await repo.find_file("alice", path)).file_id == record_.file_id
        assert await buckets.meta(record_.file_id, version.version) == _meta(len(key))
