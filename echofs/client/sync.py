"""A blocking wrapper around :class:`~echofs.client.aio.AsyncClient`.

The async client runs on an event loop in a private thread, so this works
from plain scripts and from code that already runs an event loop elsewhere
(a call blocks its caller, never that loop). Progress callbacks run on the
private thread.

Each blocking method is made from its async twin (:func:`_blocking`), so the
two clients cannot drift apart: same parameters, same docstring, same result.
Only what has no direct twin is written out — :meth:`Client.all_files`
collects :meth:`AsyncClient.iter_files` into a list; streams stay async-only.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from echofs.client.aio import AsyncClient
from echofs.client.models import FileInfo

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]
              ) -> Callable[Concatenate[Client, P], T]:
    """The blocking twin of an :class:`AsyncClient` method, run on the
    client's private loop."""

    @functools.wraps(method)
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._aio, *args, **kwargs))

    call.__qualname__ = f"Client.{method.__name__}"
    return call


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

    register = _blocking(AsyncClient.register)
    login = _blocking(AsyncClient.login)
    me = _blocking(AsyncClient.me)

    # -- files -------------------------------------------------------------------------

    upload = _blocking(AsyncClient.upload)
    upload_form = _blocking(AsyncClient.upload_form)
    # Resumable uploads (upload sessions).
    upload_resumable = _blocking(AsyncClient.upload_resumable)
    upload_init = _blocking(AsyncClient.upload_init)
    upload_part = _blocking(AsyncClient.upload_part)
    upload_status = _blocking(AsyncClient.upload_status)
    upload_complete = _blocking(AsyncClient.upload_complete)
    upload_abort = _blocking(AsyncClient.upload_abort)
    upload_sessions = _blocking(AsyncClient.upload_sessions)
    list_files = _blocking(AsyncClient.list_files)

    def all_files(self, prefix: str = "", *, all_users: bool = False) -> list[FileInfo]:
        """Every file under ``prefix``, all pages of :meth:`list_files` at once."""
        async def collect() -> list[FileInfo]:
            return [f async for f in self._aio.iter_files(prefix, all_users=all_users)]
        return self._run(collect())

    stat = _blocking(AsyncClient.stat)
    versions = _blocking(AsyncClient.versions)
    find = _blocking(AsyncClient.find)
    resolve = _blocking(AsyncClient.resolve)
    delete = _blocking(AsyncClient.delete)
    read = _blocking(AsyncClient.read)
    download = _blocking(AsyncClient.download)
    download_path = _blocking(AsyncClient.download_path)

    # -- cluster and consistency --------------------------------------------------------

    health = _blocking(AsyncClient.health)
    workers = _blocking(AsyncClient.workers)
    mode = _blocking(AsyncClient.mode)
    set_hint = _blocking(AsyncClient.set_hint)
    set_override = _blocking(AsyncClient.set_override)
    consistency_status = _blocking(AsyncClient.consistency_status)
    critical_keys = _blocking(AsyncClient.critical_keys)
    add_critical_keys = _blocking(AsyncClient.add_critical_keys)
    remove_critical_keys = _blocking(AsyncClient.remove_critical_keys)
    transitions = _blocking(AsyncClient.transitions)
