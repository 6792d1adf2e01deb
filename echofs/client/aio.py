"""The asynchronous EchoFS client: one method per REST endpoint, on aiohttp.

Transfers stream (:mod:`echofs.client.transfers`): memory stays flat for any
size, progress is reported through a callback ``(bytes_done,
bytes_total_or_None)``, and a full download is checked against the size and
BLAKE3 digest the server announced before the file appears under its final
name — a short or corrupt transfer raises
:class:`~echofs.client.errors.IntegrityError` and leaves nothing behind.
Paths and ids go into URLs through :mod:`echofs.client.names`.

Errors are :class:`EchoFSClientError` (status, code, message) — the
server's own error body when there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import yarl

from echofs.client.credentials import server_url
from echofs.client.errors import (
    ConnectionFailed,
    EchoFSClientError,
    NotFound,
    error_for,
)
from echofs.client.models import (
    DeleteResult,
    DownloadResult,
    FileDetails,
    FileInfo,
    FilePage,
    Identity,
    ModeInfo,
    Session,
    Transition,
    UploadResult,
    VersionList,
    WorkerInfo,
)
from echofs.client.names import FILE_ID, quote_path, quote_segment
from echofs.client.resumable import (
    LocalFile,
    Progress,
    ResumeInfo,
    ResumeState,
    file_digest,
    part_digest,
    range_pieces,
    with_retries,
)
from echofs.client.transfers import (
    Destination,
    DownloadStream,
    ProgressCallback,
    Source,
    counted,
    pieces,
    save,
    source_size,
)

_API = "/api/v1"


class AsyncClient:
    """EchoFS over HTTP. Use as ``async with AsyncClient(url, token=...) as c``."""

    def __init__(self, base_url: str | None = None, *, token: str | None = None,
                 connect_timeout: float = 10.0, read_timeout: float = 300.0,
                 user_agent: str | None = None) -> None:
        self.base_url = server_url(base_url)
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                              sock_read=read_timeout)
        self._user_agent = user_agent or "echofs-client"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- plumbing ------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily so the session belongs to the loop that first uses it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": self._user_agent})
        return self._session

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    @asynccontextmanager
    async def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                       json: Any = None, data: Any = None,
                       headers: dict[str, str] | None = None, accept: tuple[int, ...] = (),
                       ) -> AsyncIterator[aiohttp.ClientResponse]:
        # Already encoded by us (see quote_path): sent exactly as built.
        url = yarl.URL(f"{self.base_url}{path}", encoded=True)
        clean = {k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in (params or {}).items() if v is not None}
        try:
            async with self._http().request(method, url, params=clean, json=json, data=data,
                                            headers=self._headers(headers)) as resp:
                if resp.status >= 400 and resp.status not in accept:
                    raise await _error_of(resp)
                yield resp
        except aiohttp.ClientConnectorError:
            raise ConnectionFailed(f"cannot connect to {self.base_url} (is the server "
                                   "running? set --server or ECHOFS_URL)") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ConnectionFailed(f"connection to {self.base_url} failed: "
                                   f"{exc or type(exc).__name__}") from None
        except TimeoutError:
            raise ConnectionFailed(f"{self.base_url} did not answer in time") from None

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self._request(method, path, **kwargs) as resp:
            try:
                return await resp.json(content_type=None)
            except ValueError:
                raise EchoFSClientError(resp.status, "bad_response",
                                        f"{method} {path} did not return JSON") from None

    # -- accounts ------------------------------------------------------------------

    async def register(self, username: str, password: str) -> Session:
        """Create an account (the first one becomes admin) and use its token."""
        body = await self._json("POST", f"{_API}/auth/register",
                                json={"username": username, "password": password})
        session = Session.from_json(body)
        self.token = session.token
        return session

    async def login(self, username: str, password: str) -> Session:
        body = await self._json("POST", f"{_API}/auth/login",
                                json={"username": username, "password": password})
        session = Session.from_json(body)
        self.token = session.token
        return session

    async def me(self) -> Identity:
        return Identity.from_json(await self._json("GET", f"{_API}/auth/me"))

    async def logout(self) -> bool:
        """Revoke every token of this account on the server; False if the
        server already refused the token (expired, revoked, account gone)."""
        async with self._request("POST", f"{_API}/auth/logout", accept=(401,)) as resp:
            return resp.status != 401

    # -- uploads -------------------------------------------------------------------

    async def upload(self, source: Source, remote: str, *, consistency: str | None = None,
                     progress: ProgressCallback | None = None,
                     size: int | None = None) -> UploadResult:
        """Stream ``source`` to ``remote`` (a path like ``photos/cat.jpg``);
        uploading to an existing path makes a new version."""
        total = size if size is not None else source_size(source)
        headers = {"Content-Type": "application/octet-stream"}
        if total is not None:
            # Lets the server refuse an oversize body before we send it.
            headers["Content-Length"] = str(total)
        if consistency:
            headers["X-EchoFS-Consistency"] = consistency
        body = counted(pieces(source), progress, total)
        return UploadResult.from_json(await self._json(
            "PUT", f"{_API}/files/content/{quote_path(remote)}", data=body, headers=headers))

    async def upload_form(self, source: Source, *, filename: str, path: str | None = None,
                          user_id: str | None = None, consistency: str | None = None,
                          progress: ProgressCallback | None = None,
                          size: int | None = None) -> UploadResult:
        """The original project's multipart upload (``POST /files/upload``)."""
        total = size if size is not None else source_size(source)
        with aiohttp.MultipartWriter("form-data") as form:
            for name, value in (("path", path), ("user_id", user_id),
                                ("consistency", consistency)):
                if value is not None:
                    part = form.append(value)
                    part.set_content_disposition("form-data", name=name)
            payload = aiohttp.payload.AsyncIterablePayload(
                counted(pieces(source), progress, total),
                content_type="application/octet-stream")
            payload.set_content_disposition("form-data", name="file", filename=filename)
            form.append_payload(payload)
            return UploadResult.from_json(
                await self._json("POST", f"{_API}/files/upload", data=form))

    # -- resumable uploads (upload sessions) -------------------------------------------

    async def upload_init(self, remote: str, size: int, *, part_size: int | None = None,
                          consistency: str | None = None) -> dict[str, Any]:
        """Open an upload session for ``size`` bytes at ``remote``: its
        ``session_id``, ``chunk_size`` (part size), ``total_chunks`` and each
        part's ``index``/``offset``/``size`` under ``chunks``."""
        body: dict[str, Any] = {"path": remote, "file_size": size}
        if part_size is not None:
            body["chunk_size"] = part_size
        if consistency:
            body["consistency"] = consistency
        answer: dict[str, Any] = await self._json("POST", f"{_API}/files/upload/init",
                                                  json=body)
        return answer

    async def upload_part(self, session_id: str, part: int,
                          data: bytes | AsyncIterable[bytes], *, size: int | None = None,
                          blake3: str | None = None) -> dict[str, Any]:
        """Send part ``part`` (sending it again replaces it: safe to retry).
        ``blake3``: the part's digest, which the server checks."""
        headers = {"Content-Type": "application/octet-stream"}
        length = len(data) if isinstance(data, bytes) else size
        if length is not None:
            headers["Content-Length"] = str(length)
        if blake3:
            headers["X-EchoFS-BLAKE3"] = blake3
        answer: dict[str, Any] = await self._json(
            "PUT", f"{_API}/files/upload/{quote_segment(session_id)}/parts/{part}",
            data=data, headers=headers)
        return answer

    async def upload_status(self, session_id: str) -> dict[str, Any]:
        """The session, with the parts it holds (``received``) and lacks (``missing``)."""
        answer: dict[str, Any] = await self._json(
            "GET", f"{_API}/files/upload/{quote_segment(session_id)}")
        return answer

    async def upload_complete(self, session_id: str, *, blake3: str | None = None
                              ) -> UploadResult:
        """Make the session's parts the file's new version (safe to retry)."""
        body = {"blake3": blake3} if blake3 else {}
        return UploadResult.from_json(await self._json(
            "POST", f"{_API}/files/upload/{quote_segment(session_id)}/complete", json=body))

    async def upload_abort(self, session_id: str) -> None:
        await self._json("DELETE", f"{_API}/files/upload/{quote_segment(session_id)}")

    async def upload_sessions(self) -> list[dict[str, Any]]:
        """This account's open upload sessions."""
        return list((await self._json("GET", f"{_API}/files/upload/sessions"))["sessions"])

    async def upload_resumable(self, path: str | os.PathLike[str], remote: str, *,
                               consistency: str | None = None,
                               progress: ProgressCallback | None = None,
                               part_size: int | None = None, concurrency: int = 4,
                               state: ResumeState | None = None,
                               on_start: Callable[[ResumeInfo], None] | None = None,
                               ) -> UploadResult:
        """Upload a local file through an upload session, resuming the one a
        previous, interrupted run of the same upload left (see
        :mod:`echofs.client.resumable`). Parts are sent ``concurrency`` at a
        time; a part whose transfer fails transiently is sent again."""
        local = LocalFile.of(path)
        state = ResumeState() if state is None else state
        server = self.base_url
        session = None
        known = state.load(server, remote, local)
        if known is not None:
            try:
                session = await self.upload_status(known)
            except NotFound:  # expired or aborted meanwhile: start afresh
                session = None
            if session is not None and int(session["file_size"]) != local.size:
                session = None
        resumed = session is not None
        if session is None:
            session = await self.upload_init(remote, local.size, part_size=part_size,
                                             consistency=consistency)
            state.save(server, remote, local, session["session_id"])
        session_id = str(session["session_id"])
        if session.get("state") == "completed":
            result = await self.upload_complete(session_id)
            state.forget(server, remote, local)
            return result
        held = {int(n) for n in session.get("received", [])}
        step, total_parts = int(session["chunk_size"]), int(session["total_chunks"])
        if on_start is not None:
            on_start(ResumeInfo(session_id, resumed, len(held), total_parts))
        meter = Progress(progress, local.size)
        meter.add(sum(min(step, local.size - n * step) for n in held))
        whole = asyncio.create_task(file_digest(local.path))
        slots = asyncio.Semaphore(max(1, concurrency))

        async def send(n: int) -> None:
            offset = n * step
            size = max(0, min(step, local.size - offset))
            async with slots:
                digest = await part_digest(local.path, offset, size)

                async def attempt() -> None:
                    sent = 0

                    def count(k: int) -> None:
                        nonlocal sent
                        sent += k
                        meter.add(k)
                    try:
                        await self.upload_part(
                            session_id, n, range_pieces(local.path, offset, size, count),
                            size=size, blake3=digest)
                    except BaseException:
                        meter.add(-sent)  # this attempt's bytes do not count
                        raise
                await with_retries(attempt)

        tasks = [asyncio.create_task(send(n)) for n in range(total_parts) if n not in held]
        try:
            await asyncio.gather(*tasks)
            digest = await whole
        except BaseException:
            for task in (*tasks, whole):
                task.cancel()
            await asyncio.gather(*tasks, whole, return_exceptions=True)
            raise
        result = await with_retries(lambda: self.upload_complete(session_id, blake3=digest))
        state.forget(server, remote, local)
        return result

    # -- listing and metadata --------------------------------------------------------

    async def list_files(self, prefix: str = "", *, limit: int = 100,
                         cursor: str | None = None, all_users: bool = False,
                         user_id: str | None = None) -> FilePage:
        """One page of files in path order; pass ``next_cursor`` for the next.
        ``all_users`` (admins, with accounts) lists every user's files."""
        params: dict[str, Any] = {"prefix": prefix or None, "limit": limit, "cursor": cursor,
                                  "user_id": user_id}
        if all_users:
            params["all"] = True
        return FilePage.from_json(await self._json("GET", f"{_API}/files", params=params))

    async def iter_files(self, prefix: str = "", *, page_size: int = 1000,
                         all_users: bool = False) -> AsyncIterator[FileInfo]:
        cursor = None
        while True:
            page = await self.list_files(prefix, limit=page_size, cursor=cursor,
                                         all_users=all_users)
            for info in page.files:
                yield info
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def stat(self, file_id: str, *, version: int | None = None) -> FileDetails:
        return FileDetails.from_json(await self._json(
            "GET", f"{_API}/files/{quote_segment(file_id)}", params={"version": version}))

    async def versions(self, file_id: str) -> VersionList:
        return VersionList.from_json(
            await self._json("GET", f"{_API}/files/{quote_segment(file_id)}/versions"))

    async def find(self, path: str, *, all_users: bool = False) -> FileInfo:
        """The file at ``path`` (exact match), or :class:`NotFound`."""
        path = unicodedata.normalize("NFC", path).strip("/")
        matches = []
        async for info in self.iter_files(path, page_size=100, all_users=all_users):
            if info.path != path:
                break  # path order: every exact match came first
            matches.append(info)
        if not matches:
            raise NotFound(404, "not_found", f"no file at path {path!r}")
        if len(matches) > 1:
            owners = ", ".join(sorted(m.owner for m in matches))
            raise EchoFSClientError(0, "ambiguous_path",
                                    f"{len(matches)} files at {path!r} (owners {owners}); "
                                    "give the file id instead")
        return matches[0]

    async def resolve(self, ref: str) -> FileInfo:
        """A file by id (32 hex digits) or, failing that, by path."""
        if FILE_ID.fullmatch(ref):
            with contextlib.suppress(NotFound):
                return (await self.stat(ref)).file
        return await self.find(ref)

    async def delete(self, file_id: str, *, version: int | None = None) -> DeleteResult:
        """Delete a file, or only one of its versions."""
        return DeleteResult.from_json(await self._json(
            "DELETE", f"{_API}/files/{quote_segment(file_id)}", params={"version": version}))

    # -- downloads -------------------------------------------------------------------

    @asynccontextmanager
    async def stream(self, file_id: str | None = None, *, path: str | None = None,
                     version: int | None = None,
                     byte_range: tuple[int, int | None] | None = None,
                     ) -> AsyncIterator[DownloadStream]:
        """Open a download by id or by path; iterate the result for its bytes.
        ``byte_range`` is (first, last) inclusive, last None for 'to the end'."""
        if (file_id is None) == (path is None):
            raise ValueError("give exactly one of file_id and path")
        url = (f"{_API}/files/{quote_segment(file_id)}/download" if file_id is not None
               else f"{_API}/files/content/{quote_path(path or '')}")
        headers = {}
        if byte_range is not None:
            first, last = byte_range
            headers["Range"] = f"bytes={first}-{'' if last is None else last}"
        async with self._request("GET", url, params={"version": version},
                                 headers=headers) as resp:
            yield DownloadStream(resp, file_id)

    async def read(self, file_id: str, *, version: int | None = None,
                   byte_range: tuple[int, int | None] | None = None) -> bytes:
        """A whole (small) file, or a range of one, in memory."""
        data = bytearray()
        async with self.stream(file_id, version=version, byte_range=byte_range) as download:
            async for piece in download:
                data += piece
        return bytes(data)

    async def download(self, file_id: str, dest: Destination, *, version: int | None = None,
                       progress: ProgressCallback | None = None,
                       verify: bool = True) -> DownloadResult:
        """Stream a file to ``dest``; see :data:`Destination`."""
        async with self.stream(file_id, version=version) as download:
            return await save(download, dest, progress, verify)

    async def download_path(self, path: str, dest: Destination, *,
                             version: int | None = None,
                             progress: ProgressCallback | None = None,
                             verify: bool = True) -> DownloadResult:
        async with self.stream(path=path, version=version) as download:
            return await save(download, dest, progress, verify)

    # -- cluster -----------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """``GET /health``; a 503 (too few workers) is returned, not raised."""
        return await self._json("GET", f"{_API}/health", accept=(503,))

    async def workers(self) -> list[WorkerInfo]:
        body = await self._json("GET", f"{_API}/workers/health")
        return [WorkerInfo.from_json(w) for w in body["workers"]]

    # -- consistency (admin) ---------------------------------------------------------

    async def mode(self, object_id: str) -> ModeInfo:
        return ModeInfo.from_json(await self._json(
            "GET", f"{_API}/consistency/mode", params={"object_id": object_id}))

    async def set_hint(self, object_id: str, hint: str) -> ModeInfo:
        """Pin a file to a mode (``strong``/``hybrid``/``available``) or ``auto``."""
        return ModeInfo.from_json(await self._json(
            "POST", f"{_API}/consistency/hint", json={"object_id": object_id, "hint": hint}))

    async def set_override(self, mode: str | None) -> str | None:
        """Force every non-critical file into ``mode``; None clears the override."""
        if mode is None:
            body = await self._json("DELETE", f"{_API}/consistency/override")
        else:
            body = await self._json("POST", f"{_API}/consistency/override",
                                    json={"mode": mode})
        return body.get("override")

    async def consistency_status(self) -> dict[str, Any]:
        return await self._json("GET", f"{_API}/consistency/status")

    async def critical_keys(self) -> list[str]:
        return list((await self._json("GET", f"{_API}/consistency/critical-keys"))["keys"])

    async def add_critical_keys(self, keys: list[str]) -> list[str]:
        body = await self._json("POST", f"{_API}/consistency/critical-keys",
                                json={"keys": keys})
        return list(body["keys"])

    async def remove_critical_keys(self, keys: list[str]) -> list[str]:
        body = await self._json("DELETE", f"{_API}/consistency/critical-keys",
                                json={"keys": keys})
        return list(body["keys"])

    async def transitions(self, *, object_id: str | None = None, limit: int = 100,
                          before: int | None = None) -> list[Transition]:
        body = await self._json("GET", f"{_API}/consistency/transitions",
                                params={"object_id": object_id, "limit": limit,
                                        "before": before})
        return [Transition.from_json(t) for t in body["transitions"]]


async def _error_of(resp: aiohttp.ClientResponse) -> EchoFSClientError:
    request_id = resp.headers.get("X-Request-Id")
    try:
        body = await resp.json(content_type=None)
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        code = f"http_{resp.status}"
        message = resp.reason or f"HTTP {resp.status}"
    return error_for(resp.status, code, message, request_id)

