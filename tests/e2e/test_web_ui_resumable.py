"""The web UI sends a large file as an upload session's parts and carries on
after its connection drops: a real browser, through a fault proxy that cuts
every connection midway, against a real ``echofs serve``."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from echofs.client import Client
from echofs.testing.fault_forwarding import FaultProxy
from echofs.testing.faults import Faults
from echofs.testing.process import ServeProcess

MIB = 1024 * 1024
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


class ProxyThread:
    """A fault proxy on an event loop of its own (Playwright's sync API owns
    this thread's)."""

    def __init__(self, port: int, faults: Faults) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = FaultProxy("127.0.0.1", port, faults=faults)
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.listen_port}"

    def cut(self) -> int:
        """Reset every open connection; how many there were."""
        async def reset() -> int:
            return self.proxy.reset_connections()

        return asyncio.run_coroutine_threadsafe(reset(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("web-resumable") / "data",
                      env={"UPLOAD_PART_SIZE": str(256 * 1024)}) as process:
        yield process


@pytest.fixture
def proxy(server) -> Iterator[ProxyThread]:
    thread = ProxyThread(server.port, Faults(bandwidth=2 * MIB))
    yield thread
    thread.close()


def test_a_large_upload_goes_on_after_the_connection_drops(ui, server, proxy):
    data = os.urandom(6 * MIB + 99)
    page = ui.open(proxy.url)
    page.goto("/")
    # Sessions from 1 MiB up (the default threshold is 64 MiB).
    page.evaluate("localStorage.setItem('echofs.resumableAbove', String(1024 * 1024))")
    page.set_input_files("#file-input", files=[{
        "name": "large.bin", "mimeType": "application/octet-stream", "buffer": data}])
    item = page.locator('li.upload[data-path="large.bin"]')
    expect(item).to_have_attribute("data-session-id", SESSION_ID, timeout=10_000)
    session_id = item.get_attribute("data-session-id")
    assert session_id is not None
    with Client(server.url) as client:
        # Midway: some parts held, not all.
        while len(client.upload_status(session_id)["received"]) < 4:
            page.wait_for_timeout(50)
        assert len(client.upload_status(session_id)["missing"]) > 0
        assert proxy.cut() > 0
        expect(item).to_have_attribute("data-state", "done", timeout=60_000)
        info = client.find("large.bin")
        assert info.size == len(data)
        assert client.read(info.file_id) == data
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('echofs.upload:'))"
                         ) == []



def test_choosing_the_same_file_again_after_a_reload_resumes_it(ui, server, proxy, tmp_path):
    data = os.urandom(5 * MIB + 7)
    local = tmp_path / "again.bin"
    local.write_bytes(data)
    page = ui.open(proxy.url)
    page.goto("/")
    page.evaluate("localStorage.setItem('echofs.resumableAbove', String(1024 * 1024))")
    page.set_input_files("#file-input", str(local))
    item = page.locator('li.upload[data-path="again.bin"]')
    expect(item).to_have_attribute("data-session-id", SESSION_ID, timeout=10_000)
    session_id = item.get_attribute("data-session-id")
    assert session_id is not None
    with Client(server.url) as client:
        while len(client.upload_status(session_id)["received"]) < 4:
            page.wait_for_timeout(50)
        page.reload()  # the tab's uploads are cut off midway
        held = len(client.upload_status(session_id)["received"])
        assert 0 < held < 21
        page.set_input_files("#file-input", str(local))
        item = page.locator('li.upload[data-path="again.bin"]')
        expect(item).to_have_attribute("data-session-id", session_id, timeout=10_000)
        expect(item).to_have_attribute("data-state", "done", timeout=60_000)
        expect(item.locator(".status")).to_contain_text("resumed")
        assert client.read(client.find("again.bin").file_id) == data
        assert client.upload_sessions() == []
