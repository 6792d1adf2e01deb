"""The file service: a commit's effects, version choice, delete — against fakes."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from echofs.controller.signals import ModeUpdate
from echofs.core.consistency import Hint, Mode
from echofs.core.errors import NotFound
from echofs.core.manifest import ChunkRef, FileRecord, VersionRecord
from echofs.master.files import FileService
from echofs.master.modes import ModeTable
from echofs.master.read_policies import VersionSources
from echofs.master.upload import UploadResult
from echofs.metadata.records import ObjectMeta

RECORD = FileRecord("f1", "alice", "a.txt", 2, 10, "b2", "strong", 0.0, 0.0)
V1 = VersionRecord("f1", 1, 10, "b1", 1, "strong", 1, 0.0, (ChunkRef(0, "c1", 0, 10, False,
                                                                     ("w1",)),))
V2 = VersionRecord("f1", 2, 10, "b2", 1, "strong", 1, 0.0, (ChunkRef(0, "c2", 0, 10, False,
                                                                     ("w2",)),))


class FakeUpload:
    def __init__(self, mode: Mode, *, targets: set[str], deferred: bool) -> None:
        self.mode, self.targets, self.deferred_copies = mode, targets, deferred
        self.committed: tuple[str, str, ObjectMeta | None] | None = None

    async def commit(self, *, owner: str, path: str,
                     object_meta: ObjectMeta | None = None) -> UploadResult:
        self.committed = (owner, path, object_meta)
        return UploadResult(RECORD, V2, chunks_deduplicated=2, bytes_deduplicated=20,
                            bytes_stored=0)


class FakePipeline:
    def __init__(self, *, deferred: bool = False) -> None:
        self.deferred = deferred

    def begin(self, mode: Mode) -> FakeUpload:
        return FakeUpload(mode, targets={"w2", "w1"}, deferred=self.deferred)


class FakeRepo:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str | None, int | None]] = []
        self.finds = 0

    async def find_file(self, owner: str, path: str) -> FileRecord:
        self.finds += 1
        if path != RECORD.path:
            raise NotFound("no such file")
        return RECORD

    async def delete_file(self, file_id: str, owner: str | None, version: int | None) -> int:
        self.deleted.append((file_id, owner, version))
        return 1

    async def list_versions(self, file_id: str, owner: str | None = None):
        return [V2, V1]

    async def get_version(self, file_id: str, number: int | None = None,
                          owner: str | None = None) -> VersionRecord:
        return {1: V1, 2: V2}[number or 2]


class FakeManifests:
    def __init__(self) -> None:
        self.invalidated: list[str] = []

    async def version(self, record: FileRecord, number: int | None = None) -> VersionRecord:
        return {1: V1, 2: V2}[number or record.current_version]

    async def invalidate(self, file_id: str) -> None:
        self.invalidated.append(file_id)


class FakeActivity:
    def __init__(self) -> None:
        self.writes: list[tuple[str, set[str]]] = []

    def record(self, object_id: str, workers) -> None:
        self.writes.append((object_id, set(workers)))


class FakeMembership:
    def __init__(self, *live: str) -> None:
        self.live = list(live)

    def live_ids(self) -> list[str]:
        return self.live


class Waker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def service(*, deferred: bool = False, live: tuple[str, ...] = ("w1", "w2"),
            modes: ModeTable | None = None) -> FileService:
    repo, manifests = FakeRepo(), FakeManifests()
    return FileService(
        repo, FakePipeline(deferred=deferred),  # type: ignore[arg-type]
        VersionSources(manifests, repo, FakeMembership(*live)),  # type: ignore[arg-type]
        reader=None, modes=modes or ModeTable(Mode.STRONG),  # type: ignore[arg-type]
        activity=FakeActivity(), replicator=Waker(), collector=Waker())  # type: ignore[arg-type]


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total") or 0.0


# -- writes ------------------------------------------------------------------------------


async def test_commit_applies_every_effect_of_a_new_version():
    files = service()
    chunks_before, bytes_before = counter("echofs_dedup_chunks"), counter("echofs_dedup_bytes")
    upload = await files.begin("alice", "a.txt", None)
    meta = ObjectMeta('"md5"', {"Content-Type": "text/plain"})
    result = await files.commit(upload, owner="alice", path="a.txt", object_meta=meta)
    assert result.file is RECORD
    assert upload.committed == ("alice", "a.txt", meta)  # S3's meta goes with the commit
    assert files.sources.manifests.invalidated == ["f1"]
    assert files.activity.writes == [("f1", {"w1", "w2"})]
    assert files.replicator.woken == 0  # nothing owed
    assert counter("echofs_dedup_chunks") == chunks_before + 2
    assert counter("echofs_dedup_bytes") == bytes_before + 20


async def test_commit_with_copies_owed_wakes_the_replicator():
    files = service(deferred=True)
    upload = await files.begin("alice", "a.txt", Hint.AVAILABLE)
    await files.commit(upload, owner="alice", path="a.txt")
    assert files.replicator.woken == 1


async def test_a_failed_commit_has_no_effects():
    files = service(deferred=True)
    upload = await files.begin("alice", "a.txt", None)

    async def refuse(**_: str) -> UploadResult:
        raise NotFound("gone")

    upload.commit = refuse
    with pytest.raises(NotFound):
        await files.commit(upload, owner="alice", path="a.txt")
    assert files.sources.manifests.invalidated == []
    assert files.activity.writes == [] and files.replicator.woken == 0


async def test_write_mode_follows_hint_default_and_critical_files():
    table = ModeTable(Mode.HYBRID)
    files = service(modes=table)
    assert (await files.begin("alice", "a.txt", None)).mode is Mode.HYBRID
    assert files.repo.finds == 0  # no file has a mode of its own: no lookup
    assert (await files.begin("alice", "a.txt", Hint.STRONG)).mode is Mode.STRONG
    table.apply(ModeUpdate(True, {"f1": ("strong", "critical")}, "available"))
    assert await files.write_mode("alice", "a.txt", Hint.AVAILABLE) is Mode.STRONG
    assert await files.write_mode("alice", "new.txt", None) is Mode.AVAILABLE
    assert await files.write_mode("alice", None, Hint.AVAILABLE) is Mode.AVAILABLE


async def test_files_whose_own_mode_is_the_default_need_no_lookup():
    table = ModeTable(Mode.STRONG)
    files = service(modes=table)
    table.apply(ModeUpdate(True, {"f1": ("strong", "policy"), "f2": ("strong", "policy")},
                           "strong"))
    await files.begin("alice", "a.txt", None)
    assert files.repo.finds == 0
    # The default moves away from theirs: now their own mode matters.
    table.apply(ModeUpdate(False, {}, "available"))
    await files.begin("alice", "a.txt", None)
    assert files.repo.finds == 1


async def test_delete_forgets_the_file_and_wakes_the_collector():
    files = service()
    assert await files.delete("f1", "alice", 2) == 1
    assert files.repo.deleted == [("f1", "alice", 2)]
    assert files.sources.manifests.invalidated == ["f1"]
    assert files.collector.woken == 1


# -- reads -------------------------------------------------------------------------------


async def test_read_serves_the_current_version_under_the_file_mode():
    files = service()
    read = await files.read(RECORD, None)
    assert (read.version, read.mode, read.stale) == (V2, Mode.STRONG, False)
    assert files.stale_reads == 0


async def test_an_available_read_of_an_unreadable_current_version_is_stale_and_counted():
    table = ModeTable(Mode.STRONG)
    table.apply(ModeUpdate(True, {"f1": ("available", "policy")}, "strong"))
    files = service(live=("w1",), modes=table)
    read = await files.read(RECORD, None)
    assert (read.version, read.mode, read.stale) == (V1, Mode.AVAILABLE, True)
    assert files.stale_reads == 1
    assert files.mode_of("f1") is Mode.AVAILABLE
