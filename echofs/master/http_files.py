"""REST handlers for files: upload, list, stat, versions, download, delete.

Handlers translate HTTP to pipeline calls and back; they hold no storage logic.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from echofs.auth.http import identity, is_open
from echofs.core.consistency import Hint, Mode, parse_hint
from echofs.core.errors import BadRequest, EchoFSError, Forbidden, PayloadTooLarge
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.core.names import basename, normalize_name
from echofs.core.ranges import parse_range
from echofs.master.download import stream_version
from echofs.master.upload import Upload, UploadResult
from echofs.observability import metrics
from echofs.serving.middleware import facts

if TYPE_CHECKING:
    from echofs.master.role import MasterRole

# Upload bodies are read in pieces of this size (a chunk is assembled from several).
_READ_PIECE = 256 * 1024
_MAX_FIELD_BYTES = 64 * 1024
_DEFAULT_OWNER = "local"
_MAX_PAGE = 1000


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def file_json(record: FileRecord) -> dict[str, object]:
    return {
        "id": record.file_id, "file_id": record.file_id, "path": record.path,
        "name": basename(record.path), "owner": record.owner, "size": record.size,
        "blake3": record.blake3, "etag": f'"{record.blake3}"', "version": record.current_version,
        "mode": record.mode, "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }


def version_json(version: VersionRecord, current: int | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "version": version.version, "size": version.size, "blake3": version.blake3,
        "etag": version.etag, "chunks": version.chunk_count, "mode": version.mode,
        "replicas_acked": version.replicas_acked, "created_at": iso(version.created_at),
    }
    if current is not None:
        body["current"] = version.version == current
    return body


def upload_json(result: UploadResult) -> dict[str, object]:
    return {
        **file_json(result.file),
        "version": result.version.version, "size": result.version.size,
        "chunks": result.version.chunk_count, "blake3": result.version.blake3,
        "etag": result.version.etag, "mode": result.version.mode,
        "replicas_acked": result.version.replicas_acked,
        "chunks_deduplicated": result.chunks_deduplicated,
        "bytes_deduplicated": result.bytes_deduplicated,
    }


def _int_param(request: web.Request, name: str, default: int | None, *, lo: int,
               hi: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise BadRequest(f"query parameter {name!r} must be {bound}")
    return value


def _encode_cursor(record: FileRecord) -> str:
    raw = json.dumps([record.path, record.owner]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        path, owner = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(path, str) or not isinstance(owner, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest("invalid pagination cursor") from None
    return path, owner


def content_disposition(path: str) -> str:
    """``attachment`` with a safe ASCII fallback and the exact UTF-8 name
    (RFC 6266 / 8187); quotes, backslashes and control characters never reach
    the header (no header injection through names)."""
    name = basename(path)
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


class FilesAPI:
    def __init__(self, master: MasterRole) -> None:
        self.master = master
        self.settings = master.settings

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/files/upload", self.upload_multipart),
            web.put("/api/v1/files/content/{path:.+}", self.upload_raw),
            web.get("/api/v1/files/content/{path:.+}", self.download_by_path),
            web.get("/api/v1/files", self.list_files),
            web.get("/api/v1/files/{file_id}", self.stat),
            web.get("/api/v1/files/{file_id}/versions", self.versions),
            web.get("/api/v1/files/{file_id}/download", self.download),
            web.delete("/api/v1/files/{file_id}", self.delete),
        ]

    # -- who is asking -----------------------------------------------------------

    def _owner(self, request: web.Request, given: str | None = None) -> str:
        """The owner of new files: the caller's account; in open (single-user)
        mode, the original's ``user_id`` field, or the local user."""
        if not is_open(request):
            return identity(request).user_id
        owner = given or request.query.get("user_id") or _DEFAULT_OWNER
        if len(owner) > 255 or any(ord(c) < 32 for c in owner):
            raise BadRequest("user_id must be at most 255 printable characters")
        facts(request).user = owner
        return owner

    def _reader_scope(self, request: web.Request) -> str | None:
        """Owner filter for reads. With accounts: the caller's own files
        (another user's file is a 404, so existence does not leak); an admin
        sees everyone's with ``all=true``. Open mode sees every file unless
        the caller narrows it with ``user_id``."""
        if not is_open(request):
            who = identity(request)
            if request.query.get("all") in ("1", "true", "yes"):
                if not who.is_admin:
                    raise Forbidden("all=true is for administrators")
                return None
            return who.user_id
        return request.query.get("user_id") or None

    # -- uploads -------------------------------------------------------------------

    def _check_declared_size(self, request: web.Request) -> None:
        length = request.content_length
        if length is not None and length > self.settings.max_upload_size + _MAX_FIELD_BYTES:
            raise PayloadTooLarge(
                f"body of {length} bytes exceeds the {self.settings.max_upload_size}-byte limit"
            )

    async def upload_raw(self, request: web.Request) -> web.Response:
        path = normalize_name(request.match_info["path"])
        length = request.content_length
        if length is not None and length > self.settings.max_upload_size:
            raise PayloadTooLarge(
                f"body of {length} bytes exceeds the {self.settings.max_upload_size}-byte limit"
            )
        owner = self._owner(request)
        mode = await self.master.write_mode(owner, path, _request_hint(request))
        upload = self.master.uploads.begin(mode)
        try:
            async for piece in _body_pieces(request.content.iter_chunked(_READ_PIECE)):
                metrics.UPLOAD_BYTES.inc(len(piece))
                await upload.write(piece)
            result = await upload.commit(owner=owner, path=path)
        except BaseException:
            await upload.abort()
            raise
        return await self._uploaded(request, result, upload)

    async def upload_multipart(self, request: web.Request) -> web.Response:
        if request.content_type != "multipart/form-data":
            raise BadRequest("upload must be multipart/form-data with a 'file' field",
                             code="not_multipart")
        self._check_declared_size(request)
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError, KeyError) as exc:
            raise BadRequest(f"malformed multipart body: {exc}",
                             code="malformed_multipart") from None
        fields: dict[str, str] = {}
        upload: Upload | None = None
        filename: str | None = None
        try:
            while (part := await _next_part(reader)) is not None:
                if part.name == "file":
                    if upload is not None:
                        raise BadRequest("only one 'file' field per upload")
                    filename = part.filename
                    if filename:
                        filename = normalize_name(filename)
                    # The mode is fixed when the bytes start: form fields sent
                    # after the file part cannot change it.
                    hint = _request_hint(request, fields.get("consistency"))
                    early_path = fields.get("path") or filename
                    mode = await self.master.write_mode(
                        self._owner(request, fields.get("user_id")),
                        normalize_name(early_path) if early_path else None, hint)
                    upload = self.master.uploads.begin(mode)
                    async for piece in _part_pieces(part):
                        metrics.UPLOAD_BYTES.inc(len(piece))
                        await upload.write(piece)
                elif part.name in ("path", "user_id", "consistency"):
                    fields[part.name] = await _field_text(part)
                else:
                    async for _ in _part_pieces(part):  # unknown field: skip it
                        pass
            if upload is None:
                raise BadRequest("multipart body has no 'file' field", code="missing_file")
            path = normalize_name(fields.get("path") or filename or "")
            result = await upload.commit(owner=self._owner(request, fields.get("user_id")),
                                         path=path)
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise
        return await self._uploaded(request, result, upload)

    async def _uploaded(self, request: web.Request, result: UploadResult,
                        upload: Upload) -> web.Response:
        await self.master.manifests.invalidate(result.file.file_id)
        self.master.note_write(result.file.file_id, upload)
        info = facts(request)
        info.file_id, info.mode, info.bytes = (result.file.file_id, result.version.mode,
                                               result.version.size)
        metrics.DEDUP_CHUNKS.inc(result.chunks_deduplicated)
        metrics.DEDUP_BYTES.inc(result.bytes_deduplicated)
        return web.json_response(upload_json(result), status=201,
                                 headers={"ETag": result.version.etag,
                                          "X-EchoFS-Mode": result.version.mode})

    # -- reads -----------------------------------------------------------------------

    async def list_files(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 100, lo=1, hi=_MAX_PAGE)
        assert limit is not None
        prefix = request.query.get("prefix", "")
        if len(prefix) > 1024 or "\x00" in prefix:
            raise BadRequest("prefix must be at most 1024 characters without NUL")
        cursor = request.query.get("cursor")
        after = _decode_cursor(cursor) if cursor else None
        records = await self.master.repo.list_files(
            owner=self._reader_scope(request), prefix=prefix, after=after, limit=limit + 1
        )
        page, more = records[:limit], len(records) > limit
        return web.json_response({
            "files": [file_json(r) for r in page],
            "count": len(page),
            "next_cursor": _encode_cursor(page[-1]) if more else None,
        })

    async def stat(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        version_no = _int_param(request, "version", None, lo=1)
        record = await self.master.repo.get_file(file_id, self._reader_scope(request))
        version = await self.master.manifests.version(record, version_no)
        facts(request).mode = self.master.modes.lookup(file_id)[0].value
        body = file_json(record)
        body.update(version_json(version, record.current_version))
        body["current_version"] = record.current_version
        body["chunk_list"] = [
            {"seq": c.seq, "chunk_id": c.chunk_id, "offset": c.offset, "size": c.size,
             "compressed": c.compressed, "replicas": list(c.replicas)}
            for c in version.chunks
        ]
        body["consistency_mode"] = facts(request).mode
        return web.json_response(body, headers={"ETag": version.etag})

    async def versions(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        record = await self.master.repo.get_file(file_id, self._reader_scope(request))
        versions = await self.master.repo.list_versions(file_id, record.owner)
        facts(request).mode = self.master.modes.lookup(file_id)[0].value
        return web.json_response({
            "file_id": file_id, "path": record.path, "current_version": record.current_version,
            "versions": [version_json(v, record.current_version) for v in versions],
        })

    async def download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        record = await self.master.repo.get_file(file_id, self._reader_scope(request))
        return await self._send(request, record)

    async def download_by_path(self, request: web.Request) -> web.StreamResponse:
        path = normalize_name(request.match_info["path"])
        record = await self.master.repo.find_file(self._owner(request), path)
        return await self._send(request, record)

    async def _send(self, request: web.Request, record: FileRecord) -> web.StreamResponse:
        version_no = _int_param(request, "version", None, lo=1)
        mode, _ = self.master.modes.lookup(record.file_id)
        stale = False
        if version_no is None and mode is Mode.AVAILABLE:
            # Available reads serve the newest version that can be assembled
            # from live replicas, and say so when it is not the latest.
            version, stale = await self.master.newest_readable_version(record)
        else:
            version = await self.master.manifests.version(record, version_no)
        info = facts(request)
        info.file_id, info.mode = record.file_id, mode.value
        headers = {
            "ETag": version.etag,
            "Accept-Ranges": "bytes",
            "Content-Disposition": content_disposition(record.path),
            "X-EchoFS-Version": str(version.version),
            "X-EchoFS-Mode": mode.value,
        }
        if stale:
            headers["X-EchoFS-Stale"] = "true"
            self.master.stale_reads += 1
        if _etag_matches(request.headers.get("If-None-Match"), version.etag):
            return web.Response(status=304, headers=headers)
        byte_range = None
        if_range = request.headers.get("If-Range")
        if if_range is None or if_range.strip() == version.etag:
            byte_range = parse_range(request.headers.get("Range"), version.size)
        content_type = mimetypes.guess_type(record.path)[0] or "application/octet-stream"
        if byte_range is None and len(version.chunks) == 1 and request.method == "GET":
            # One chunk (most small files): read and verified before any
            # header goes out, then sent in one piece.
            stream = stream_version(self.master.reader, version, None, 1)
            try:
                body = await anext(stream)
            finally:
                await stream.aclose()
            info.bytes = len(body)
            metrics.DOWNLOAD_BYTES.inc(len(body))
            return web.Response(body=body, headers=headers, content_type=content_type)
        response = web.StreamResponse(status=206 if byte_range else 200, headers=headers)
        response.content_type = content_type
        if byte_range:
            response.headers["Content-Range"] = byte_range.content_range(version.size)
            response.content_length = byte_range.length
        else:
            response.content_length = version.size
        if request.method == "HEAD":
            await response.prepare(request)
            return response
        stream = stream_version(self.master.reader, version, byte_range,
                                self.settings.read_ahead)
        # Read the first chunk before sending headers, so the common failure
        # (no readable replica) is a clean 503 rather than a cut connection.
        first = await anext(stream, None)
        sent = 0
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(first)
                sent += len(first)
                metrics.DOWNLOAD_BYTES.inc(len(first))
            async for piece in stream:
                await response.write(piece)
                sent += len(piece)
                metrics.DOWNLOAD_BYTES.inc(len(piece))
        except EchoFSError as exc:
            # Headers are gone; the only honest signal left is to cut the
            # connection short of Content-Length. Never send wrong bytes.
            info.bytes = sent
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError(f"download aborted: {exc.message}") from exc
        finally:
            await stream.aclose()
        info.bytes = sent
        await response.write_eof()
        return response

    async def delete(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        version_no = _int_param(request, "version", None, lo=1)
        deleted = await self.master.repo.delete_file(file_id, self._reader_scope(request),
                                                     version_no)
        await self.master.manifests.invalidate(file_id)
        self.master.collector.wake()
        return web.json_response({"file_id": file_id, "deleted_versions": deleted})


def _request_hint(request: web.Request, field: str | None = None) -> Hint | None:
    """A per-upload consistency hint: form field, ``consistency`` query
    parameter or ``X-EchoFS-Consistency`` header."""
    raw = field or request.query.get("consistency") or request.headers.get(
        "X-EchoFS-Consistency")
    if not raw:
        return None
    try:
        return parse_hint(raw)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_consistency") from None


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


async def _next_part(reader: MultipartReader) -> BodyPartReader | None:
    try:
        part = await reader.next()
    except (ValueError, AssertionError, KeyError, HttpProcessingError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}", code="malformed_multipart") from None
    if part is not None and not isinstance(part, BodyPartReader):
        raise BadRequest("nested multipart bodies are not supported", code="malformed_multipart")
    return part


async def _part_pieces(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        try:
            piece = await part.read_chunk(_READ_PIECE)
        except (ValueError, AssertionError, HttpProcessingError) as exc:
            raise BadRequest(f"malformed multipart body: {exc}",
                             code="malformed_multipart") from None
        if not piece:
            return
        yield piece


async def _field_text(part: BodyPartReader) -> str:
    data = bytearray()
    async for piece in _part_pieces(part):
        data += piece
        if len(data) > _MAX_FIELD_BYTES:
            raise BadRequest(f"form field {part.name!r} is too long")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"form field {part.name!r} is not UTF-8") from None


async def _body_pieces(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for piece in pieces:
            yield piece
    except HttpProcessingError as exc:
        raise BadRequest(f"request body ended early or is malformed: {exc.message}",
                         code="incomplete_body") from None
