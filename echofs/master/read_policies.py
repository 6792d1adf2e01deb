"""Which version a read gets, per consistency mode.

``strong`` and ``hybrid`` reads are strict: the version asked for, or the
current one, through the manifest cache (:mod:`echofs.master.manifests`).
An ``available`` read of the current version serves the newest version that
can be assembled from live workers, and says so (``stale``) when that is
older than the latest committed one. A read naming a version is strict in
every mode. The policies are looked up in :data:`READ_POLICIES`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from echofs.core.consistency import Mode
from echofs.core.errors import ChunkUnavailable
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.master.manifests import ManifestReader
from echofs.master.membership import WorkerRegistry
from echofs.master.policy_router import ModeRouter
from echofs.metadata.repository import MetadataRepository


@dataclass(frozen=True, slots=True)
class VersionSources:
    """Where a read policy finds versions and who can serve them."""

    manifests: ManifestReader
    repo: MetadataRepository
    registry: WorkerRegistry


@dataclass(frozen=True, slots=True)
class ReadChoice:
    version: VersionRecord
    stale: bool  # older than the file's latest committed version


class ReadPolicy(abc.ABC):
    @abc.abstractmethod
    async def choose(self, record: FileRecord, number: int | None,
                     sources: VersionSources) -> ReadChoice:
        """The version to serve for ``record`` (``number`` if the caller named
        one); ``record`` was just read from the database."""


READ_POLICIES: ModeRouter[ReadPolicy] = ModeRouter("read")


@READ_POLICIES.register(Mode.STRONG, Mode.HYBRID)
class LatestRead(ReadPolicy):
    async def choose(self, record: FileRecord, number: int | None,
                     sources: VersionSources) -> ReadChoice:
        return ReadChoice(await sources.manifests.version(record, number), stale=False)


@READ_POLICIES.register(Mode.AVAILABLE)
class NewestReadableRead(ReadPolicy):
    async def choose(self, record: FileRecord, number: int | None,
                     sources: VersionSources) -> ReadChoice:
        if number is not None:
            return ReadChoice(await sources.manifests.version(record, number), stale=False)
        version = await newest_readable_version(record, sources)
        return ReadChoice(version, stale=version.version != record.current_version)


async def newest_readable_version(record: FileRecord, sources: VersionSources) -> VersionRecord:
    """Newest version whose every chunk has a copy on a live worker."""
    live = set(sources.registry.live_ids())
    repo = sources.repo
    for summary in await repo.list_versions(record.file_id, record.owner):  # newest first
        # The summaries carry no replicas: each candidate's manifest is read
        # with them, newest first, until one can be assembled.
        version = await repo.get_version(record.file_id, summary.version, record.owner)
        if all(live.intersection(chunk.replicas) for chunk in version.chunks):
            return version
    raise ChunkUnavailable("no version of this file can be assembled from live workers")
