"""The web UI in a real headless browser (Debian's Chromium driven by
Playwright) against a real ``echofs serve``: upload by file input and by
drag-and-drop, see the file listed, download it and compare the bytes,
delete it; versions; the admin's workers and consistency pages following a
live override; accounts.

Screenshots of the file list and the consistency page are written to
``test-artifacts/`` (git-ignored). Without Chromium these tests fail: the
browser is part of what CI installs (.ci/run), not optional.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from echofs.client import Client
from echofs.testing.process import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
SECRET = "w" * 40
MIB = 1024 * 1024


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
def server(tmp_path_factory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("web") / "data") as process:
        yield process


@pytest.fixture(scope="module")
def api(server) -> Iterator[Client]:
    with Client(server.url) as client:
        yield client


@pytest.fixture(autouse=True)
def empty_store(api) -> None:
    """Tests share one server; each starts with no files and no levers set."""
    for info in api.all_files():
        api.delete(info.file_id)
    api.set_override(None)
    keys = api.critical_keys()
    if keys:
        api.remove_critical_keys(keys)


def open_page(browser: Browser, url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=url, accept_downloads=True,
                                  viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def page(browser, server) -> Iterator[Page]:
    yield from open_page(browser, server.url)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, "screenshot looks empty"
    return path


def row(page: Page, path: str):
    return page.locator(f'#files-body tr.file-row[data-path="{path}"]')


def download_bytes(page: Page, button) -> tuple[str, bytes]:
    with page.expect_download() as info:
        button.click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def test_upload_by_file_input_list_download_and_delete(page, api):
    data = os.urandom(3 * MIB + 17)
    page.goto("/")
    expect(page.locator("#page-files")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("single-user mode")

    page.set_input_files("#file-input", files=[{
        "name": "report.bin", "mimeType": "application/octet-stream", "buffer": data}])
    listed = row(page, "report.bin")
    expect(listed).to_be_visible(timeout=15_000)
    expect(page.locator('li.upload[data-path="report.bin"]')).to_have_attribute(
        "data-state", "done")
    expect(page.locator('li.upload[data-path="report.bin"] progress')).to_have_attribute(
        "value", "100")
    expect(listed.locator("td.size")).to_have_text("3.00 MiB")
    expect(listed.locator("td.mode")).to_have_text(re.compile("strong|hybrid|available"))
    expect(listed.locator(".versions-toggle")).to_have_text("v1")
    screenshot(page, "web-file-list.png")

    name, body = download_bytes(page, listed.get_by_role("button", name="Download"))
    assert name == "report.bin" and body == data

    page.once("dialog", lambda dialog: dialog.accept())
    listed.get_by_role("button", name="Delete").click()
    expect(listed).to_have_count(0)
    expect(page.locator("#files-empty")).to_be_visible()
    assert api.all_files() == []


def test_drag_and_drop_uploads_each_file_with_its_own_progress(page, api):
    page.goto("/")
    page.fill("#upload-folder", "dropped")
    transfer = page.evaluate_handle("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["first file"], "one.txt", {type: "text/plain"}));
        dt.items.add(new File([new Uint8Array(2 * 1024 * 1024).fill(7)], "two.bin"));
        return dt;
    }""")
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event("#dropzone", event, {"dataTransfer": transfer})
    for path in ("dropped/one.txt", "dropped/two.bin"):
        expect(row(page, path)).to_be_visible(timeout=15_000)
        expect(page.locator(f'li.upload[data-path="{path}"]')).to_have_attribute(
            "data-state", "done")
    expect(row(page, "dropped/two.bin").locator("td.size")).to_have_text("2.00 MiB")
    on_server = {f.path: f for f in api.all_files()}
    assert set(on_server) == {"dropped/one.txt", "dropped/two.bin"}
    assert api.read(on_server["dropped/one.txt"].file_id) == b"first file"
    assert api.read(on_server["dropped/two.bin"].file_id) == b"\x07" * (2 * MIB)


def test_versions_are_listed_and_an_old_one_downloads(page, api):
    api.upload(b"first version", "notes.txt")
    api.upload(b"second version", "notes.txt")
    page.goto("/")
    listed = row(page, "notes.txt")
    expect(listed.locator(".versions-toggle")).to_have_text("v2")
    listed.locator(".versions-toggle").click()
    versions = page.locator("tr.versions-row table.versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_contain_text("v2 (current)")
    name, body = download_bytes(page, versions.nth(1).get_by_role("button", name="Download"))
    assert (name, body) == ("notes.txt", b"first version")


def test_file_names_are_shown_as_text_never_run(page, api):
    nasty = '<img src=x onerror="window.pwned=1">.txt'
    up = api.upload(b"harmless", nasty)
    page.goto("/")
    listed = page.locator(f'#files-body tr[data-file-id="{up.file_id}"]')
    expect(listed.locator("td.name")).to_have_text(nasty)
    assert listed.locator("td.name img").count() == 0
    assert page.evaluate("window.pwned") is None


def test_filter_by_prefix(page, api):
    for path in ("a/1.txt", "a/2.txt", "b/3.txt"):
        api.upload(path.encode(), path)
    page.goto("/")
    expect(page.locator("#files-body tr.file-row")).to_have_count(3)
    page.fill("#prefix", "a/")
    expect(page.locator("#files-body tr.file-row")).to_have_count(2)
    expect(page.locator("#files-count")).to_have_text("2 files")


def test_workers_page_is_live(page, api):
    api.upload(b"x" * 1000, "rtt.bin")  # chunk calls to every worker: RTTs measured
    page.goto("/#/workers")
    rows = page.locator("#workers-body tr")
    expect(rows).to_have_count(3)
    for worker in ("w1", "w2", "w3"):
        worker_row = page.locator(f'#workers-body tr[data-worker-id="{worker}"]')
        expect(worker_row).to_have_attribute("data-state", "alive")
        # The master measures RTT on its chunk calls; the page polls for it.
        expect(worker_row.locator("td.rtt")).to_have_text(re.compile(r"\d+\.\d ms"),
                                                          timeout=10_000)
    expect(page.locator("#workers-summary")).to_have_text("3 of 3 alive")


def test_consistency_page_follows_an_override_and_drives_the_levers(page, api):
    up = api.upload(b"a file with a mode", "modal.txt")
    page.goto("/#/consistency")
    file_row = page.locator(f'#modes-body tr[data-file-id="{up.file_id}"]')
    expect(file_row).to_be_visible()
    expect(page.locator("#override-current")).to_have_text("none")
    # Wait until the controller has decided on the file itself, so the
    # override below is a recorded transition rather than a new default.
    expect(file_row.locator("td").nth(3)).not_to_have_text("default", timeout=15_000)

    assert api.set_override("available") == "available"  # through the API
    expect(page.locator("#override-current")).to_have_text("available", timeout=10_000)
    expect(file_row).to_have_attribute("data-mode", "available", timeout=10_000)
    transition = page.locator('#transitions-body tr[data-to="available"]')
    expect(transition.first).to_contain_text("modal.txt", timeout=10_000)
    expect(transition.first).to_contain_text("override")
    screenshot(page, "web-consistency.png")

    page.select_option("#override-mode", "strong")  # through the UI
    page.click("#override-set")
    expect(page.locator("#override-current")).to_have_text("strong")
    assert api.consistency_status()["override"] == "strong"
    page.click("#override-clear")
    expect(page.locator("#override-current")).to_have_text("none")
    assert api.consistency_status()["override"] is None

    page.fill("#critical-input", up.file_id)
    page.click("#critical-add")
    expect(page.locator(f'#critical-list li[data-key="{up.file_id}"]')).to_contain_text(
        "modal.txt")
    assert api.critical_keys() == [up.file_id]
    expect(file_row.locator('input[type="checkbox"]')).to_be_checked()
    page.locator(f'#critical-list li[data-key="{up.file_id}"]').get_by_role(
        "button", name="remove").click()
    expect(page.locator(f'#critical-list li[data-key="{up.file_id}"]')).to_have_count(0)
    assert api.critical_keys() == []

    file_row.get_by_label("hint modal.txt").select_option("available")
    expect(file_row.locator("td").nth(3)).to_have_text("hint")
    assert api.mode(up.file_id).mode == "available"


# -- accounts ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("web-auth") / "data",
                      env={"JWT_SECRET": SECRET}) as process:
        yield process


def sign_in(page: Page, username: str, password: str, *, register: bool) -> None:
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#register-submit" if register else "#login-submit")


@pytest.fixture
def secured_page(browser, secured) -> Iterator[Page]:
    yield from open_page(browser, secured.url)


def test_accounts_login_isolation_and_admin_pages(secured_page):
    page = secured_page
    data = os.urandom(MIB + 3)
    page.goto("/")
    expect(page.locator("#page-login")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()

    sign_in(page, "alice", "alice's password", register=True)  # first account: admin
    expect(page.locator("#page-files")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("alice (admin)")
    expect(page.locator('#nav a[data-page="consistency"]')).to_be_visible()
    page.set_input_files("#file-input", files=[{
        "name": "private.bin", "mimeType": "application/octet-stream", "buffer": data}])
    listed = row(page, "private.bin")
    expect(listed).to_be_visible(timeout=15_000)
    # With a token the download goes through fetch (a link cannot send it).
    name, body = download_bytes(page, listed.get_by_role("button", name="Download"))
    assert (name, body) == ("private.bin", data)

    page.reload()  # the session survives a reload
    expect(page.locator("#whoami")).to_have_text("alice (admin)")
    page.goto("/#/workers")
    expect(page.locator("#workers-body tr")).to_have_count(3)

    page.click("#logout")
    expect(page.locator("#page-login")).to_be_visible()
    sign_in(page, "alice", "not her password", register=False)
    expect(page.locator("#login-error")).to_have_text("wrong username or password")

    sign_in(page, "bob", "bob's password", register=True)
    expect(page.locator("#whoami")).to_have_text("bob (user)")
    page.goto("/#/files")
    expect(page.locator("#files-empty")).to_be_visible()
    expect(row(page, "private.bin")).to_have_count(0)
    expect(page.locator('#nav a[data-page="consistency"]')).to_be_hidden()
    page.goto("/#/consistency")
    expect(page.locator("#page-forbidden")).to_be_visible()
