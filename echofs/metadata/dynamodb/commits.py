"""Publishing finished uploads as new versions (``commit_versions``,
``claim_and_commit``; the SQL repository's ``echofs.metadata.commits``).

A commit is a script of steps, each safe to stop after:

1. take a reference on every chunk an upload uses (only on live ones: a
   chunk the collector claimed refuses, and that upload gets
   ``Conflict(chunk_collected)`` and gives back what it took);
2. record the copies the uploads stored that the store did not know of;
3. write a large manifest's pages (nobody reads them until a version names
   them);
4. publish each version by one transaction conditional on its file's head
   (see the package docstring), reading the head again after losing to a
   concurrent writer, until ``WRITE_DEADLINE``;
5. prune the versions beyond ``versions_kept``.

A crash after 1 leaves references nobody holds (a leak), after 3 pages
nobody names, after 4 versions beyond ``versions_kept`` until the next
commit of that file: never a lost or half-made version.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from echofs.core.errors import Conflict
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.core.retention import versions_to_prune
from echofs.metadata.dynamodb.base import FILES, DynamoBase
from echofs.metadata.dynamodb.connection import encode
from echofs.metadata.dynamodb.files import (
    INLINE_CHUNKS,
    PAGE_CHUNKS,
    WRITE_DEADLINE,
    backoff,
    conflict_lost,
    file_items,
    head_condition,
    head_key,
    meta_item,
    page_key,
    version_key,
)
from echofs.metadata.records import ChunkClaim, CommitRequest

Outcome = tuple[FileRecord, VersionRecord] | Conflict

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.chunks import DynamoChunks
    from echofs.metadata.dynamodb.files import DynamoFiles

    class _Parts(DynamoFiles, DynamoChunks):
        """What commits use of the files and chunks parts."""
else:
    # The repository composes the parts (files and chunks before this one
    # in its bases); inheriting them here would break that order.
    _Parts = DynamoBase


class DynamoCommits(_Parts):
    async def commit_versions(self, requests: Sequence[CommitRequest]) -> list[Outcome]:
        """Commit several finished uploads (group commit).

        Each request becomes the next version of its file, in the order
        given (two requests for one name get consecutive numbers). A request
        whose chunks were collected meanwhile gets a ``Conflict`` in its
        place and leaves no trace; the others commit."""
        for r in requests:  # refused before any write, as SQL's rollback leaves none
            if r.versions_kept < 1:
                raise ValueError("at least one version must be kept")
        now = time.time()
        outcomes: list[Outcome | None] = list(await self._take_refs(requests, now))
        accepted = [r for r, o in zip(requests, outcomes, strict=True) if o is None]
        await self._record_new_copies(accepted, now)
        # Names publish at once; one name's requests in their order.
        by_name: dict[tuple[str, str], list[int]] = defaultdict(list)
        for index, (r, outcome) in enumerate(zip(requests, outcomes, strict=True)):
            if outcome is None:
                by_name[(r.owner, r.path)].append(index)

        async def publish(indices: list[int]) -> None:
            last: FileRecord | None = None
            for index in indices:
                outcome = await self._publish(requests[index], now)
                outcomes[index] = outcome
                if not isinstance(outcome, Conflict):
                    last = outcome[0]
            if last is not None:
                await self._prune(last, requests[indices[-1]].versions_kept, now)

        await asyncio.gather(*(publish(indices) for indices in by_name.values()))
        return [o for o in outcomes if o is not None]

    async def claim_and_commit(self, chunks: Sequence[NewChunk],
                               requests: Sequence[CommitRequest]
                               ) -> tuple[dict[str, ChunkClaim], list[Outcome]]:
        """``claim_chunks(chunks)`` and ``commit_versions(requests)``: one
        call for every upload in flight, whatever step each is at. Unlike
        SQL, not one transaction: each part keeps its own rules."""
        claims = await self.claim_chunks(chunks) if chunks else {}
        return claims, await self.commit_versions(requests) if requests else []

    # -- the steps -------------------------------------------------------------------------

    async def _take_refs(self, requests: Sequence[CommitRequest], now: float
                         ) -> list[Conflict | None]:
        """Step 1, per request: None when every reference was taken."""
        async def one(request: CommitRequest) -> Conflict | None:
            ids = [c.chunk_id for c in request.chunks]
            failed = await self.add_refs(ids, now)
            if not failed:
                return None
            await self.drop_refs([i for i in ids if i not in failed], now)
            return _collected()

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _record_new_copies(self, accepted: Sequence[CommitRequest], now: float) -> None:
        """Step 2: only the copies not known yet are written."""
        pairs = {(c.chunk_id, w) for r in accepted for c in r.chunks for w in c.replicas}
        if not pairs:
            return
        known = await self.replicas_of(sorted({chunk_id for chunk_id, _ in pairs}))
        await self.record_copies(
            sorted(pair for pair in pairs if pair[1] not in known.get(pair[0], ())), now)

    async def _publish(self, request: CommitRequest, now: float) -> Outcome:
        """Steps 3 and 4 for one request; a Conflict (references given
        back, pages removed) if it kept losing until the deadline."""
        manifest, pages = await self._write_manifest(request)
        delay = 0.005
        async with self._publishing(request.owner, request.path):
            deadline = time.monotonic() + WRITE_DEADLINE  # waiting for our turn is free
            while True:
                published = await self._try_publish(request, manifest, now)
                if published is not None:
                    return published
                if time.monotonic() > deadline:
                    break
                delay = await backoff(delay)
        await self.drop_refs([c.chunk_id for c in request.chunks], now)
        await self.db.write_many(FILES, deletes=pages)
        return conflict_lost()

    async def _write_manifest(self, request: CommitRequest
                              ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Step 3: the version item's manifest attributes, and the keys of
        the pages written first when it is large."""
        entries = [[c.chunk_id, c.size, bool(c.compressed)] for c in request.chunks]
        if len(entries) <= INLINE_CHUNKS:
            return {"chunks": entries}, []
        manifest_id = uuid.uuid4().hex
        pages: list[tuple[str, str]] = []
        items = []
        for number, start in enumerate(range(0, len(entries), PAGE_CHUNKS)):
            pk, sk = page_key(manifest_id, number)
            pages.append((pk, sk))
            items.append({"pk": pk, "sk": sk, "chunks": entries[start:start + PAGE_CHUNKS]})
        await self.db.write_many(FILES, puts=items)
        return {"manifest_id": manifest_id, "pages": len(pages)}, pages

    @contextlib.asynccontextmanager
    async def _publishing(self, owner: str, path: str) -> AsyncIterator[None]:
        """This repository's publishers of one name take turns: only other
        masters' writers can then make a transaction lose, instead of every
        upload in flight losing to every other (a round of failed, billed
        transactions per winner)."""
        locks: dict[tuple[str, str], _Turns] = self.__dict__.setdefault("_turns", {})
        turns = locks.setdefault((owner, path), _Turns())
        turns.users += 1
        try:
            async with turns.lock:
                yield
        finally:
            turns.users -= 1
            if not turns.users:
                del locks[(owner, path)]

    async def _try_publish(self, request: CommitRequest, manifest: dict[str, Any],
                           now: float, also: Sequence[dict[str, Any]] = (),
                           head: dict[str, Any] | None = None, new_file_id: str = ""
                           ) -> tuple[FileRecord, VersionRecord] | None:
        """One attempt at the transaction; None if the head moved meanwhile
        (or a condition of ``also``, items written in the same transaction,
        did not hold: an upload session's completion, which also gives the
        ``head`` it read and the id a new file gets)."""
        if not also:
            head = await self.db.get(FILES, *head_key(request.owner, request.path))
        if head is None:
            file_id, number, created_at = new_file_id or uuid.uuid4().hex, 1, now
            guard: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            file_id, created_at = head["file_id"], float(head["created_at"])
            number = int(head["current_version"]) + 1
            guard = head_condition(number - 1, file_id)
        record = FileRecord(
            file_id=file_id, owner=request.owner, path=request.path, current_version=number,
            size=request.size, blake3=request.blake3, mode=request.mode,
            created_at=created_at, updated_at=now)
        version = VersionRecord(
            file_id=file_id, version=number, size=request.size, blake3=request.blake3,
            chunk_count=len(request.chunks), mode=request.mode,
            replicas_acked=request.replicas_acked, created_at=now)
        head_item, by_id = file_items(record)
        pk, sk = version_key(file_id, number)
        version_item = {
            "pk": pk, "sk": sk, "file_id": file_id, "version": number, "size": request.size,
            "blake3": request.blake3, "chunk_count": len(request.chunks),
            "mode": request.mode.value, "replicas_acked": request.replicas_acked,
            "created_at": now, **manifest}
        table = self.db.table(FILES)
        absent = {"ConditionExpression": "attribute_not_exists(pk)"}
        transaction = [
            {"Put": {"TableName": table, "Item": encode(head_item), **guard}},
            {"Put": {"TableName": table, "Item": encode(by_id),
                     **(absent if head is None else {})}},
            {"Put": {"TableName": table, "Item": encode(version_item), **absent}}, *also]
        # S3's metadata of the version, when the request carries it:
        # published with the version.
        object_meta = request.object_meta
        if object_meta is not None:
            transaction.append({"Put": {"TableName": table,
                                        "Item": encode(meta_item(file_id, number, object_meta))}})
        if not await self.transact(transaction):
            return None
        return record, version

    async def _prune(self, record: FileRecord, keep: int, now: float) -> None:
        """Step 5: remove the versions beyond the newest ``keep``. Fewer
        than ``keep`` numbers were ever given: nothing to look up."""
        if record.current_version <= keep:
            return
        doomed = versions_to_prune(await self.version_numbers(record.file_id), keep)
        await asyncio.gather(*(self.remove_version(record.file_id, number, now)
                               for number in doomed))


class _Turns:
    """A name's lock and how many publishers hold or wait for it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _collected() -> Conflict:
    # The collector claimed a chunk this upload relied on (only possible
    # when the upload outlived the grace period), or it was never claimed.
    return Conflict("a chunk of this upload was collected before commit; retry",
                    code="chunk_collected")
