"""One lifecycle for a role: what started is stopped in reverse, a start that
fails half-way undoes itself, and HTTP drains before gRPC closes."""

from __future__ import annotations

from contextlib import AsyncExitStack

import aiohttp
import pytest
from aiohttp import web
from grpclib.server import Server

from echofs.serving.endpoints import role_app, serving
from echofs.serving.lifecycle import Lifecycle
from echofs.testing.process import free_port


class _Steps(Lifecycle):
    def __init__(self, fail_at: int | None = None) -> None:
        self.events: list[str] = []
        self.fail_at = fail_at

    async def _start(self, stack: AsyncExitStack) -> None:
        for step in range(3):
            if step == self.fail_at:
                raise RuntimeError(f"step {step} failed")
            self.events.append(f"start {step}")
            stack.callback(self.events.append, f"stop {step}")


async def test_stop_unwinds_what_started_in_reverse_once():
    steps = _Steps()
    async with steps:
        assert steps.events == ["start 0", "start 1", "start 2"]
    assert steps.events[3:] == ["stop 2", "stop 1", "stop 0"]
    await steps.stop()  # already stopped: nothing left to undo
    assert len(steps.events) == 6


async def test_a_start_that_fails_half_way_undoes_what_it_did():
    steps = _Steps(fail_at=2)
    with pytest.raises(RuntimeError, match="step 2"):
        await steps.start()
    assert steps.events == ["start 0", "start 1", "stop 1", "stop 0"]
    await steps.stop()
    assert len(steps.events) == 4


class _RecordingServer(Server):
    def __init__(self, events: list[str]) -> None:
        super().__init__([])
        self.events = events

    def close(self) -> None:
        self.events.append("gRPC closed")
        super().close()


async def test_serving_brings_up_http_and_grpc_and_drains_http_first():
    events: list[str] = []

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app = role_app([web.get("/hello", hello)])

    async def on_shutdown(app: web.Application) -> None:
        events.append("HTTP draining")

    app.on_shutdown.append(on_shutdown)
    grpc_port = free_port()
    async with serving(app, host="127.0.0.1", http_port=0, grpc=_RecordingServer(events),
                       grpc_port=grpc_port) as served:
        assert served.grpc_port == grpc_port
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{served.port}/hello") as resp:
                assert await resp.json() == {"hello": "world"}
            async with http.get(f"http://127.0.0.1:{served.port}/metrics") as resp:
                assert resp.status == 200  # every role's app has /metrics
    assert events == ["HTTP draining", "gRPC closed"]
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{served.port}/hello")
