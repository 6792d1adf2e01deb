"""The workers page on a full disk, in a real browser: a real ``echofs
serve`` on a small file system of its own, filled with uploads until it
answers 507. Each full worker says so (and stays "alive", not "suspect").
Fixtures: ``conftest.py``."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from echofs.testing.process import ServeProcess
from echofs.testing.small_disk import SmallDiskUnavailable, small_filesystem


@pytest.fixture
def full_server(tmp_path: Path) -> Iterator[ServeProcess]:
    try:
        with small_filesystem(tmp_path / "disk", "16m") as disk:
            server = ServeProcess(disk / "data", env={
                "STORE_RESERVE_BYTES": "1m", "STORE_RESERVE_PERCENT": "0",
                "METADATA_RESERVE_BYTES": "1m", "HEARTBEAT_INTERVAL": "0.2"}, name="full")
            server.log_path = tmp_path / "full.log"
            with server:
                _fill(server.url)
                yield server
    except SmallDiskUnavailable as exc:
        pytest.skip(str(exc))


def _fill(url: str) -> None:
    for n in range(200):
        request = urllib.request.Request(f"{url}/api/v1/files/content/fill/{n}.bin",
                                         data=os.urandom(256 * 1024), method="PUT")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as exc:
            assert exc.code == 507, exc.read()
            return
    raise AssertionError("the disk never filled")


def test_workers_page_names_the_full_workers(ui, full_server):
    page = ui.open(full_server.url)
    page.goto("/#/workers")
    for worker in ("w1", "w2", "w3"):
        row = page.locator(f'#workers-body tr[data-worker-id="{worker}"]')
        expect(row).to_have_attribute("data-space", "full", timeout=10_000)
        expect(row).to_have_attribute("data-state", "alive")
        expect(row.locator(".space-full")).to_have_text("full: no space for new data")
    expect(page.locator("#workers-summary")).to_have_text("3 of 3 alive · 3 full")
