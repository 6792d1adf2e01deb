"""S3 multipart uploads, spoken over the upload-session service.

An S3 multipart upload *is* an upload session (``echofs.master.upload_sessions``)
with a free layout: the upload id is the session id, S3's part ``n`` is the
session's part ``n``, each stored through the ordinary upload pipeline with
its MD5 kept (the part's ETag). What S3 adds is in ``echofs.metadata.s3_uploads``:
the bucket and key, and the content headers and ``x-amz-meta-*`` given at
CreateMultipartUpload, which land on the object.

CompleteMultipartUpload checks the named parts against what is held (ETag:
InvalidPart; ascending numbers: InvalidPartOrder; 5 MiB but the last:
EntityTooSmall), computes the object's ETag from the parts' recorded MD5s
(``md5(md5_1 .. md5_N)-N``, no byte read for it) and has the session
commit the parts' chunks as the file's next version in one transaction, with
its ETag and metadata: the object appears whole or not at all. Completing reads the parts back once
(the session's BLAKE3 of the whole file), which takes a while for a large
object, so after a few seconds the answer's headers go out and whitespace
keeps the connection alive, as S3 does; an error then arrives in the body
of that 200, which S3 clients read as the error it is.

Abort and expiry drop the session; its parts' chunks go to the collector.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from echofs.core.errors import BadRequest, Conflict, EchoFSError, NotFound
from echofs.core.ranges import ByteRange
from echofs.core.upload_sessions import PartRecord, SessionState, UploadSession
from echofs.master.files import FileService
from echofs.master.upload_sessions import PartDigests, UploadSessionService
from echofs.metadata.buckets import BucketRecord, BucketsRepository, ObjectMeta
from echofs.metadata.s3_uploads import S3Upload
from echofs.metadata.upload_sessions import SessionQuotaExceeded
from echofs.s3 import multipart_xml as mxml
from echofs.s3 import xml
from echofs.s3.buckets import BucketOperations
from echofs.s3.errors import S3Error, error_document
from echofs.s3.objects import (
    Found,
    _check_copy_conditions,
    _copy_source,
    _hint,
    _meta_from_request,
    fallback_etag,
)
from echofs.s3.payload import ObjectBody
from echofs.s3.routing import Call, Target, file_path
from echofs.serving.middleware import FACTS, facts

# S3's rule: every part of a completed upload but the last holds at least 5 MiB.
MIN_PART_SIZE = 5 * 1024 * 1024
# S3's page limits for ListParts and ListMultipartUploads.
MAX_PAGE = 1000
# How long a complete may run before its 200 headers go out and whitespace
# keeps the connection alive (clients read-time out after about a minute).
KEEPALIVE_AFTER = 5.0
KEEPALIVE_EVERY = 10.0
log = logging.getLogger(__name__)
_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")

Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]


class MultipartOperations:
    def __init__(self, files: FileService, buckets: BucketsRepository,
                 bucket_ops: BucketOperations, sessions: UploadSessionService, *,
                 read_ahead: int) -> None:
        self.files = files
        self.buckets = buckets
        self.bucket_ops = bucket_ops
        self.sessions = sessions
        self.uploads = sessions.repo.s3_uploads
        self.read_ahead = read_ahead

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateMultipartUpload": self.create,
            "UploadPart": self.upload_part,
            "UploadPartCopy": self.upload_part_copy,
            "CompleteMultipartUpload": self.complete,
            "AbortMultipartUpload": self.abort,
            "ListParts": self.list_parts,
            "ListMultipartUploads": self.list_uploads,
        }

    # -- create, abort -------------------------------------------------------------------

    async def create(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.bucket_ops.owned(call)
        key = _key(call)
        path = file_path(bucket.name, key)
        meta = _meta_from_request(request, key)
        hint = _hint(request)
        with _session_errors(call):
            session = await self.sessions.create(bucket.owner, path, None, None, hint)
        try:
            await self.uploads.add(S3Upload(session.session_id, bucket.name, key,
                                            meta.headers, meta.user_meta))
        except BaseException:
            # A session S3 cannot name would only wait for its expiry.
            await self.sessions.abort(session.session_id, bucket.owner)
            raise
        return _xml(mxml.create_result(bucket.name, key, session.session_id))

    async def abort(self, request: web.Request, call: Call) -> web.Response:
        bucket, upload = await self._upload(call)
        with _session_errors(call):
            await self.sessions.abort(upload.upload_id, bucket.owner)
        return web.Response(status=204)

    # -- parts ---------------------------------------------------------------------------

    async def upload_part(self, request: web.Request, call: Call) -> web.Response:
        number = _part_number(call)
        bucket, upload = await self._upload(call)
        body = ObjectBody(request, call.caller, self.sessions.settings.max_part_size)
        with _session_errors(call):
            part = await self.sessions.put_part(upload.upload_id, bucket.owner, number,
                                                body.pieces(), PartDigests(), keep_md5=True)
        facts(request).bytes = part.size
        return web.Response(status=200, headers={"ETag": mxml.part_etag(part),
                                                 **body.checksum_header()})

    async def upload_part_copy(self, request: web.Request, call: Call) -> web.Response:
        """A part made of a stored object (or a byte range of it): the bytes go
        from the workers through this master and back, never via the client."""
        number = _part_number(call)
        bucket, upload = await self._upload(call)
        source = await self._source(request, call)
        byte_range = _copy_range(request.headers.get("x-amz-copy-source-range"),
                                 source.version.size)

        async def pieces() -> AsyncIterator[bytes]:
            stream = self.files.stream(source.version, byte_range, self.read_ahead)
            try:
                async for piece in stream:
                    yield piece
            finally:
                await stream.aclose()

        with _session_errors(call):
            part = await self.sessions.put_part(upload.upload_id, bucket.owner, number,
                                                pieces(), PartDigests(), keep_md5=True)
        facts(request).bytes = part.size
        return _xml(xml.copy_result(mxml.part_etag(part), part.stored_at, "CopyPartResult"))

    async def _source(self, request: web.Request, call: Call) -> Found:
        source_bucket, source_key = _copy_source(request.headers["x-amz-copy-source"])
        source_call = Call(call.operation, Target(source_bucket, source_key), call.query,
                           call.owner, call.caller)
        owner = (await self.bucket_ops.owned(source_call)).owner
        resource = f"/{source_bucket}/{source_key}"
        try:
            record = await self.files.find(owner, file_path(source_bucket, source_key))
        except NotFound:
            raise S3Error("NoSuchKey", resource=resource, extra={"Key": source_key}) from None
        read = await self.files.read(record, None)
        meta = await self.buckets.meta(record.file_id, read.version.version)
        found = Found(record, read, meta or ObjectMeta(fallback_etag(read.version)))
        _check_copy_conditions(request, found)
        return found

    # -- complete ------------------------------------------------------------------------

    async def complete(self, request: web.Request, call: Call) -> web.StreamResponse:
        bucket, upload = await self._upload(call)
        body = ObjectBody(request, call.caller, xml.MAX_REQUEST_XML)
        data = bytearray()
        async for piece in body.pieces():
            data += piece
        named = mxml.parse_complete(bytes(data))
        if any(b.number <= a.number for a, b in itertools.pairwise(named)):
            raise S3Error("InvalidPartOrder")
        with _session_errors(call):
            status = await self.sessions.status(upload.upload_id, bucket.owner)
        location = _location(request, bucket.name, upload.key)
        if status.session.state == SessionState.COMPLETED:
            # A retried complete: the object it made, as the first answer said.
            return _xml(mxml.complete_result(location, bucket.name, upload.key,
                                             await self._completed_etag(status.session)))
        chosen = _chosen(named, {p.part: p for p in status.parts})
        etag = _multipart_etag(chosen)
        meta = ObjectMeta(etag, upload.headers, upload.user_meta)

        async def commit() -> bytes:
            with _session_errors(call):
                # The parts whose ETags were checked, and no other: one sent
                # again meanwhile fails the complete (InvalidPart).
                done = await self.sessions.complete(
                    upload.upload_id, bucket.owner, parts=[p.part for p in chosen],
                    part_blake3={p.part: p.blake3 for p in chosen}, object_meta=meta)
            info = facts(request)
            info.file_id, info.mode, info.bytes = (done.file.file_id, done.version.mode,
                                                   done.version.size)
            return mxml.complete_result(location, bucket.name, upload.key, etag)

        return await _kept_alive(request, commit())

    async def _completed_etag(self, session: UploadSession) -> str:
        assert session.file_id is not None and session.version is not None
        meta = await self.buckets.meta(session.file_id, session.version)
        if meta is not None:
            return meta.etag
        version = await self.files.repo.get_version(session.file_id, session.version)
        return fallback_etag(version)

    # -- listings ------------------------------------------------------------------------

    async def list_parts(self, request: web.Request, call: Call) -> web.Response:
        bucket, upload = await self._upload(call)
        marker = _number(call, "part-number-marker", 0)
        max_parts = min(_number(call, "max-parts", MAX_PAGE), MAX_PAGE)
        with _session_errors(call):
            status = await self.sessions.status(upload.upload_id, bucket.owner)
        if status.session.state != SessionState.OPEN:
            raise S3Error("NoSuchUpload", resource=call.target.resource)
        after = [p for p in status.parts if p.part > marker]
        page = mxml.PartsPage(bucket.name, upload.key, upload.upload_id, bucket.owner, marker,
                              max_parts, after[:max_parts], len(after) > max_parts)
        return _xml(mxml.parts_document(page))

    async def list_uploads(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.bucket_ops.owned(call)
        if call.query.get("delimiter"):
            raise S3Error("NotImplemented", "ListMultipartUploads with a delimiter is not "
                          "implemented by EchoFS")
        encoding = call.query.get("encoding-type")
        if encoding not in (None, "url"):
            raise S3Error("InvalidArgument", "encoding-type must be url")
        prefix = call.query.get("prefix", "")
        key_marker = call.query.get("key-marker", "")
        id_marker = call.query.get("upload-id-marker", "") if key_marker else ""
        max_uploads = min(_number(call, "max-uploads", MAX_PAGE), MAX_PAGE)
        found = await self.uploads.open_uploads(bucket.owner, bucket.name, prefix, key_marker,
                                                id_marker, max_uploads + 1)
        page = mxml.UploadsPage(bucket.name, bucket.owner, prefix, key_marker, id_marker,
                                max_uploads, found[:max_uploads], len(found) > max_uploads,
                                xml.Encoder(encoding == "url"))
        return _xml(mxml.uploads_document(page))

    # -- the upload a request names ------------------------------------------------------

    async def _upload(self, call: Call) -> tuple[BucketRecord, S3Upload]:
        """The caller's bucket and the S3 upload ``?uploadId=`` names in it, for
        this key; NoSuchUpload for anything else (unknown, aborted, expired,
        another bucket's or key's, a session not made through S3)."""
        bucket = await self.bucket_ops.owned(call)
        key = _key(call)
        upload_id = call.query.get("uploadId", "")
        upload = await self.uploads.get(upload_id) if upload_id else None
        if upload is None or upload.bucket != bucket.name or upload.key != key:
            raise S3Error("NoSuchUpload", resource=call.target.resource,
                          extra={"UploadId": upload_id})
        return bucket, upload


# -- helpers ---------------------------------------------------------------------------------


def _key(call: Call) -> str:
    key = call.target.key
    assert key is not None  # an object-level operation
    return key


def _number(call: Call, name: str, default: int) -> int:
    raw = call.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", f"{name} must be a whole number") from None
    if value < 0:
        raise S3Error("InvalidArgument", f"{name} must not be negative")
    return value


def _part_number(call: Call) -> int:
    raw = call.query.get("partNumber")
    try:
        number = int(raw) if raw is not None else 0
    except ValueError:
        number = 0
    if not 1 <= number <= mxml.MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and "
                      f"{mxml.MAX_PART_NUMBER}, inclusive",
                      extra={"ArgumentName": "partNumber", "ArgumentValue": raw or ""})
    return number


def _copy_range(raw: str | None, size: int) -> ByteRange | None:
    if raw is None:
        return None
    matched = _COPY_RANGE.match(raw.strip())
    if not matched:
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the "
                      "form bytes=first-last where first and last are the zero-based offsets "
                      "of the first and last bytes to copy")
    first, last = int(matched[1]), int(matched[2])
    if first > last or last >= size:
        raise S3Error("InvalidRange", f"the range {raw} is not within the source's {size} "
                      "bytes", extra={"ActualObjectSize": str(size)})
    return ByteRange(first, last)


def _chosen(named: list[mxml.CompletedPart], held: dict[int, PartRecord]) -> list[PartRecord]:
    """The held parts the complete names, checked as S3 checks them."""
    chosen = []
    for item in named:
        part = held.get(item.number)
        if part is None or part.md5 is None or part.md5 != item.etag.lower():
            raise S3Error("InvalidPart", f"part {item.number} was not uploaded, or its ETag "
                          "is not the one given", extra={"PartNumber": str(item.number),
                                                         "ETag": item.etag})
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", extra={
                "PartNumber": str(part.part), "ProposedSize": str(part.size),
                "MinSizeAllowed": str(MIN_PART_SIZE)})
    return chosen


def _multipart_etag(parts: list[PartRecord]) -> str:
    """S3's ETag of a multipart object: the MD5 of the parts' MD5s, "-N"."""
    digest = hashlib.md5()
    for part in parts:
        assert part.md5 is not None
        digest.update(bytes.fromhex(part.md5))
    return f'"{digest.hexdigest()}-{len(parts)}"'


def _location(request: web.Request, bucket: str, key: str) -> str:
    return f"{request.scheme}://{request.host}/{bucket}/{urllib.parse.quote(key)}"


def _xml(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/xml")


@contextmanager
def _session_errors(call: Call) -> Iterator[None]:
    """The session service's refusals in S3's words."""
    try:
        yield
    except SessionQuotaExceeded as exc:
        raise S3Error("InvalidRequest", f"too many multipart uploads in progress: "
                      f"{exc.message}") from None
    except NotFound:
        raise S3Error("NoSuchUpload", resource=call.target.resource,
                      extra={"UploadId": call.query.get("uploadId", "")}) from None
    except Conflict as exc:
        if exc.code == "session_completed":
            raise S3Error("NoSuchUpload", "the upload is already completed",
                          resource=call.target.resource) from None
        if exc.code == "parts_changed":
            raise S3Error("InvalidPart", exc.message) from None
        raise S3Error("InvalidRequest", exc.message, status=409) from None
    except BadRequest as exc:
        raise S3Error("InvalidArgument", exc.message) from None


async def _kept_alive(request: web.Request, work: Awaitable[bytes]) -> web.StreamResponse:
    """Answer with ``work``'s document; if it takes longer than
    KEEPALIVE_AFTER, send the 200 headers and whitespace until it is done
    (the work runs on if the client leaves: it commits whole or not at all)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=KEEPALIVE_AFTER)
    if done:
        return _xml(task.result())
    request_id = request[FACTS].request_id
    response = web.StreamResponse(status=200, headers={
        "Content-Type": "application/xml", "x-amz-request-id": request_id,
        "x-amz-id-2": request_id, "Server": "EchoFS"})
    await response.prepare(request)
    await response.write(xml.HEADER.encode())
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=KEEPALIVE_EVERY)
        if not done:
            await response.write(b" ")
    try:
        body = task.result()
    except Exception as exc:
        # Headers are gone: the error is the body of the 200, as S3 sends it.
        error = exc if isinstance(exc, S3Error) else _as_s3(exc, request)
        request[FACTS].error = error.code
        body = error_document(error, request_id, request.path)
    await response.write(body.removeprefix(xml.HEADER.encode()))
    await response.write_eof()
    return response


def _as_s3(exc: Exception, request: web.Request) -> S3Error:
    from echofs.s3.server import _mapped  # the server imports this module

    if isinstance(exc, EchoFSError):
        return _mapped(exc, request)
    log.error("multipart complete failed", exc_info=exc)
    return S3Error("InternalError")
