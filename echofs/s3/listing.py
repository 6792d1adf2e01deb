"""ListObjects (v1, ``marker``) and ListObjectsV2 (``continuation-token``,
``start-after``, ``fetch-owner``), with ``prefix`` and ``delimiter``.

The bucket's keys are its owner's file names under ``<bucket>/``, read in
name order a page at a time from the metadata store. With a delimiter, keys
that share the part up to the first delimiter after the prefix are rolled up
into one CommonPrefix, and the listing jumps past all of them in one query,
so a directory of a million files costs one entry, not a million rows.

Keys that are not valid file names live escaped under ``<bucket>/.echofs-s3/``
(``echofs.s3.keys``), in an order of their own: a page merges them, decoded
and sorted, into the plain keys, so the listing is in S3's order (of the key's
UTF-8 bytes) across both. Each page reads the escaped keys under the prefix
(their folder's part for the prefix's whole segments), so these cost in
proportion to their number, the plain keys to the page.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from echofs.core.manifest import FileRecord
from echofs.master.files import FileService
from echofs.metadata.buckets import BucketsRepository
from echofs.s3 import xml
from echofs.s3.buckets import BucketOperations
from echofs.s3.errors import S3Error
from echofs.s3.keys import escaped_ranges, escaped_root, key_of
from echofs.s3.routing import Call

MAX_KEYS = 1000
# A key and its file.
Entry = tuple[str, FileRecord]
# Sorts after every character a key may hold: "prefix/" + this is past
# every key that starts with "prefix/".
_PAST = "\U0010ffff"


@dataclass(slots=True)
class Page:
    keys: list[Entry] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last: str | None = None  # the last key or common prefix returned


class Listing:
    def __init__(self, files: FileService, buckets: BucketsRepository,
                 bucket_ops: BucketOperations) -> None:
        self.files = files
        self.buckets = buckets
        self.bucket_ops = bucket_ops

    async def list_v1(self, request: web.Request, call: Call) -> web.Response:
        return await self._list(call, v2=False)

    async def list_v2(self, request: web.Request, call: Call) -> web.Response:
        return await self._list(call, v2=True)

    async def _list(self, call: Call, *, v2: bool) -> web.Response:
        bucket = await self.bucket_ops.owned(call)
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = max_keys_of(q.get("max-keys"))
        encoding = q.get("encoding-type")
        if encoding not in (None, "url"):
            raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
        encode = xml.Encoder(encoding == "url")
        token = q.get("continuation-token") if v2 else None
        start = (_decode_token(token) if token is not None
                 else q.get("start-after", "") if v2 else q.get("marker", ""))
        page = await self.page(bucket.owner, bucket.name, prefix, delimiter, start, max_keys)
        metas = await self.buckets.metas([(r.file_id, r.current_version)
                                          for _, r in page.keys])
        owner = bucket.owner
        show_owner = not v2 or q.get("fetch-owner") == "true"
        contents = []
        for key, record in page.keys:
            meta = metas.get((record.file_id, record.current_version))
            etag = meta.etag if meta else f'"{record.blake3[:32]}-1"'
            contents.append(
                "<Contents>" + xml.element("Key", encode(key))
                + xml.element("LastModified", xml.iso_time(record.updated_at))
                + xml.element("ETag", etag) + xml.element("Size", record.size)
                + (xml.owner_xml(owner) if show_owner else "")
                + xml.element("StorageClass", "STANDARD") + "</Contents>")
        prefixes = [f"<CommonPrefixes>{xml.element('Prefix', encode(p))}</CommonPrefixes>"
                    for p in page.prefixes]
        # v1 sends its Prefix as given even with encoding-type=url (as S3
        # does: SDKs decode only v1's Delimiter, Marker and NextMarker).
        parts = [xml.element("Name", bucket.name),
                 xml.element("Prefix", encode(prefix) if v2 else prefix)]
        if v2:
            if token is not None:
                parts.append(xml.element("ContinuationToken", token))
            if "start-after" in q:
                parts.append(xml.element("StartAfter", encode(q["start-after"])))
            parts.append(xml.element("KeyCount", len(page.keys) + len(page.prefixes)))
        else:
            parts.append(xml.element("Marker", encode(q.get("marker", ""))))
        parts.append(xml.element("MaxKeys", max_keys))
        if delimiter:
            parts.append(xml.element("Delimiter", encode(delimiter)))
        if encoding:
            parts.append(xml.element("EncodingType", encoding))
        parts.append(xml.element("IsTruncated", "true" if page.truncated else "false"))
        if page.truncated and page.last is not None:
            if v2:
                parts.append(xml.element("NextContinuationToken", _encode_token(page.last)))
            elif delimiter:
                parts.append(xml.element("NextMarker", encode(page.last)))
        body = xml.document("ListBucketResult", *parts, *contents, *prefixes)
        return web.Response(body=body, content_type="application/xml")

    async def page(self, owner: str, bucket: str, prefix: str, delimiter: str, start: str,
                   max_keys: int) -> Page:
        """Up to ``max_keys`` keys and common prefixes after ``start``, in order."""
        page = Page()
        after = _skip_point(prefix, delimiter, start)
        if max_keys == 0:
            return page  # nothing asked for: not truncated (as S3 and MinIO answer)
        plain = _PlainKeys(self.files, owner, bucket, prefix, after,
                           min(MAX_KEYS, max_keys + 1))
        escaped = await self._escaped(owner, bucket, prefix, after)
        taken = 0  # escaped keys consumed
        while True:
            head = await plain.peek()
            if taken < len(escaped) and (head is None or escaped[taken][0] < head[0]):
                entry, from_plain = escaped[taken], False
            elif head is not None:
                entry, from_plain = head, True
            else:
                return page
            if len(page.keys) + len(page.prefixes) == max_keys:
                page.truncated = True
                return page
            key = entry[0]
            rolled = _common_prefix(key, prefix, delimiter)
            if rolled is not None:
                page.prefixes.append(rolled)
                page.last = rolled
                plain.skip(rolled)
                while taken < len(escaped) and escaped[taken][0].startswith(rolled):
                    taken += 1
                continue
            page.keys.append(entry)
            page.last = key
            if from_plain:
                plain.pop()
            else:
                taken += 1

    async def _escaped(self, owner: str, bucket: str, prefix: str,
                       after: str) -> list[Entry]:
        """The escaped keys (``echofs.s3.keys``) starting with ``prefix``
        and after ``after``, in key order. Their names keep no key order, so
        all of them under the prefix's folder are read for each page."""
        found: dict[str, FileRecord] = {}
        for name_prefix, name_after in escaped_ranges(bucket, prefix):
            while True:
                rows = await self.files.list_files(
                    owner=owner, prefix=name_prefix,
                    after=(name_after, owner) if name_after else None, limit=MAX_KEYS)
                for record in rows:
                    key = key_of(bucket, record.path)
                    if key is not None and key.startswith(prefix) and key > after:
                        found[key] = record
                if len(rows) < MAX_KEYS:
                    break
                name_after = rows[-1].path
        return sorted(found.items())


class _PlainKeys:
    """The keys that are their own names (``<bucket>/<key>``) starting with
    ``prefix``, after ``after``, read in name order (which is key order) a
    batch at a time. The escaped keys' folder is jumped over in one query."""

    def __init__(self, files: FileService, owner: str, bucket: str, prefix: str, after: str,
                 batch: int) -> None:
        self._files = files
        self._owner = owner
        self._bucket = bucket
        self._base = f"{bucket}/"
        self._reserved = escaped_root(bucket)
        self._prefix = prefix
        self._after = after  # the last key read (or skipped to)
        self._batch = batch
        self._held: deque[Entry] = deque()
        self._done = False

    async def peek(self) -> Entry | None:
        while not self._held and not self._done:
            rows = await self._files.list_files(
                owner=self._owner, prefix=self._base + self._prefix,
                after=(self._base + self._after, self._owner) if self._after else None,
                limit=self._batch)
            self._done = len(rows) < self._batch
            for record in rows:
                if record.path.startswith(self._reserved):
                    self._after = self._reserved[len(self._base):] + _PAST
                    self._done = False
                    break
                key = record.path[len(self._base):]
                self._after = key
                if key_of(self._bucket, record.path) == key:  # else: no key's name
                    self._held.append((key, record))
        return self._held[0] if self._held else None

    def pop(self) -> None:
        self._held.popleft()

    def skip(self, rolled: str) -> None:
        """Pass every key starting with ``rolled`` (a common prefix)."""
        while self._held and self._held[0][0].startswith(rolled):
            self._held.popleft()
        self._after = max(self._after, rolled + _PAST)


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    found = key.find(delimiter, len(prefix))
    return None if found < 0 else key[:found + len(delimiter)]


def _skip_point(prefix: str, delimiter: str, start: str) -> str:
    """Where a listing resumes: after ``start``, and past everything under it
    when ``start`` is itself a common prefix (a v1 NextMarker, a v2 token)."""
    if not start:
        return ""
    rolled = _common_prefix(start, prefix, delimiter) if start.startswith(prefix) else None
    return start + _PAST if rolled == start else start


def max_keys_of(raw: str | None) -> int:
    if raw is None:
        return MAX_KEYS
    try:
        value = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer "
                      "range") from None
    if value < 0:
        raise S3Error("InvalidArgument", "max-keys must not be negative")
    return min(value, MAX_KEYS)


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") \
            from None
