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

from echofs.metadata.chunks import Chunks
from echofs.metadata.collection import Collection
from echofs.metadata.commits import Commits
from echofs.metadata.files import FileQueries
from echofs.metadata.records import ChunkClaim, CommitRequest, StoreTotals
from echofs.metadata.replication_queue import ReplicationQueue
from echofs.metadata.upload_sessions import UploadSessions

__all__ = ["ChunkClaim", "CommitRequest", "MetadataRepository", "StoreTotals"]


class MetadataRepository(FileQueries, Commits, Chunks, ReplicationQueue, Collection,
                         UploadSessions):
    """The metadata store of one master: files and versions, their commits,
    chunks and copies, the replication queue, garbage collection and
    resumable upload sessions."""
