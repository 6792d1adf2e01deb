"""REST handlers for files: upload, list, stat, versions, download, delete.

Handlers do HTTP only — parse the request, conditional requests, ranges,
streaming the body — and ask the file service (:mod:`echofs.master.files`)
for everything else: which mode a write uses, committing it and its effects,
which version a read gets.
"""

from __future__ import annotations

import mimetypes
import time
import urllib.parse

from aiohttp import MultipartReader, web

from echofs.auth.http import identity, is_open
from echofs.config import Settings
from echofs.core.consistency import Hint, parse_hint
from echofs.core.errors import (
    BadRequest,
    Conflict,
    EchoFSError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
)
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.core.names import basename, normalize_name, require_utf8_escapes
from echofs.core.ranges import ByteRange, parse_range
from echofs.master.envelope import consistency_block, envelope, listed_file, upload_data
from echofs.master.file_json import (
    decode_cursor,
    encode_cursor,
    file_json,
    upload_json,
    version_json,
)
from echofs.master.files import FileRead, FileService
from echofs.master.upload import Upload, UploadResult
from echofs.master.upload_body import (
    MAX_FIELD_BYTES,
    READ_PIECE,
    FormBudget,
    body_pieces,
    field_text,
    form_reader,
    next_part,
    part_pieces,
    skip_part,
)
from echofs.observability import metrics
from echofs.serving.middleware import facts

_DEFAULT_OWNER = "local"
_MAX_PAGE = 1000
# Owners looked at when a single-user-mode read by path names none.
_PATH_HOLDERS = 50
# The original's consistency levels, and its hints' spellings ("Strong", "C").
_LEVELS = ("auto", "strong", "available")
_HINT_WORDS = {"auto": Hint.AUTO, "strong": Hint.STRONG, "c": Hint.STRONG,
               "available": Hint.AVAILABLE, "a": Hint.AVAILABLE}


# Any text, line breaks included ('.' stops at them): a name with a CR or LF
# must reach the handler to be refused as an invalid name, not miss the route
# and come back as a 404.
_ANY_NAME = r"[\s\S]+"

# Version numbers are 64-bit integers in the database; a larger one in a query
# would overflow the driver (a 500) instead of naming a version that cannot exist.
MAX_VERSION = 2**63 - 1


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


def content_disposition(path: str) -> str:
    """``attachment`` with a safe ASCII fallback and the exact UTF-8 name
    (RFC 6266 / 8187); quotes, backslashes and control characters never reach
    the header (no header injection through names)."""
    name = basename(path)
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


class FilesAPI:
    def __init__(self, files: FileService, settings: Settings) -> None:
        self.files = files
        self.settings = settings

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/files/upload", self.upload_multipart),
            web.post("/api/v1/files/upload/consistency", self.upload_with_consistency),
            web.put(f"/api/v1/files/content/{{path:{_ANY_NAME}}}", self.upload_raw),
            web.get(f"/api/v1/files/content/{{path:{_ANY_NAME}}}", self.download_by_path),
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
        if length is not None and length > self.settings.max_upload_size + MAX_FIELD_BYTES:
            raise PayloadTooLarge(
                f"body of {length} bytes exceeds the {self.settings.max_upload_size}-byte limit"
            )

    async def upload_raw(self, request: web.Request) -> web.Response:
        path = _path_name(request)
        length = request.content_length
        if length is not None and length > self.settings.max_upload_size:
            raise PayloadTooLarge(
                f"body of {length} bytes exceeds the {self.settings.max_upload_size}-byte limit"
            )
        owner = self._owner(request)
        upload = await self.files.begin(owner, path, _request_hint(request))
        try:
            async for piece in body_pieces(request.content.iter_chunked(READ_PIECE)):
                metrics.UPLOAD_BYTES.inc(len(piece))
                await upload.write(piece)
            result = await self.files.commit(upload, owner=owner, path=path)
        except BaseException:
            await upload.abort()
            raise
        return _uploaded(request, result)

    async def upload_multipart(self, request: web.Request) -> web.Response:
        budget, reader = self._open_form(request)
        fields: dict[str, str] = {}
        upload: Upload | None = None
        filename: str | None = None
        try:
            while (part := await next_part(reader, budget)) is not None:
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
                    upload = await self.files.begin(
                        self._owner(request, fields.get("user_id")),
                        normalize_name(early_path) if early_path else None, hint)
                    async for piece in part_pieces(part):
                        metrics.UPLOAD_BYTES.inc(len(piece))
                        await upload.write(piece)
                elif part.name in ("path", "user_id", "consistency"):
                    fields[part.name] = await field_text(part, budget)
                else:
                    await skip_part(part, budget)
            if upload is None:
                raise BadRequest("multipart body has no 'file' field", code="missing_file")
            result = await self._commit_form(request, upload, fields, filename)
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise
        return _uploaded(request, result)

    async def upload_with_consistency(self, request: web.Request) -> web.Response:
        """The original's upload with consistency parameters: multipart with
        ``file`` and the fields ``consistency`` (auto, strong, available) and
        ``hint`` (strong or available: what ``auto`` should lean to).

        ``consistency`` strong or available writes in that mode; auto with a
        hint, in the hinted mode; plain auto, in the controller's mode for
        the file. A critical key is strong whatever is asked. The original's
        clients send these fields *after* the file: its first chunk
        (``CHUNK_SIZE`` bytes) is held until the form ends, so a file of up
        to one chunk is written in the mode asked wherever the fields are. A
        larger file whose fields have not arrived when its first chunk is
        full is written strong, which meets every level's guarantee; the
        answer's ``consistency.mode_used`` says which mode the bytes got.
        """
        started = time.perf_counter()
        budget, reader = self._open_form(request)
        fields: dict[str, str] = {}
        upload: Upload | None = None
        filename: str | None = None
        held = bytearray()  # the first chunk, until the mode is known
        file_seen = False
        try:
            while (part := await next_part(reader, budget)) is not None:
                if part.name == "file":
                    if file_seen:
                        raise BadRequest("only one 'file' field per upload")
                    file_seen = True
                    filename = normalize_name(part.filename) if part.filename else None
                    async for piece in part_pieces(part):
                        metrics.UPLOAD_BYTES.inc(len(piece))
                        if upload is not None:
                            await upload.write(piece)
                            continue
                        held += piece
                        if len(held) >= self.settings.chunk_size:
                            known = "consistency" in fields or "hint" in fields
                            hint = _asked_consistency(fields)[1] if known else Hint.STRONG
                            upload = await self._begin_form_upload(request, fields, filename,
                                                                   hint)
                            await upload.write(held)
                            held = bytearray()
                elif part.name in ("path", "user_id", "consistency", "hint"):
                    fields[part.name] = await field_text(part, budget)
                    _asked_consistency(fields)  # a bad value is refused before any byte
                else:
                    await skip_part(part, budget)
            if not file_seen:
                raise BadRequest("multipart body has no 'file' field", code="missing_file")
            asked, hint = _asked_consistency(fields)
            if upload is None:
                upload = await self._begin_form_upload(request, fields, filename, hint)
                await upload.write(held)
                held = bytearray()
            result = await self._commit_form(request, upload, fields, filename)
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise
        # 200, as the original answered this route (its clients check for it).
        return _uploaded(request, result, status=200, message=(
            f"File uploaded successfully with {result.version.mode} replication"),
            consistency=consistency_block(result, asked, fields.get("hint"), started))

    def _open_form(self, request: web.Request) -> tuple[FormBudget, MultipartReader]:
        """A multipart upload's form reader, with the budget its parts share;
        a body that is not a form, or declares too much, is refused first."""
        if request.content_type != "multipart/form-data":
            raise BadRequest("upload must be multipart/form-data with a 'file' field",
                             code="not_multipart")
        self._check_declared_size(request)
        budget = FormBudget()
        return budget, form_reader(request, budget)

    async def _commit_form(self, request: web.Request, upload: Upload,
                           fields: dict[str, str], filename: str | None) -> UploadResult:
        path = normalize_name(fields.get("path") or filename or "")
        return await self.files.commit(
            upload, owner=self._owner(request, fields.get("user_id")), path=path)

    async def _begin_form_upload(self, request: web.Request, fields: dict[str, str],
                                 filename: str | None, hint: Hint | None) -> Upload:
        path = fields.get("path") or filename
        return await self.files.begin(self._owner(request, fields.get("user_id")),
                                      normalize_name(path) if path else None, hint)

    # -- reads -----------------------------------------------------------------------

    async def list_files(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 100, lo=1, hi=_MAX_PAGE)
        assert limit is not None
        prefix = request.query.get("prefix", "")
        require_utf8_escapes(_raw_query_value(request, "prefix") or "", "prefix")
        if len(prefix) > 1024 or "\x00" in prefix:
            raise BadRequest("prefix must be at most 1024 characters without NUL")
        cursor = request.query.get("cursor")
        after = decode_cursor(cursor) if cursor else None
        records = await self.files.list_files(
            owner=self._reader_scope(request), prefix=prefix, after=after, limit=limit + 1
        )
        page, more = records[:limit], len(records) > limit
        return web.json_response(envelope(
            "Files listed successfully", [listed_file(r) for r in page],
            files=[file_json(r) for r in page], count=len(page),
            next_cursor=encode_cursor(page[-1]) if more else None))

    async def stat(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        version_no = _int_param(request, "version", None, lo=1, hi=MAX_VERSION)
        record = await self.files.get(file_id, self._reader_scope(request))
        version = await self.files.version(record, version_no)
        facts(request).mode = self.files.mode_of(file_id).value
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
        record = await self.files.get(file_id, self._reader_scope(request))
        versions = await self.files.versions(record)
        facts(request).mode = self.files.mode_of(file_id).value
        return web.json_response({
            "file_id": file_id, "path": record.path, "current_version": record.current_version,
            "versions": [version_json(v, record.current_version) for v in versions],
        })

    async def download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        record = await self.files.get(file_id, self._reader_scope(request))
        return await self._send(request, record)

    async def download_by_path(self, request: web.Request) -> web.StreamResponse:
        path = _path_name(request)
        return await self._send(request, await self._find_by_path(request, path))

    async def _find_by_path(self, request: web.Request, path: str) -> FileRecord:
        """The file a path names. With accounts, the caller's; in single-user
        mode with ``user_id``, that owner's. In single-user mode without it,
        the path as the listing shows it (every owner's files): the local
        user's file of that name if there is one, else the one file of that
        name, whoever it was uploaded for (the original's ``user_id`` form
        field); several owners' files of one name are a 409 asking for
        ``user_id``."""
        if not is_open(request) or request.query.get("user_id"):
            return await self.files.find(self._owner(request), path)
        try:
            return await self.files.find(_DEFAULT_OWNER, path)
        except NotFound:
            pass
        named = [r for r in await self.files.list_files(owner=None, prefix=path, after=None,
                                                        limit=_PATH_HOLDERS)
                 if r.path == path]
        if not named:
            raise NotFound(f"no file named {path!r}")
        if len(named) > 1:
            owners = ", ".join(sorted({r.owner for r in named}))
            raise Conflict(f"several files are named {path!r} (user_id {owners}); "
                           "add ?user_id= to choose one", code="ambiguous_path")
        return named[0]

    async def _send(self, request: web.Request, record: FileRecord) -> web.StreamResponse:
        version_no = _int_param(request, "version", None, lo=1, hi=MAX_VERSION)
        read = await self.files.read(record, version_no)
        version = read.version
        info = facts(request)
        info.file_id, info.mode = record.file_id, read.mode.value
        headers = _download_headers(record, read)
        if _etag_matches(request.headers.get("If-None-Match"), version.etag):
            return web.Response(status=304, headers=headers)
        byte_range = _requested_range(request, version)
        content_type = mimetypes.guess_type(record.path)[0] or "application/octet-stream"
        if byte_range is None and len(version.chunks) == 1 and request.method == "GET":
            return await self._send_whole(request, version, headers, content_type)
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
        return await self._stream(request, response, version, byte_range)

    async def _send_whole(self, request: web.Request, version: VersionRecord,
                          headers: dict[str, str], content_type: str) -> web.Response:
        """One chunk (most small files): read and verified before any header
        goes out, then sent in one piece."""
        stream = self.files.stream(version, None, 1)
        try:
            body = await anext(stream)
        finally:
            await stream.aclose()
        facts(request).bytes = len(body)
        metrics.DOWNLOAD_BYTES.inc(len(body))
        return web.Response(body=body, headers=headers, content_type=content_type)

    async def _stream(self, request: web.Request, response: web.StreamResponse,
                      version: VersionRecord, byte_range: ByteRange | None
                      ) -> web.StreamResponse:
        info = facts(request)
        stream = self.files.stream(version, byte_range, self.settings.read_ahead)
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
        version_no = _int_param(request, "version", None, lo=1, hi=MAX_VERSION)
        deleted = await self.files.delete(file_id, self._reader_scope(request), version_no)
        return web.json_response(envelope("File deleted successfully", None,
                                          file_id=file_id, deleted_versions=deleted))


def _path_name(request: web.Request) -> str:
    """The file name in a ``/files/content/{path}`` URL, checked as sent
    (escapes that are not UTF-8) and as decoded (:func:`normalize_name`)."""
    require_utf8_escapes(request.raw_path.partition("?")[0])
    return normalize_name(request.match_info["path"])


def _raw_query_value(request: web.Request, name: str) -> str | None:
    """A query parameter exactly as sent, escapes still in (the decoded
    ``request.query`` has already lost escapes that were not UTF-8)."""
    for pair in request.raw_path.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return None


def _uploaded(request: web.Request, result: UploadResult, status: int = 201,
              message: str = "File uploaded successfully", **more: object) -> web.Response:
    info = facts(request)
    info.file_id, info.mode, info.bytes = (result.file.file_id, result.version.mode,
                                           result.version.size)
    body = envelope(message, upload_data(result), **upload_json(result), **more)
    return web.json_response(body, status=status,
                             headers={"ETag": result.version.etag,
                                      "X-EchoFS-Mode": result.version.mode})


def _asked_consistency(fields: dict[str, str]) -> tuple[str, Hint | None]:
    """The level an upload form asks for, and the hint that gives it: the
    ``consistency`` field if strong or available; with auto, the ``hint``
    field if it leans one way; else None (the file's own mode)."""
    level = fields.get("consistency", "auto").strip().lower() or "auto"
    if level not in _LEVELS:
        raise BadRequest(f"consistency must be one of {', '.join(_LEVELS)}; got "
                         f"{fields['consistency']!r}", code="invalid_consistency")
    raw_hint = fields.get("hint", "").strip().lower()
    hint = _HINT_WORDS.get(raw_hint) if raw_hint else Hint.AUTO
    if hint is None:
        raise BadRequest(f"hint must be one of auto, strong, available; got "
                         f"{fields['hint']!r}", code="invalid_hint")
    if level != "auto":
        return level, Hint(level)
    return level, None if hint is Hint.AUTO else hint


def _download_headers(record: FileRecord, read: FileRead) -> dict[str, str]:
    headers = {
        "ETag": read.version.etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(record.path),
        "X-EchoFS-Version": str(read.version.version),
        "X-EchoFS-Mode": read.mode.value,
    }
    if read.stale:
        headers["X-EchoFS-Stale"] = "true"
    return headers


def _requested_range(request: web.Request, version: VersionRecord) -> ByteRange | None:
    """The Range asked for, unless an If-Range names another version."""
    if_range = request.headers.get("If-Range")
    if if_range is None or if_range.strip() == version.etag:
        return parse_range(request.headers.get("Range"), version.size)
    return None


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
