"""A blocking wrapper around :class:`~echofs.client.aio.AsyncClient`.

The async client runs on an event loop in a private thread, so this works
from plain scripts and from code that already runs an event loop elsewhere
(a call blocks its caller, never that loop). Progress callbacks run on the
private thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from echofs.client.aio import AsyncClient, Destination, ProgressCallback, Source
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

T = TypeVar("T")


class Client:
    """``with Client("http://127.0.0.1:8080") as c: c.upload("a.txt", "docs/a.txt")``"""

    def __init__(self, base_url: str | None = None, *, token: str | None = None,
                 connect_timeout: float = 10.0, read_timeout: float = 300.0) -> None:
        self._aio = AsyncClient(base_url, token=token, connect_timeout=connect_timeout,
                                read_timeout=read_timeout)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="echofs-client")
        self._thread.start()
        self._closed = False

    @property
    def base_url(self) -> str:
        return self._aio.base_url

    @property
    def token(self) -> str | None:
        return self._aio.token

    @token.setter
    def token(self, value: str | None) -> None:
        self._aio.token = value

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        if self._closed:
            return
        self._run(self._aio.close())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts --------------------------------------------------------------------

    def register(self, username: str, password: str) -> Session:
        return self._run(self._aio.register(username, password))

    def login(self, username: str, password: str) -> Session:
        return self._run(self._aio.login(username, password))

    def me(self) -> Identity:
        return self._run(self._aio.me())

    # -- files -------------------------------------------------------------------------

    def upload(self, source: Source, remote: str, *, consistency: str | None = None,
               progress: ProgressCallback | None = None,
               size: int | None = None) -> UploadResult:
        return self._run(self._aio.upload(source, remote, consistency=consistency,
                                          progress=progress, size=size))

    def upload_form(self, source: Source, *, filename: str, path: str | None = None,
                    user_id: str | None = None, consistency: str | None = None,
                    progress: ProgressCallback | None = None) -> UploadResult:
        return self._run(self._aio.upload_form(source, filename=filename, path=path,
                                               user_id=user_id, consistency=consistency,
                                               progress=progress))

    def list_files(self, prefix: str = "", *, limit: int = 100, cursor: str | None = None,
                   all_users: bool = False, user_id: str | None = None) -> FilePage:
        return self._run(self._aio.list_files(prefix, limit=limit, cursor=cursor,
                                              all_users=all_users, user_id=user_id))

    def all_files(self, prefix: str = "", *, all_users: bool = False) -> list[FileInfo]:
        async def collect() -> list[FileInfo]:
            return [f async for f in self._aio.iter_files(prefix, all_users=all_users)]
        return self._run(collect())

    def stat(self, file_id: str, *, version: int | None = None) -> FileDetails:
        return self._run(self._aio.stat(file_id, version=version))

    def versions(self, file_id: str) -> VersionList:
        return self._run(self._aio.versions(file_id))

    def find(self, path: str, *, all_users: bool = False) -> FileInfo:
        return self._run(self._aio.find(path, all_users=all_users))

    def resolve(self, ref: str) -> FileInfo:
        return self._run(self._aio.resolve(ref))

    def delete(self, file_id: str, *, version: int | None = None) -> DeleteResult:
        return self._run(self._aio.delete(file_id, version=version))

    def read(self, file_id: str, *, version: int | None = None,
             byte_range: tuple[int, int | None] | None = None) -> bytes:
        return self._run(self._aio.read(file_id, version=version, byte_range=byte_range))

    def download(self, file_id: str, dest: Destination, *, version: int | None = None,
                 progress: ProgressCallback | None = None,
                 verify: bool = True) -> DownloadResult:
        return self._run(self._aio.download(file_id, dest, version=version, progress=progress,
                                            verify=verify))

    def download_path(self, path: str, dest: Destination, *, version: int | None = None,
                      progress: ProgressCallback | None = None,
                      verify: bool = True) -> DownloadResult:
        return self._run(self._aio.download_path(path, dest, version=version,
                                                 progress=progress, verify=verify))

    # -- cluster and consistency --------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._run(self._aio.health())

    def workers(self) -> list[WorkerInfo]:
        return self._run(self._aio.workers())

    def mode(self, object_id: str) -> ModeInfo:
        return self._run(self._aio.mode(object_id))

    def set_hint(self, object_id: str, hint: str) -> ModeInfo:
        return self._run(self._aio.set_hint(object_id, hint))

    def set_override(self, mode: str | None) -> str | None:
        return self._run(self._aio.set_override(mode))

    def consistency_status(self) -> dict[str, Any]:
        return self._run(self._aio.consistency_status())

    def critical_keys(self) -> list[str]:
        return self._run(self._aio.critical_keys())

    def add_critical_keys(self, keys: list[str]) -> list[str]:
        return self._run(self._aio.add_critical_keys(keys))

    def remove_critical_keys(self, keys: list[str]) -> list[str]:
        return self._run(self._aio.remove_critical_keys(keys))

    def transitions(self, *, object_id: str | None = None, limit: int = 100,
                    before: int | None = None) -> list[Transition]:
        return self._run(self._aio.transitions(object_id=object_id, limit=limit, before=before))
