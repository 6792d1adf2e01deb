"""The read memo of a sole writer, seen through the repository: answers kept,
written through by commits, and forgotten exactly by the writes that change
them."""

from __future__ import annotations

import pytest

from echofs.core.consistency import Mode
from echofs.core.errors import NotFound
from echofs.core.vocabulary import ReplicationReason
from echofs.metadata.consistency import Transition
from echofs.metadata.memoized import memo_key
from echofs.metadata.repository import MetadataRepository

from .conftest import chunk, upload

# -- the read memo of a sole writer -------------------------------------------

async def test_memoized_reads_follow_every_write(repo: MetadataRepository) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "f", [chunk("m1")])
    first = await repo.find_file("alice", "f")
    assert await repo.find_file("alice", "f") is first  # served from memory
    assert repo.memo.hits == 2  # the commit wrote its answer through
    await upload(repo, "alice", "f", [chunk("m2")])
    second = await repo.find_file("alice", "f")
    assert second.current_version == 2
    version = await repo.get_version(second.file_id)
    assert version.chunks[0].replicas == ("w1",)
    await repo.add_replicas(chunk("m2").chunk_id, ["w2"])
    version = await repo.get_version(second.file_id)
    assert version.chunks[0].replicas == ("w1", "w2")
    await repo.delete_file(second.file_id, "alice")
    with pytest.raises(NotFound):
        await repo.find_file("alice", "f")


async def test_an_answer_read_across_a_write_is_not_kept(repo: MetadataRepository) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "f", [chunk("r1")])
    began = repo.memo.generation
    answer = await repo.find_file("alice", "f")
    await upload(repo, "alice", "f", [chunk("r2")])
    # What a query that began before the write read may be old: not stored.
    repo.memo.put(memo_key(MetadataRepository.find_file, "alice", "f"), began, answer,
                  (("file", answer.file_id), ("path", "alice", "f")))
    assert (await repo.find_file("alice", "f")).current_version == 2


async def test_a_new_version_forgets_only_its_own_file(repo: MetadataRepository) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "a", [chunk("a1")])
    await upload(repo, "alice", "b", [chunk("b1")])
    a = await repo.find_file("alice", "a")
    b = await repo.find_file("alice", "b")
    with pytest.raises(NotFound):
        await repo.find_file("alice", "new")
    await upload(repo, "alice", "a", [chunk("a2")])
    assert await repo.find_file("alice", "b") is b  # untouched: still in memory
    assert (await repo.find_file("alice", "a")).current_version == 2
    assert a.current_version == 1
    # "No such file" was remembered, and is forgotten when the file appears.
    with pytest.raises(NotFound):
        await repo.find_file("alice", "new")
    await upload(repo, "alice", "new", [chunk("n1")])
    assert (await repo.find_file("alice", "new")).current_version == 1


async def test_new_copies_of_a_shared_chunk_reach_every_file_that_uses_it(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    shared = chunk("shared", replicas=("w1",))
    await upload(repo, "alice", "first", [shared])
    first = await repo.find_file("alice", "first")
    assert (await repo.get_version(first.file_id)).chunks[0].replicas == ("w1",)
    # Another upload of the same bytes stored fresh copies (w1 was away).
    await upload(repo, "alice", "second", [chunk("shared", replicas=("w2", "w3"))])
    version = await repo.get_version(first.file_id)
    assert version.chunks[0].replicas == ("w1", "w2", "w3")


async def test_a_commit_leaves_exactly_what_the_database_would_answer(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    a, b = chunk("wt-a", replicas=("w1", "w2")), chunk("wt-b", size=50, replicas=("w3",))
    await upload(repo, "alice", "wt", [a, b])
    hits = repo.memo.hits
    record = await repo.find_file("alice", "wt")
    version = await repo.get_version(record.file_id, None, "alice")
    assert repo.memo.hits == hits + 2  # both written through by the commit
    repo.memo = None
    assert record == await repo.find_file("alice", "wt")
    assert version == await repo.get_version(record.file_id, None, "alice")


async def test_a_copy_added_forgets_only_the_versions_using_its_chunk(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "x", [chunk("cx")])
    await upload(repo, "alice", "y", [chunk("cy")])
    x = await repo.find_file("alice", "x")
    y = await repo.find_file("alice", "y")
    y_version = await repo.get_version(y.file_id, None, "alice")
    await repo.add_replicas(chunk("cx").chunk_id, ["w2"])
    assert await repo.get_version(y.file_id, None, "alice") is y_version  # kept
    assert (await repo.get_version(x.file_id, None, "alice")).chunks[0].replicas == ("w1", "w2")
    await repo.enqueue_replication(chunk("cx").chunk_id, "w3", ReplicationReason.REHOME)
    [task] = await repo.due_replications()
    await repo.complete_replication(task)
    assert (await repo.get_version(x.file_id, None, "alice")).chunks[0].replicas == (
        "w1", "w2", "w3")
    assert await repo.get_version(y.file_id, None, "alice") is y_version


# -- one key per call, however it is spelled ---------------------------------------


async def test_keyword_and_positional_calls_share_one_entry(repo: MetadataRepository) -> None:
    await upload(repo, "alice", "k", [chunk("k1")])
    repo.keep_read_answers()  # empty: nothing written through yet
    assert repo.memo is not None
    record = await repo.find_file("alice", "k")
    assert await repo.find_file(owner="alice", path="k") is record
    version = await repo.get_version(record.file_id, None, "alice")
    assert await repo.get_version(record.file_id, owner="alice") is version
    assert await repo.get_version(file_id=record.file_id, version=None, owner="alice") is version
    assert await repo.get_file(record.file_id) is await repo.get_file(record.file_id, None)
    assert repo.memo.hits == 4
    assert len(repo.memo) == 3


async def test_write_through_is_found_by_the_read_paths_own_calls(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    record, _ = await upload(repo, "alice", "wt", [chunk("wt1")])
    assert repo.memo.hits == 0
    await repo.find_file(owner="alice", path="wt")
    await repo.get_version(record.file_id, owner="alice")
    await repo.get_version(record.file_id, None, "alice")
    assert repo.memo.hits == 3
    assert repo.memo.misses == 0


async def test_a_delete_forgets_only_its_own_file(repo: MetadataRepository) -> None:
    repo.keep_read_answers()
    gone, _ = await upload(repo, "alice", "gone", [chunk("g1")])
    kept, _ = await upload(repo, "alice", "kept", [chunk("k1")])
    kept_record = await repo.find_file("alice", "kept")
    kept_version = await repo.get_version(kept.file_id, None, "alice")
    await repo.delete_file(gone.file_id)
    assert await repo.find_file("alice", "kept") is kept_record
    assert await repo.get_version(kept.file_id, None, "alice") is kept_version
    with pytest.raises(NotFound):
        await repo.find_file("alice", "gone")
    with pytest.raises(NotFound):
        await repo.get_version(gone.file_id, None, "alice")


# -- writes to tables no answer reads ------------------------------------------------


async def test_accounts_and_controller_state_leave_memoized_answers_in_place(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    record, _ = await upload(repo, "alice", "f", [chunk("f1")])
    found = await repo.find_file("alice", "f")
    version = await repo.get_version(record.file_id, None, "alice")
    generation, entries = repo.memo.generation, len(repo.memo)

    await repo.users.create("carol", "hash")
    controller = repo.consistency
    await controller.record_transitions([Transition(
        0, 1.0, record.file_id, Mode.STRONG, Mode.AVAILABLE, "emergency", 0.9, {})])
    await controller.set_hint(record.file_id, "strong")
    await controller.add_critical_keys([record.file_id])
    await controller.set_override("hybrid")

    assert (repo.memo.generation, len(repo.memo)) == (generation, entries)
    assert await repo.find_file("alice", "f") is found
    assert await repo.get_version(record.file_id, None, "alice") is version
    # ...and those writes did happen.
    assert (await repo.users.by_username("carol")) is not None
    assert [m.mode for m in await controller.modes()] == [Mode.AVAILABLE]
    assert await controller.override() == "hybrid"
