"""The EchoFS Python client, used by the CLI, the benchmarks and the tests.

``AsyncClient`` (aiohttp, :mod:`echofs.client.aio`) has one method per REST
endpoint, with streaming uploads and downloads (:mod:`echofs.client.transfers`);
``Client`` (:mod:`echofs.client.sync`) is the same API, blocking, each method
made from its async twin. Results are the
dataclasses of :mod:`echofs.client.models`; failures are
:class:`EchoFSClientError` with the server's status, code and message.

Names are imported on first use (PEP 562), so importing a light submodule —
the CLI's argument definitions — does not load aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AsyncClient": "aio", "DownloadStream": "transfers", "ProgressCallback": "transfers",
    "Client": "sync",
    "resolve_token": "credentials", "server_url": "credentials",
    **{name: "errors" for name in (
        "ConnectionFailed", "EchoFSClientError", "Forbidden", "IntegrityError", "NotFound",
        "Unauthorized", "Unavailable")},
    **{name: "models" for name in (
        "ChunkInfo", "DeleteResult", "DownloadResult", "FileDetails", "FileInfo", "FilePage",
        "Identity", "ModeInfo", "Session", "Transition", "UploadResult", "User", "VersionInfo",
        "VersionList", "WorkerInfo")},
}

__all__ = [
    "AsyncClient", "ChunkInfo", "Client", "ConnectionFailed", "DeleteResult", "DownloadResult",
    "DownloadStream", "EchoFSClientError", "FileDetails", "FileInfo", "FilePage", "Forbidden",
    "Identity", "IntegrityError", "ModeInfo", "NotFound", "ProgressCallback", "Session",
    "Transition", "Unauthorized", "Unavailable", "UploadResult", "User", "VersionInfo",
    "VersionList", "WorkerInfo", "resolve_token", "server_url",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from echofs.client.aio import AsyncClient
    from echofs.client.credentials import resolve_token, server_url
    from echofs.client.errors import (
        ConnectionFailed,
        EchoFSClientError,
        Forbidden,
        IntegrityError,
        NotFound,
        Unauthorized,
        Unavailable,
    )
    from echofs.client.models import (
        ChunkInfo,
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
        User,
        VersionInfo,
        VersionList,
        WorkerInfo,
    )
    from echofs.client.sync import Client
    from echofs.client.transfers import DownloadStream, ProgressCallback
