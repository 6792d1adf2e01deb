"""Files and versions as readers see them: get, find, list, delete, totals
(the SQL repository's ``echofs.metadata.files``), and the items they are
made of, which commits write.

A file is two items with the same attributes (``file_id``, ``owner``,
``path``, ``current_version``, and its current version's ``size``,
``blake3``, ``mode``; ``created_at``, ``updated_at``): its head
``F#<owner>`` / ``P#<path>``, found by name, and ``I#<file_id>`` /
``FILE``, found by id. Every change writes both in one transaction whose
condition is on the head's ``current_version``, so they never disagree.
The head is also in ``gsi1`` under one of a few listing shards
(``FL#<n>`` / ``<path>\\x01<owner>``): everyone's files in (path, owner)
order are a merge of those shards, and no single index partition takes
every commit's write. A path (or owner) too long for a sort key is keyed
by a cut of it and a digest (``long_keys``); the item's ``path`` is the
whole name, which a find checks and a long prefix's listing filters on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import json
import random
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from echofs.core.consistency import Mode
from echofs.core.errors import Conflict, NotFound
from echofs.core.manifest import ChunkRef, FileRecord, VersionRecord
from echofs.metadata.dynamodb.base import (
    CHUNKS,
    FILES,
    INDEX,
    DynamoBase,
    chunk_key,
    each,
    version_sort_key,
)
from echofs.metadata.dynamodb.connection import (
    decode,
    encode,
    transaction_cancelled,
    value,
)
from echofs.metadata.dynamodb.long_keys import OWNER_KEY_BYTES, key_prefix, key_text
from echofs.metadata.records import StoreTotals

if TYPE_CHECKING:
    from echofs.metadata.buckets import ObjectMeta

# A manifest of up to this many chunks lives in its version item; a longer
# one in pages of PAGE_CHUNKS (about 80 bytes a chunk: far below the 400 KB
# an item may hold).
INLINE_CHUNKS = 100
PAGE_CHUNKS = 1000
LISTING_SHARDS = 8
# How long a write that keeps losing its condition to concurrent writers of
# the same file tries again before giving up with a Conflict.
WRITE_DEADLINE = 60.0
_SEPARATOR = "\x01"  # below every character a name may hold (no control characters)


def head_key(owner: str, path: str) -> tuple[str, str]:
    # An owner of up to 255 characters fits a partition key (2048 bytes); a
    # path may not fit a sort key, so a long one is cut (``long_keys``).
    return f"F#{owner}", f"P#{key_text(path)}"


def file_key(file_id: str) -> tuple[str, str]:
    return f"I#{file_id}", "FILE"


def version_key(file_id: str, version: int) -> tuple[str, str]:
    return f"I#{file_id}", version_sort_key(version)


def page_key(manifest_id: str, page: int) -> tuple[str, str]:
    return f"M#{manifest_id}", f"{page:06d}"


def meta_key(file_id: str, version: int) -> tuple[str, str]:
    return f"I#{file_id}", f"S#{version:010d}"


def meta_item(file_id: str, version: int, meta: ObjectMeta) -> dict[str, Any]:
    """S3's metadata of a version as its item (JSON text, as SQL keeps it)."""
    pk, sk = meta_key(file_id, version)
    return {"pk": pk, "sk": sk, "etag": meta.etag,
            "headers": json.dumps(meta.headers, sort_keys=True),
            "user_meta": json.dumps(meta.user_meta, sort_keys=True)}


def listing_keys(owner: str, path: str) -> dict[str, str]:
    """A head's place in the index of everyone's files."""
    shard = zlib.crc32(f"{owner}{_SEPARATOR}{path}".encode()) % LISTING_SHARDS
    return {"g1pk": f"FL#{shard}", "g1sk": listing_sort_key(path, owner)}


def listing_sort_key(path: str, owner: str) -> str:
    """(path, owner) as one sort key in that order: at most 1017 bytes."""
    return f"{key_text(path)}{_SEPARATOR}{key_text(owner, OWNER_KEY_BYTES)}"


def file_items(record: FileRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """The head and the by-id item of a file."""
    fields = {"file_id": record.file_id, "owner": record.owner, "path": record.path,
              "current_version": record.current_version, "size": record.size,
              "blake3": record.blake3, "mode": record.mode.value,
              "created_at": record.created_at, "updated_at": record.updated_at}
    pk, sk = head_key(record.owner, record.path)
    head = {"pk": pk, "sk": sk, **fields, **listing_keys(record.owner, record.path)}
    pk, sk = file_key(record.file_id)
    return head, {"pk": pk, "sk": sk, **fields}


def file_record(item: dict[str, Any]) -> FileRecord:
    return FileRecord(
        file_id=item["file_id"], owner=item["owner"], path=item["path"],
        current_version=int(item["current_version"]), size=int(item["size"]),
        blake3=item["blake3"], mode=Mode(item["mode"]),
        created_at=float(item["created_at"]), updated_at=float(item["updated_at"]))


def version_record(item: dict[str, Any], chunks: tuple[ChunkRef, ...] = ()) -> VersionRecord:
    return VersionRecord(
        file_id=item["file_id"], version=int(item["version"]), size=int(item["size"]),
        blake3=item["blake3"], chunk_count=int(item["chunk_count"]), mode=Mode(item["mode"]),
        replicas_acked=int(item["replicas_acked"]), created_at=float(item["created_at"]),
        chunks=chunks)


def head_condition(current_version: int, file_id: str) -> dict[str, Any]:
    """The condition every change of an existing file puts on its head."""
    return {"ConditionExpression": "current_version = :cur AND file_id = :fid",
            "ExpressionAttributeValues": {":cur": value(current_version),
                                          ":fid": value(file_id)}}


def conflict_lost() -> Conflict:
    return Conflict("too many concurrent changes to this file; retry",
                    code="concurrent_update")


class DynamoFiles(DynamoBase):
    # -- reads ---------------------------------------------------------------------------

    async def get_file(self, file_id: str, owner: str | None = None) -> FileRecord:
        return file_record(await self._file_item(file_id, owner))

    async def find_file(self, owner: str, path: str) -> FileRecord:
        item = await self.db.get(FILES, *head_key(owner, path))
        # A long name's key is cut with a digest: the name itself decides.
        if item is None or item["path"] != path:
            raise NotFound(f"no file named {path!r}")
        return file_record(item)

    async def get_version(self, file_id: str, version: int | None = None,
                          owner: str | None = None) -> VersionRecord:
        """A version (default: the current one) with its manifest and replicas."""
        for _ in range(3):
            file = await self._file_item(file_id, owner)
            number = int(file["current_version"]) if version is None else version
            item = await self.db.get(FILES, *version_key(file_id, number))
            # The current version may have been deleted between the two
            # reads (the file falling back to an older one): read again.
            if item is not None or version is not None:
                break
        if item is None:
            raise NotFound(f"file {file_id!r} has no version {number}")
        entries = await self.manifest(item)
        chunk_items = await self.db.get_many(
            CHUNKS, [chunk_key(i) for i in dict.fromkeys(e[0] for e in entries)])
        chunks: list[ChunkRef] = []
        offset = 0
        for seq, (chunk_id, size, compressed) in enumerate(entries):
            found = chunk_items.get(chunk_key(chunk_id)) or {}
            chunks.append(ChunkRef(seq, chunk_id, offset, int(size), bool(compressed),
                                   tuple(sorted(found.get("replicas") or {}))))
            offset += int(size)
        return version_record(item, tuple(chunks))

    async def list_versions(self, file_id: str, owner: str | None = None
                            ) -> list[VersionRecord]:
        await self._file_item(file_id, owner)
        return [version_record(item) async for item in self.db.query(
            FILES, KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues=encode({":pk": f"I#{file_id}", ":v": "V#"}),
            ProjectionExpression=", ".join(_VERSION_FIELDS),
            ExpressionAttributeNames=_VERSION_FIELDS, ScanIndexForward=False)]

    async def list_files(self, *, owner: str | None, prefix: str = "",
                         after: tuple[str, str] | None = None,
                         limit: int = 100) -> list[FileRecord]:
        """Files in (path, owner) order; ``after`` is the last (path, owner)
        seen. One owner's: a strongly consistent Query of their heads.
        Everyone's: a merge of the listing shards of ``gsi1`` (eventually
        consistent, as every index is)."""
        if limit < 1:
            return []
        # A prefix longer than a key holds matches every long name sharing
        # its cut prefix: those are filtered on the whole path.
        keyed, filtered = key_prefix(prefix)
        wanted = prefix if filtered else ""
        if owner is not None:
            start, inclusive = f"P#{keyed}", True
            if after is not None:
                # (path, owner) > after: the same path still comes after it
                # if this owner sorts after the one seen.
                bound, open_after = f"P#{key_text(after[0])}", owner > after[1]
                if bound > start or (bound == start and not open_after):
                    start, inclusive = bound, open_after
            rows = self._range(FILES, None, "pk", f"F#{owner}", "sk", start, inclusive,
                               f"P#{keyed}", wanted, limit)
            return [file_record(item) async for item in rows]
        start, inclusive = keyed, True
        if after is not None and listing_sort_key(*after) >= start:
            start, inclusive = listing_sort_key(*after), False
        shards = [[item async for item in self._range(
            FILES, INDEX, "g1pk", f"FL#{shard}", "g1sk", start, inclusive, keyed, wanted,
            limit)] for shard in range(LISTING_SHARDS)]
        # Python orders str by code point, which is UTF-8's byte order too.
        merged = heapq.merge(*shards, key=lambda item: str(item["g1sk"]))
        return [file_record(item) for item in itertools.islice(merged, limit)]

    async def _range(self, role: str, index: str | None, pk_name: str, pk: str,
                     sk_name: str, start: str, inclusive: bool, prefix: str,
                     path_prefix: str, limit: int) -> AsyncIterator[dict[str, Any]]:
        """At most ``limit`` items of one partition from ``start`` on (in
        sort-key order) while their sort key begins with ``prefix``; with a
        ``path_prefix``, only those whose whole path begins with it."""
        condition, values, names = "#pk = :pk", {":pk": pk}, {"#pk": pk_name}
        if start:  # a key may not be empty, nor compared with the empty string
            condition += f" AND #sk {'>=' if inclusive else '>'} :start"
            values[":start"], names["#sk"] = start, sk_name
        found = 0
        async for item in self.db.query(
                role, index=index, limit=None if path_prefix else limit,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=encode(values)):
            if not item[sk_name].startswith(prefix):
                return  # past the prefix: nothing later can match
            if not item["path"].startswith(path_prefix):
                continue
            yield item
            found += 1
            if found >= limit:
                return

    # -- delete ----------------------------------------------------------------------------

    async def delete_file(self, file_id: str, owner: str | None = None,
                          version: int | None = None) -> int:
        """Delete a file (or one version of it); returns how many versions went.

        One transaction, conditional on the head's current version, changes
        the file (removes it, or the version and moves the head); then the
        versions removed give back their chunk references. A concurrent
        commit makes the condition fail: read again and retry."""
        deadline = time.monotonic() + WRITE_DEADLINE
        delay = 0.01
        while True:
            done = await self._try_delete(file_id, owner, version)
            if done is not None:
                return done
            if time.monotonic() > deadline:
                raise conflict_lost()
            delay = await backoff(delay)

    async def _try_delete(self, file_id: str, owner: str | None,
                          version: int | None) -> int | None:
        """One attempt; None if a concurrent change got in the way."""
        now = time.time()
        file = await self._file_item(file_id, owner)
        record = file_record(file)
        numbers = await self.version_numbers(file_id)
        if version is not None and version not in numbers:
            raise NotFound(f"file {file_id!r} has no version {version}")
        doomed = numbers if version is None else [version]
        remaining = [n for n in numbers if n not in doomed]
        head_pk, head_sk = head_key(record.owner, record.path)
        guard = head_condition(record.current_version, file_id)
        if not remaining:
            transaction = [
                {"Delete": {"TableName": self.db.table(FILES),
                            "Key": encode({"pk": head_pk, "sk": head_sk}), **guard}},
                {"Delete": {"TableName": self.db.table(FILES),
                            "Key": encode({"pk": f"I#{file_id}", "sk": "FILE"})}}]
            if not await self.transact(transaction):
                return None
            # The file is gone for readers; now its versions and their references.
            await self.remove_file_items(file_id, now)
            return len(doomed)
        [number] = doomed
        item = await self.db.get(FILES, *version_key(file_id, number))
        if item is None:
            return None  # pruned or deleted meanwhile: look again
        current = record
        checks: list[dict[str, Any]] = []
        if number == record.current_version:
            fallback = await self.db.get(FILES, *version_key(file_id, max(remaining)))
            if fallback is None:
                return None
            current = FileRecord(
                file_id=file_id, owner=record.owner, path=record.path,
                current_version=int(fallback["version"]), size=int(fallback["size"]),
                blake3=fallback["blake3"], mode=Mode(fallback["mode"]),
                created_at=record.created_at, updated_at=now)
            checks.append({"ConditionCheck": {
                "TableName": self.db.table(FILES), "Key": encode({
                    "pk": fallback["pk"], "sk": fallback["sk"]}),
                "ConditionExpression": "attribute_exists(pk)"}})
        else:
            current = dataclasses.replace(record, updated_at=now)
        head, by_id = file_items(current)
        transaction = [
            {"Delete": {"TableName": self.db.table(FILES),
                        "Key": encode({"pk": item["pk"], "sk": item["sk"]}),
                        "ConditionExpression": "attribute_exists(pk)"}},
            {"Put": {"TableName": self.db.table(FILES), "Item": encode(head), **guard}},
            {"Put": {"TableName": self.db.table(FILES), "Item": encode(by_id)}},
            *checks]
        if not await self.transact(transaction):
            return None
        await self.release_version(item, now)
        return 1

    # -- totals ----------------------------------------------------------------------------

    async def totals(self) -> StoreTotals:
        """How much the store holds (operators' and tests' view of it): a
        Scan of the files and chunks tables, so its cost grows with the store."""
        files = versions = chunks = stored = 0
        async for item in self._scan_table(FILES, "sk = :file OR begins_with(sk, :v)",
                                     {":file": "FILE", ":v": "V#"}, "sk"):
            if item["sk"] == "FILE":
                files += 1
            else:
                versions += 1
        async for item in self._scan_table(CHUNKS, "sk = :chunk", {":chunk": "CHUNK"},
                                     "stored_size"):
            chunks += 1
            stored += int(item.get("stored_size", 0))
        return StoreTotals(files, versions, chunks, stored)

    def _scan_table(self, role: str, condition: str, values: dict[str, Any],
                    projection: str) -> AsyncIterator[dict[str, Any]]:
        return self.db.scan(role, FilterExpression=condition,
                            ExpressionAttributeValues=encode(values),
                            ProjectionExpression=projection, ConsistentRead=True)

    # -- what commits and deletes share ------------------------------------------------

    async def _file_item(self, file_id: str, owner: str | None) -> dict[str, Any]:
        item = await self.db.get(FILES, *file_key(file_id))
        if item is None or (owner is not None and item["owner"] != owner):
            raise NotFound(f"no file with id {file_id!r}")
        return item

    async def version_numbers(self, file_id: str) -> list[int]:
        """The file's version numbers, oldest first."""
        return [int(item["sk"][2:]) async for item in self.db.query(
            FILES, KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues=encode({":pk": f"I#{file_id}", ":v": "V#"}),
            ProjectionExpression="sk")]

    async def manifest(self, item: dict[str, Any]) -> list[tuple[str, int, bool]]:
        """A version item's manifest: (chunk id, size, compressed) in order."""
        if "manifest_id" not in item:
            return [(e[0], int(e[1]), bool(e[2])) for e in item.get("chunks") or []]
        keys = [page_key(item["manifest_id"], page) for page in range(int(item["pages"]))]
        pages = await self.db.get_many(FILES, keys)
        entries: list[tuple[str, int, bool]] = []
        for key in keys:
            page = pages.get(key)
            if page is None:
                raise RuntimeError(f"manifest page {key[1]} of {key[0]} is missing")
            entries.extend((e[0], int(e[1]), bool(e[2])) for e in page["chunks"])
        return entries

    async def transact(self, items: Sequence[dict[str, Any]]) -> bool:
        """One ``TransactWriteItems``; False if a condition did not hold.

        Its token makes the retries of ``call`` (after a conflict or a 5xx)
        idempotent: one that was applied already is not applied twice, nor
        reported as a failed condition."""
        try:
            await self.db.call("transact_write_items", TransactItems=list(items),
                               ClientRequestToken=uuid.uuid4().hex)
        except Exception as exc:
            if transaction_cancelled(exc):
                return False
            raise
        return True

    async def remove_version(self, file_id: str, number: int, now: float) -> bool:
        """Delete a version item and release what it held; False if another
        writer removed it first (and so releases it)."""
        pk, sk = version_key(file_id, number)
        answer = await self.db.call(
            "delete_item", TableName=self.db.table(FILES), Key=encode({"pk": pk, "sk": sk}),
            ReturnValues="ALL_OLD")
        old = answer.get("Attributes")
        if not old:
            return False
        await self.release_version(decode(old), now)
        return True

    async def release_version(self, item: dict[str, Any], now: float) -> None:
        """What a version held once its item is deleted: its chunk
        references (given back after the item went: a crash in between
        leaks, never loses), its manifest pages and its object metadata."""
        entries = await self.manifest(item)
        await self.drop_refs([e[0] for e in entries], now)
        file_id, number = item["file_id"], int(item["version"])
        deletes = [meta_key(file_id, number)]
        if "manifest_id" in item:
            deletes += [page_key(item["manifest_id"], p) for p in range(int(item["pages"]))]
        await self.db.write_many(FILES, deletes=deletes)

    async def remove_file_items(self, file_id: str, now: float) -> None:
        """Everything left under a file's id once its head is gone."""
        numbers = await self.version_numbers(file_id)
        await each(numbers, lambda number: self.remove_version(file_id, number, now))
        # What is left is object metadata without a version (a put_meta
        # racing this delete); versions only ever go through remove_version,
        # which releases them.
        left = [(item["pk"], item["sk"]) async for item in self.db.query(
            FILES, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=encode({":pk": f"I#{file_id}"}),
            ProjectionExpression="pk, sk") if not item["sk"].startswith("V#")]
        await self.db.write_many(FILES, deletes=left)


# A listing of versions leaves their manifests out (names: "size" is reserved).
_VERSION_FIELDS = {f"#{name}": name for name in (
    "file_id", "version", "size", "blake3", "chunk_count", "mode", "replicas_acked",
    "created_at")}


async def backoff(delay: float) -> float:
    """Sleep about ``delay`` (jittered); return the next, longer delay."""
    await asyncio.sleep(delay * (0.5 + random.random()))
    return min(delay * 2, 0.5)
