"""Read policies per mode: which version a read gets and the stale flag."""

from __future__ import annotations

import pytest

from echofs.core.consistency import Mode
from echofs.core.errors import ChunkUnavailable
from echofs.core.manifest import ChunkRef, FileRecord, VersionRecord
from echofs.master.read_policies import READ_POLICIES, VersionSources


def version(number: int, *replicas: tuple[str, ...]) -> VersionRecord:
    chunks = tuple(ChunkRef(seq, f"c{number}-{seq}", seq * 10, 10, replicas=held)
                   for seq, held in enumerate(replicas))
    return VersionRecord("f1", number, 10 * len(chunks), f"b{number}", len(chunks),
                         "available", 1, 0.0, chunks)


# Version 3 is current; its only chunk is on w3. Version 2 is spread over w1 and w2.
VERSIONS = {3: version(3, ("w3",)), 2: version(2, ("w1",), ("w2", "w3")),
            1: version(1, ("w1",))}
RECORD = FileRecord("f1", "alice", "a.txt", 3, 10, "b3", "available", 0.0, 0.0)


class FakeRepo:
    def __init__(self) -> None:
        self.fetched: list[int | None] = []

    async def list_versions(self, file_id: str, owner: str | None = None):
        summaries = [VersionRecord(file_id, n, v.size, v.blake3, v.chunk_count, v.mode,
                                   v.replicas_acked, v.created_at)
                     for n, v in VERSIONS.items()]
        return sorted(summaries, key=lambda v: v.version, reverse=True)

    async def get_version(self, file_id: str, number: int | None = None,
                          owner: str | None = None) -> VersionRecord:
        self.fetched.append(number)
        return VERSIONS[3 if number is None else number]


class FakeManifests:
    def __init__(self) -> None:
        self.asked: list[int | None] = []

    async def version(self, record: FileRecord, number: int | None = None) -> VersionRecord:
        self.asked.append(number)
        return VERSIONS[record.current_version if number is None else number]


class FakeMembership:
    def __init__(self, *live: str) -> None:
        self.live = list(live)

    def live_ids(self) -> list[str]:
        return self.live


def sources(*live: str) -> VersionSources:
    return VersionSources(FakeManifests(), FakeRepo(), FakeMembership(*live))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", [Mode.STRONG, Mode.HYBRID])
async def test_strict_modes_read_the_current_version_whoever_is_up(mode):
    where = sources()  # no live worker at all: strict reads do not look
    choice = await READ_POLICIES[mode].choose(RECORD, None, where)
    assert (choice.version.version, choice.stale) == (3, False)
    assert where.manifests.asked == [None]  # through the manifest cache


@pytest.mark.parametrize("mode", list(Mode))
async def test_a_named_version_is_strict_in_every_mode(mode):
    where = sources("w1")
    choice = await READ_POLICIES[mode].choose(RECORD, 3, where)
    assert (choice.version.version, choice.stale) == (3, False)
    assert where.manifests.asked == [3]


async def test_available_reads_the_current_version_when_it_is_readable():
    choice = await READ_POLICIES[Mode.AVAILABLE].choose(RECORD, None, sources("w3"))
    assert (choice.version.version, choice.stale) == (3, False)


async def test_available_falls_back_to_the_newest_readable_version_and_flags_it():
    where = sources("w1", "w2")
    choice = await READ_POLICIES[Mode.AVAILABLE].choose(RECORD, None, where)
    assert (choice.version.version, choice.stale) == (2, True)
    assert where.repo.fetched == [3, 2]  # newest first, stopping at the first readable


async def test_available_needs_every_chunk_on_a_live_worker():
    # w2 alone holds version 2's second chunk but not its first: version 1 is
    # not on w2 either, so nothing can be assembled.
    with pytest.raises(ChunkUnavailable,
                       match="no version of this file can be assembled from live workers"):
        await READ_POLICIES[Mode.AVAILABLE].choose(RECORD, None, sources("w2"))
