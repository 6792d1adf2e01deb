"""Object operations: put, get, head, delete, batch delete, server-side copy.

An object is its bucket owner's file ``<bucket>/<key>``: a PUT is an upload
through the master's file service (the same pipeline, modes and replication
as the REST API) and becomes the file's next version only once every byte
has arrived and every signature and checksum on it has been checked; its
MD5 (the ETag), content headers and ``x-amz-meta-*`` commit with that
version, in its transaction (``CommitRequest.object_meta``). A GET serves
the version the file's consistency mode picks, with ``x-echofs-stale: true``
when that may be older than the latest, exactly as the REST API does.

A version written without S3 (through the REST API) has no MD5: its ETag is
``"<first 32 hex of its BLAKE3>-1"``, which clients read as "not an MD5"
(the multipart form) rather than verifying bytes against it.
"""

from __future__ import annotations

import email.utils
import hashlib
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from echofs.core.consistency import parse_hint
from echofs.core.errors import EchoFSError, NotFound, RangeNotSatisfiable
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.core.ranges import ByteRange, parse_range
from echofs.master.files import FileRead, FileService
from echofs.metadata.buckets import BucketsRepository, ObjectMeta
from echofs.observability import metrics
from echofs.s3 import xml
from echofs.s3.buckets import BucketOperations
from echofs.s3.errors import S3Error
from echofs.s3.payload import ObjectBody
from echofs.s3.routing import Call, file_path
from echofs.s3.versions import NULL_VERSION
from echofs.serving.middleware import facts

# Content headers kept with a version and sent back on GET/HEAD.
CONTENT_HEADERS = ("Content-Type", "Content-Disposition", "Content-Encoding",
                   "Content-Language", "Cache-Control", "Expires")
META_PREFIX = "x-amz-meta-"
# S3's limit on user metadata (names and values together).
MAX_USER_META = 2048
_OVERRIDES = {"response-content-type": "Content-Type",
              "response-content-disposition": "Content-Disposition",
              "response-content-encoding": "Content-Encoding",
              "response-content-language": "Content-Language",
              "response-cache-control": "Cache-Control",
              "response-expires": "Expires"}
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


@dataclass(frozen=True, slots=True)
class Found:
    """An object found for a read: its file, the version served, its S3 metadata."""

    record: FileRecord
    read: FileRead
    meta: ObjectMeta

    @property
    def version(self) -> VersionRecord:
        return self.read.version


def fallback_etag(version: VersionRecord) -> str:
    return f'"{version.blake3[:32]}-1"'


class ObjectOperations:
    def __init__(self, files: FileService, buckets: BucketsRepository,
                 bucket_ops: BucketOperations, *, max_size: int, read_ahead: int) -> None:
        self.files = files
        self.buckets = buckets
        self.bucket_ops = bucket_ops
        self.max_size = max_size
        self.read_ahead = read_ahead

    # -- writes ------------------------------------------------------------------------

    async def put_object(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.bucket_ops.owned(call)
        key = call.target.key
        assert key is not None
        path = file_path(bucket.name, key)
        meta_in = _meta_from_request(request, key)
        body = ObjectBody(request, call.caller, self.max_size)

        async def conditions() -> None:
            await self._check_write_conditions(request, bucket.owner, path,
                                               call.target.resource)

        etag, _ = await self._store(request, bucket.owner, path, body.pieces(),
                                    lambda: f'"{body.md5}"', meta_in, conditions)
        info = facts(request)
        info.bytes = body.size
        return web.Response(status=200, headers={"ETag": etag, **body.checksum_header()})

    async def _store(self, request: web.Request, owner: str, path: str,
                     pieces: AsyncIterator[bytes], etag_of: Callable[[], str],
                     meta_in: ObjectMeta,
                     before_commit: Callable[[], Awaitable[None]] | None = None
                     ) -> tuple[str, VersionRecord]:
        hint = _hint(request)
        upload = await self.files.begin(owner, path, hint)
        try:
            async for piece in pieces:
                metrics.UPLOAD_BYTES.inc(len(piece))
                await upload.write(piece)
            if before_commit is not None:
                await before_commit()
            # Every byte is in (and checked): the MD5 is known, and the ETag
            # commits with the version, in its transaction.
            etag = etag_of()
            result = await self.files.commit(
                upload, owner=owner, path=path,
                object_meta=ObjectMeta(etag, meta_in.headers, meta_in.user_meta))
        except BaseException:
            await upload.abort()
            raise
        info = facts(request)
        info.file_id, info.mode = result.file.file_id, result.version.mode
        return etag, result.version

    async def _check_write_conditions(self, request: web.Request, owner: str, path: str,
                                      resource: str) -> None:
        """A conditional PutObject (If-Match / If-None-Match against the current
        object's ETag). Checked once the body is in, just before the commit, so
        a write that landed meanwhile is what the condition is held against."""
        if_match = request.headers.get("If-Match")
        if_none = request.headers.get("If-None-Match")
        if if_match is None and if_none is None:
            return
        current = await self._current_etag(owner, path)
        if if_match is not None:
            if current is None:
                raise S3Error("NoSuchKey", resource=resource,
                              extra={"Key": resource.split("/", 2)[2]})
            if not _etag_in(if_match, current):
                raise S3Error("PreconditionFailed", extra={"Condition": "If-Match"})
        if if_none is not None and current is not None and _etag_in(if_none, current):
            raise S3Error("PreconditionFailed", extra={"Condition": "If-None-Match"})

    async def _current_etag(self, owner: str, path: str) -> str | None:
        try:
            record = await self.files.find(owner, path)
        except NotFound:
            return None
        meta = await self.buckets.meta(record.file_id, record.current_version)
        return meta.etag if meta is not None else f'"{record.blake3[:32]}-1"'

    async def copy_object(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.bucket_ops.owned(call)
        key = call.target.key
        assert key is not None
        path = file_path(bucket.name, key)
        source_bucket, source_key = _copy_source(request.headers["x-amz-copy-source"])
        source_call = Call(call.operation, type(call.target)(source_bucket, source_key),
                           call.query, call.owner, call.caller)
        source_owner = (await self.bucket_ops.owned(source_call)).owner
        source = await self._find(source_owner, file_path(source_bucket, source_key),
                                  f"/{source_bucket}/{source_key}")
        _check_copy_conditions(request, source)
        directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE")
        if directive == "REPLACE":
            meta_in = _meta_from_request(request, key)
        else:
            if source.record.path == path and source.record.owner == bucket.owner:
                raise S3Error("InvalidRequest", "This copy request is illegal because it is "
                              "trying to copy an object to itself without changing the "
                              "object's metadata, storage class, website redirect location or "
                              "encryption attributes.")
            meta_in = source.meta
        # Server-side: the bytes go from the workers through this master and
        # back (chunks already stored are deduplicated), never via the client.
        # Their MD5 is taken on the way: a source written through the REST API
        # (no MD5 kept) gets a true ETag in its copy.
        md5 = hashlib.md5()

        async def pieces() -> AsyncIterator[bytes]:
            stream = self.files.stream(source.version, None, self.read_ahead)
            try:
                async for piece in stream:
                    md5.update(piece)
                    yield piece
            finally:
                await stream.aclose()

        etag, version = await self._store(request, bucket.owner, path, pieces(),
                                          lambda: f'"{md5.hexdigest()}"', meta_in)
        return web.Response(body=xml.copy_result(etag, version.created_at),
                            content_type="application/xml")

    async def delete_object(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.bucket_ops.owned(call)
        key = call.target.key
        assert key is not None
        await self._delete(bucket.owner, file_path(bucket.name, key))
        return web.Response(status=204)

    async def _delete(self, owner: str, path: str) -> None:
        try:
            record = await self.files.find(owner, path)
            await self.files.delete(record.file_id, owner, None)
        except NotFound:
            pass  # S3: deleting what is not there succeeds

    async def delete_objects(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.bucket_ops.owned(call)
        body = ObjectBody(request, call.caller, xml.MAX_REQUEST_XML)
        data = bytearray()
        async for piece in body.pieces():
            data += piece
        wanted = xml.parse_delete(bytes(data))
        parts = []
        for key, version_id in zip(wanted.keys, wanted.version_ids, strict=True):
            # S3 sees EchoFS buckets as unversioned: "null" names the one
            # version an object has; any other id names none.
            named = xml.element("VersionId", version_id) if version_id is not None else ""
            try:
                if version_id not in (None, NULL_VERSION):
                    raise S3Error("NoSuchVersion", "The specified version does not exist.")
                await self._delete(bucket.owner, file_path(bucket.name, key))
            except S3Error as exc:
                parts.append(f"<Error>{xml.element('Key', key)}{named}"
                             f"{xml.element('Code', exc.code)}"
                             f"{xml.element('Message', exc.message)}</Error>")
                continue
            if not wanted.quiet:
                parts.append(f"<Deleted>{xml.element('Key', key)}{named}</Deleted>")
        return web.Response(body=xml.document("DeleteResult", *parts),
                            content_type="application/xml")

    # -- reads -------------------------------------------------------------------------

    async def _find(self, owner: str, path: str, resource: str) -> Found:
        try:
            record = await self.files.find(owner, path)
        except NotFound:
            raise S3Error("NoSuchKey", resource=resource,
                          extra={"Key": resource.split("/", 2)[2]}) from None
        read = await self.files.read(record, None)
        meta = await self.buckets.meta(record.file_id, read.version.version)
        if meta is None:
            meta = ObjectMeta(fallback_etag(read.version))
        return Found(record, read, meta)

    async def head_object(self, request: web.Request, call: Call) -> web.StreamResponse:
        return await self.get_object(request, call)

    async def get_object(self, request: web.Request, call: Call) -> web.StreamResponse:
        bucket = await self.bucket_ops.owned(call)
        key = call.target.key
        assert key is not None
        if "partNumber" in call.query:
            raise S3Error("NotImplemented", "GetObject by partNumber is not implemented")
        found = await self._find(bucket.owner, file_path(bucket.name, key),
                                 call.target.resource)
        version = found.version
        info = facts(request)
        info.file_id, info.mode = found.record.file_id, found.read.mode.value
        headers = _object_headers(found, call)
        not_modified = _check_conditions(request, found.meta.etag, version.created_at)
        if not_modified:
            return web.Response(status=304, headers={k: v for k, v in headers.items()
                                                      if k in ("ETag", "Last-Modified")})
        byte_range = _range(request, version)
        response = web.StreamResponse(status=206 if byte_range else 200, headers=headers)
        if byte_range:
            response.headers["Content-Range"] = byte_range.content_range(version.size)
            response.content_length = byte_range.length
        else:
            response.content_length = version.size
        if request.method == "HEAD" or version.size == 0 or (
                byte_range is not None and byte_range.length == 0):
            await response.prepare(request)
            await response.write_eof()
            return response
        return await self._stream(request, response, version, byte_range)

    async def _stream(self, request: web.Request, response: web.StreamResponse,
                      version: VersionRecord, byte_range: ByteRange | None
                      ) -> web.StreamResponse:
        info = facts(request)
        stream = self.files.stream(version, byte_range, self.read_ahead)
        sent = 0
        try:
            # The first piece before the headers: "no readable copy" is a
            # clean 503, not a cut connection.
            first = await anext(stream, None)
            await response.prepare(request)
            try:
                if first is not None:
                    await response.write(first)
                    sent += len(first)
                async for piece in stream:
                    await response.write(piece)
                    sent += len(piece)
            except EchoFSError as exc:
                # Headers are gone: cut the connection short of Content-Length
                # rather than send wrong bytes.
                if request.transport is not None:
                    request.transport.abort()
                raise ConnectionResetError(f"download aborted: {exc.message}") from exc
        finally:
            await stream.aclose()
            info.bytes = sent
            metrics.DOWNLOAD_BYTES.inc(sent)
        await response.write_eof()
        return response


# -- request and response headers ---------------------------------------------------------


def _hint(request: web.Request):  # type: ignore[no-untyped-def]
    raw = request.headers.get("X-EchoFS-Consistency")
    if not raw:
        return None
    try:
        return parse_hint(raw)
    except ValueError as exc:
        raise S3Error("InvalidArgument", str(exc)) from None


def _meta_from_request(request: web.Request, key: str) -> ObjectMeta:
    headers = {name: request.headers[name] for name in CONTENT_HEADERS if name in request.headers}
    content_type = headers.get("Content-Type")
    if not content_type:
        headers["Content-Type"] = DEFAULT_CONTENT_TYPE
    encoding = headers.get("Content-Encoding")
    if encoding is not None:
        # aws-chunked is how the body travelled, not what it is.
        codings = [c.strip() for c in encoding.split(",") if c.strip()]
        kept = [c for c in codings if c.lower() != "aws-chunked"]
        if not kept:
            del headers["Content-Encoding"]
        elif len(kept) < len(codings):
            headers["Content-Encoding"] = ", ".join(kept)
        # else: kept as the client wrote it ("deflate, gzip" stays so)
    user = {name.lower()[len(META_PREFIX):]: value for name, value in request.headers.items()
            if name.lower().startswith(META_PREFIX)}
    if sum(len(k) + len(v) for k, v in user.items()) > MAX_USER_META:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed "
                      "metadata size", status=400)
    return ObjectMeta("", headers, user)


def _object_headers(found: Found, call: Call) -> dict[str, str]:
    version = found.version
    headers = {
        "ETag": found.meta.etag,
        "Last-Modified": email.utils.formatdate(version.created_at, usegmt=True),
        "Accept-Ranges": "bytes",
        "Content-Type": DEFAULT_CONTENT_TYPE,
        "x-echofs-version": str(version.version),
        "x-echofs-mode": found.read.mode.value,
    }
    headers.update(found.meta.headers)
    for name, value in found.meta.user_meta.items():
        headers[META_PREFIX + name] = value
    if found.read.stale:
        headers["x-echofs-stale"] = "true"
    for parameter, header in _OVERRIDES.items():
        if parameter in call.query:
            headers[header] = call.query[parameter]
    return headers


def _range(request: web.Request, version: VersionRecord) -> ByteRange | None:
    raw = request.headers.get("Range")
    if raw is None:
        return None
    try:
        return parse_range(raw, version.size)
    except RangeNotSatisfiable:
        raise S3Error("InvalidRange", extra={"RangeRequested": raw,
                                              "ActualObjectSize": str(version.size)}) from None


def _etag_in(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags or etag.strip('"') in tags


def _http_time(raw: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _check_conditions(request: web.Request, etag: str, modified: float) -> bool:
    """RFC 7232 as S3 applies it; True: answer 304 Not Modified."""
    modified = float(int(modified))  # HTTP dates have whole seconds
    if_match = request.headers.get("If-Match")
    if if_match is not None and not _etag_in(if_match, etag):
        raise S3Error("PreconditionFailed", extra={"Condition": "If-Match"})
    since = request.headers.get("If-Unmodified-Since")
    if if_match is None and since is not None:
        when = _http_time(since)
        if when is not None and modified > when:
            raise S3Error("PreconditionFailed", extra={"Condition": "If-Unmodified-Since"})
    if_none = request.headers.get("If-None-Match")
    if if_none is not None:
        if _etag_in(if_none, etag):
            if request.method in ("GET", "HEAD"):
                return True
            raise S3Error("PreconditionFailed", extra={"Condition": "If-None-Match"})
        return False
    modified_since = request.headers.get("If-Modified-Since")
    if modified_since is not None:
        when = _http_time(modified_since)
        if when is not None and modified <= when:
            return True
    return False


def _check_copy_conditions(request: web.Request, source: Found) -> None:
    etag, modified = source.meta.etag, float(int(source.version.created_at))
    value = request.headers.get("x-amz-copy-source-if-match")
    if value is not None and not _etag_in(value, etag):
        raise S3Error("PreconditionFailed")
    value = request.headers.get("x-amz-copy-source-if-none-match")
    if value is not None and _etag_in(value, etag):
        raise S3Error("PreconditionFailed")
    value = request.headers.get("x-amz-copy-source-if-unmodified-since")
    if value is not None and (when := _http_time(value)) is not None and modified > when:
        raise S3Error("PreconditionFailed")
    value = request.headers.get("x-amz-copy-source-if-modified-since")
    if value is not None and (when := _http_time(value)) is not None and modified <= when:
        raise S3Error("PreconditionFailed")


def _copy_source(raw: str) -> tuple[str, str]:
    source = urllib.parse.unquote(raw.partition("?")[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "x-amz-copy-source must be /bucket/key")
    if "versionId=" in raw.partition("?")[2]:
        raise S3Error("NotImplemented", "copying a version by versionId is not implemented")
    return bucket, key
