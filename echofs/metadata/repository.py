"""The metadata repository: every query EchoFS makes on files, versions and
chunks, and nothing else — one public object over the parts of
``echofs.metadata`` (see the package docstring for the parts and the
concurrency rules they keep).

The parts are mixins over one base (:class:`Transactions`) rather than
separate objects the repository forwards to: the roles use one object with
every method (``MetadataRepository``), and each part needs the same
sessions, SQLite writer lock and read memo, which the base holds once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from echofs.metadata.chunks import Chunks
from echofs.metadata.collection import Collection
from echofs.metadata.commits import Commits
from echofs.metadata.files import FileQueries
from echofs.metadata.records import ChunkClaim, CommitRequest, StoreTotals
from echofs.metadata.replication_queue import ReplicationQueue
from echofs.metadata.upload_sessions import UploadSessions

if TYPE_CHECKING:
    from echofs.metadata.access_keys import AccessKeysRepository
    from echofs.metadata.buckets import BucketsRepository
    from echofs.metadata.consistency import ConsistencyRepository
    from echofs.metadata.s3_uploads import S3UploadsRepository
    from echofs.metadata.users import UsersRepository

__all__ = ["ChunkClaim", "CommitRequest", "MetadataRepository", "StoreTotals"]


class MetadataRepository(FileQueries, Commits, Chunks, ReplicationQueue, Collection,
                         UploadSessions):
    """The metadata store of one master: files and versions, their commits,
    chunks and copies, the replication queue, garbage collection and
    resumable upload sessions."""

    # The parts on the same database that keep no memoized answers; made on
    # use (they hold nothing but the repository), imported late because
    # they import this module.

    @property
    def users(self) -> UsersRepository:
        from echofs.metadata.users import UsersRepository

        return UsersRepository(self)

    @property
    def access_keys(self) -> AccessKeysRepository:
        from echofs.metadata.access_keys import AccessKeysRepository

        return AccessKeysRepository(self)

    @property
    def buckets(self) -> BucketsRepository:
        from echofs.metadata.buckets import BucketsRepository

        return BucketsRepository(self)

    @property
    def s3_uploads(self) -> S3UploadsRepository:
        from echofs.metadata.s3_uploads import S3UploadsRepository

        return S3UploadsRepository(self)

    @property
    def consistency(self) -> ConsistencyRepository:
        from echofs.metadata.consistency import ConsistencyRepository

        return ConsistencyRepository(self)
