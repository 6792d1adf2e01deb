"""Fixtures for the web UI tests (``test_web_ui_*.py``): Debian's Chromium
driven by Playwright against a real ``echofs serve``.

Every fixture here is asked for by name; none is autouse, so the other
end-to-end tests in this directory are untouched. Screenshots go to
``test-artifacts/`` (git-ignored). Without Chromium these tests fail: the
browser is part of what CI installs (.ci/run), not optional.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from echofs.client import Client
from echofs.testing.process import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
# A phone held upright and a laptop screen: the UI has to work on both.
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


# Module scope, not session: Playwright's sync API keeps an event loop running
# on this thread while it is open, and every asyncio test after it would then
# fail to start its own. Each browser test module opens and closes its own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), ("the browser tests need Chromium at /usr/bin/chromium "
                               "(apt-get install chromium; .ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory) -> Iterator[ServeProcess]:
    """The embedded node (master, controller, three workers) in open mode."""
    with ServeProcess(tmp_path_factory.mktemp("web") / "data") as process:
        yield process


@pytest.fixture(scope="module")
def web_api(web_server) -> Iterator[Client]:
    with Client(web_server.url) as client:
        yield client


@pytest.fixture
def empty_store(web_api) -> None:
    """Tests share one server; each starts with no files and no levers set."""
    for info in web_api.all_files():
        web_api.delete(info.file_id)
    web_api.set_override(None)
    keys = web_api.critical_keys()
    if keys:
        web_api.remove_critical_keys(keys)


class UI:
    """Opens pages on a server and holds the small helpers the tests share."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self._closers: list[Callable[[], None]] = []

    def open(self, url: str, viewport: str = "desktop") -> Page:
        """A fresh browser context (no token, no saved sort) at this size.

        Uncaught script errors, Content-Security-Policy violations and any
        request the page makes that fails (a 404 for a missing asset or icon)
        fail the test when the page is closed."""
        context = self.browser.new_context(base_url=url, accept_downloads=True,
                                           viewport=VIEWPORTS[viewport])
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
        page.on("console", lambda msg: problems.append(msg.text)
                if "Content Security Policy" in msg.text else None)
        page.on("response", lambda r: problems.append(f"{r.status} for {r.url}")
                if r.status == 404 and "/api/" not in r.url else None)

        def close() -> None:
            context.close()
            assert not problems, problems

        self._closers.append(close)
        return page

    def close_all(self) -> None:
        closers, self._closers = self._closers, []
        for close in closers:
            close()

    @staticmethod
    def screenshot(page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, "screenshot looks empty"
        return path

    @staticmethod
    def row(page: Page, path: str) -> Locator:
        return page.locator(f'#files-body tr.file-row[data-path="{path}"]')

    @staticmethod
    def folder(page: Page, folder: str) -> Locator:
        return page.locator(f'#files-body tr.folder-row[data-folder="{folder}"]')

    @staticmethod
    def download(page: Page, button: Locator) -> tuple[str, bytes]:
        with page.expect_download() as info:
            button.click()
        download = info.value
        return download.suggested_filename, Path(download.path()).read_bytes()


@pytest.fixture
def ui(browser) -> Iterator[UI]:
    helper = UI(browser)
    yield helper
    helper.close_all()


@pytest.fixture
def viewport() -> str:
    """Desktop unless a test parametrizes ``viewport`` over ``VIEWPORTS``."""
    return "desktop"


@pytest.fixture
def page(ui, web_server, viewport) -> Page:
    return ui.open(web_server.url, viewport)
