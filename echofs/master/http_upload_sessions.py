"""REST handlers for resumable uploads (upload sessions).

    POST   /api/v1/files/upload/init                      open a session
    PUT    /api/v1/files/upload/{session_id}/parts/{n}    send part n (raw bytes)
    GET    /api/v1/files/upload/{session_id}              which parts are held
    POST   /api/v1/files/upload/{session_id}/complete     make the file's new version
    DELETE /api/v1/files/upload/{session_id}              abort
    GET    /api/v1/files/upload/sessions                  the caller's open sessions

HTTP only: what a session does is :mod:`echofs.master.upload_sessions`.
Ownership follows the files API: with accounts a session is its creator's
(anyone else gets a 404); in open (single-user) mode the original's
``user_id`` names the owner and any caller may continue any session.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from echofs.auth.http import identity, is_open
from echofs.core.consistency import Hint, parse_hint
from echofs.core.errors import BadRequest
from echofs.core.names import normalize_name
from echofs.core.upload_sessions import PartRecord, SessionState, UploadSession
from echofs.master.file_json import file_json, iso
from echofs.master.upload_body import READ_PIECE, body_pieces
from echofs.master.upload_sessions import (
    CompletedUpload,
    PartDigests,
    SessionStatus,
    UploadSessionService,
    check_digest,
)
from echofs.observability import metrics
from echofs.serving.json_body import read_json
from echofs.serving.middleware import facts

PREFIX = "/api/v1/files/upload"
# Headers a part's digest may come in (hex).
BLAKE3_HEADER = "X-EchoFS-BLAKE3"
SHA256_HEADER = "X-EchoFS-SHA256"
_DEFAULT_OWNER = "local"
_SESSION_ID = r"{session_id:[0-9a-f]{32}}"
_PART = r"{part:[0-9]{1,9}}"


class UploadSessionsAPI:
    def __init__(self, sessions: UploadSessionService) -> None:
        self.sessions = sessions

    def routes(self) -> list[web.RouteDef]:
        session = f"{PREFIX}/{_SESSION_ID}"
        return [
            web.post(f"{PREFIX}/init", self.init),
            web.get(f"{PREFIX}/sessions", self.list_open),
            web.put(f"{session}/parts/{_PART}", self.put_part),
            # The original's name for a part: a chunk.
            web.put(f"{session}/chunks/{_PART}", self.put_part),
            web.get(session, self.status),
            web.post(f"{session}/complete", self.complete),
            web.delete(session, self.abort),
        ]

    # -- who is asking ------------------------------------------------------------------

    def _owner(self, request: web.Request, given: object = None) -> str:
        if not is_open(request):
            return identity(request).user_id
        owner = given if isinstance(given, str) and given else (
            request.query.get("user_id") or _DEFAULT_OWNER)
        if len(owner) > 255 or any(ord(c) < 32 for c in owner):
            raise BadRequest("user_id must be at most 255 printable characters")
        facts(request).user = owner
        return owner

    @staticmethod
    def _scope(request: web.Request) -> str | None:
        """Whose sessions the caller may touch: its own; in open mode, any."""
        return None if is_open(request) else identity(request).user_id

    # -- handlers -----------------------------------------------------------------------

    async def init(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        name = _first(body, "path", "file_name", "filename", "name")
        if not isinstance(name, str) or not name:
            raise BadRequest("give the file's name: 'file_name' (or 'path')",
                             code="missing_name")
        path = normalize_name(name)
        size = _integer(body, ("file_size", "total_size", "size"), required=True)
        assert size is not None
        part_size = _integer(body, ("chunk_size", "part_size"), required=False)
        hint = _hint(body.get("consistency") or request.headers.get("X-EchoFS-Consistency"))
        session = await self.sessions.create(self._owner(request, body.get("user_id")), path,
                                             size, part_size, hint)
        data = session_json(session)
        data["chunks"] = session.layout.expectations()
        return web.json_response(
            {**data, "success": True, "message": "upload session created", "data": data},
            status=201)

    async def list_open(self, request: web.Request) -> web.Response:
        owner = self._scope(request)
        if owner is None and request.query.get("user_id"):
            owner = request.query["user_id"]
        found = await self.sessions.list_open(owner)
        return web.json_response({"sessions": [session_json(s) for s in found],
                                  "count": len(found)})

    async def put_part(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        part = int(request.match_info["part"])
        digests = PartDigests(
            blake3=check_digest(BLAKE3_HEADER, request.headers.get(BLAKE3_HEADER)),
            sha256=check_digest(SHA256_HEADER, request.headers.get(SHA256_HEADER)))

        async def counted():  # type: ignore[no-untyped-def]
            async for piece in body_pieces(request.content.iter_chunked(READ_PIECE)):
                metrics.UPLOAD_BYTES.inc(len(piece))
                yield piece

        record = await self.sessions.put_part(session_id, self._scope(request), part,
                                              counted(), digests, request.content_length)
        facts(request).bytes = record.size
        return web.json_response({"session_id": session_id, **part_json(record)})

    async def status(self, request: web.Request) -> web.Response:
        status = await self.sessions.status(request.match_info["session_id"],
                                            self._scope(request))
        return web.json_response(status_json(status))

    async def complete(self, request: web.Request) -> web.Response:
        # Someone else's session is a 404 whatever the body holds.
        await self.sessions.session(request.match_info["session_id"], self._scope(request))
        body: Any = {}
        if request.content_length or request.headers.get("Transfer-Encoding"):
            body = await read_json(request)
            if not isinstance(body, dict):
                raise BadRequest("request body must be a JSON object (or empty)")
        raw_digest = body.get("blake3")
        if raw_digest is not None and not isinstance(raw_digest, str):
            raise BadRequest("blake3 must be a string of 64 hex digits", code="invalid_digest")
        parts = body.get("parts")
        if parts is not None and (not isinstance(parts, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) for n in parts)):
            raise BadRequest("parts must be a list of part numbers", code="invalid_parts")
        done = await self.sessions.complete(request.match_info["session_id"],
                                            self._scope(request),
                                            check_digest("blake3", raw_digest), parts)
        info = facts(request)
        info.file_id, info.mode = done.file.file_id, done.version.mode
        return web.json_response(completed_json(request.match_info["session_id"], done),
                                 status=201 if done.created else 200,
                                 headers={"ETag": done.version.etag,
                                          "X-EchoFS-Mode": done.version.mode})

    async def abort(self, request: web.Request) -> web.Response:
        session_id = request.match_info["session_id"]
        await self.sessions.abort(session_id, self._scope(request))
        return web.json_response({"session_id": session_id, "aborted": True})


# -- answers ------------------------------------------------------------------------------


def session_json(session: UploadSession) -> dict[str, Any]:
    body: dict[str, Any] = {
        "session_id": session.session_id, "upload_id": session.session_id,
        "path": session.path, "file_name": session.path, "owner": session.owner,
        "file_size": session.layout.total_size, "chunk_size": session.layout.part_size,
        "total_chunks": session.total_parts, "consistency_mode": session.mode.value,
        "state": session.state.value, "created_at": iso(session.created_at),
        "expires_at": iso(session.expires_at),
    }
    if session.state == SessionState.COMPLETED:
        body.update(file_id=session.file_id, version=session.version)
    return body


def part_json(record: PartRecord) -> dict[str, Any]:
    return {"index": record.part, "part": record.part, "size": record.size,
            "blake3": record.blake3, "sha256": record.sha256, "md5": record.md5,
            "chunks": record.chunk_count,
            "replicas_acked": record.replicas_acked}


def status_json(status: SessionStatus) -> dict[str, Any]:
    body = session_json(status.session)
    body["parts"] = [part_json(p) for p in status.parts]
    body["received"] = [p.part for p in status.parts]
    body["missing"] = ([] if status.session.state == SessionState.COMPLETED
                       else status.missing)
    body["bytes_received"] = sum(p.size for p in status.parts)
    return body


def completed_json(session_id: str, done: CompletedUpload) -> dict[str, Any]:
    data = {
        **file_json(done.file), "session_id": session_id,
        "version": done.version.version, "size": done.version.size,
        "chunks": done.version.chunk_count, "blake3": done.version.blake3,
        "etag": done.version.etag, "mode": done.version.mode,
        "replicas_acked": done.version.replicas_acked,
    }
    return {**data, "success": True, "message": "upload completed", "data": data}


def _first(body: dict[str, Any], *names: str) -> object:
    for name in names:
        if body.get(name) is not None:
            return body[name]
    return None


def _integer(body: dict[str, Any], names: tuple[str, ...], *, required: bool) -> int | None:
    value = _first(body, *names)
    if value is None:
        if required:
            raise BadRequest(f"give the file's size in bytes: '{names[0]}'",
                             code="missing_size")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{names[0]}' must be an integer number of bytes",
                         code="invalid_size")
    return value


def _hint(raw: object) -> Hint | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise BadRequest("consistency must be a string", code="invalid_consistency")
    try:
        return parse_hint(raw)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_consistency") from None
