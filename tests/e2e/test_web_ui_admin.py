"""The web UI's administrator pages and accounts in a real browser: the
workers page, the consistency page following a live override and driving the
levers, the same page on a master without a controller, and sign-in with
per-user files. Fixtures: ``conftest.py``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from echofs.testing.process import ServeProcess, free_port

pytestmark = pytest.mark.usefixtures("empty_store")
BOTH_WIDTHS = pytest.mark.parametrize("viewport", ["phone", "desktop"])
SECRET = "w" * 40
MIB = 1024 * 1024


def test_workers_page_is_live(page, web_api):
    web_api.upload(b"x" * 1000, "rtt.bin")  # chunk calls to every worker: RTTs measured
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


def test_consistency_page_follows_an_override_and_drives_the_levers(page, ui, web_api):
    up = web_api.upload(b"a file with a mode", "modal.txt")
    page.goto("/#/consistency")
    file_row = page.locator(f'#modes-body tr[data-file-id="{up.file_id}"]')
    expect(file_row).to_be_visible()
    expect(page.locator("#override-current")).to_have_text("none")
    # Wait until the controller has decided on the file itself, so the
    # override below is a recorded transition rather than a new default.
    expect(file_row.locator("td").nth(3)).not_to_have_text("default", timeout=15_000)

    assert web_api.set_override("available") == "available"  # through the API
    expect(page.locator("#override-current")).to_have_text("available", timeout=10_000)
    expect(file_row).to_have_attribute("data-mode", "available", timeout=10_000)
    transition = page.locator('#transitions-body tr[data-to="available"]')
    expect(transition.first).to_contain_text("modal.txt", timeout=10_000)
    expect(transition.first).to_contain_text("override")
    ui.screenshot(page, "web-consistency.png")

    page.select_option("#override-mode", "strong")  # through the UI
    page.click("#override-set")
    expect(page.locator("#override-current")).to_have_text("strong")
    assert web_api.consistency_status()["override"] == "strong"
    page.click("#override-clear")
    expect(page.locator("#override-current")).to_have_text("none")
    assert web_api.consistency_status()["override"] is None

    page.fill("#critical-input", up.file_id)
    page.click("#critical-add")
    expect(page.locator(f'#critical-list li[data-key="{up.file_id}"]')).to_contain_text(
        "modal.txt")
    assert web_api.critical_keys() == [up.file_id]
    expect(file_row.locator('input[type="checkbox"]')).to_be_checked()
    page.locator(f'#critical-list li[data-key="{up.file_id}"]').get_by_role(
        "button", name="remove").click()
    expect(page.locator(f'#critical-list li[data-key="{up.file_id}"]')).to_have_count(0)
    assert web_api.critical_keys() == []

    file_row.get_by_label("hint modal.txt").select_option("available")
    expect(file_row.locator("td").nth(3)).to_have_text("hint")
    assert web_api.mode(up.file_id).mode == "available"


def test_consistency_page_shows_live_levers_when_a_controller_is_there(page):
    page.goto("/#/consistency")
    expect(page.locator("#consistency-live")).to_be_visible()
    expect(page.locator("#no-controller")).to_be_hidden()


@pytest.fixture(scope="module")
def lone_master(tmp_path_factory) -> Iterator[ServeProcess]:
    """A master on its own: no controller, no workers (so health says 503)."""
    with ServeProcess(tmp_path_factory.mktemp("web-lone") / "data", "--role=master",
                      "--grpc-port", str(free_port()), up_statuses=(200, 503)) as process:
        yield process


@BOTH_WIDTHS
def test_consistency_page_says_plainly_when_no_controller_is_connected(ui, lone_master,
                                                                       viewport):
    page = ui.open(lone_master.url, viewport)
    health = page.request.get("/api/v1/health").json()
    assert health["consistency"]["controller_connected"] is False
    assert page.request.get("/api/v1/consistency/status").status == 404
    page.goto("/#/consistency")
    notice = page.locator("#no-controller")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("No controller connected.")
    expect(page.locator("#no-controller-mode")).to_have_text(
        health["consistency"]["default_mode"])
    # Neither an error nor the levers' placeholders.
    expect(page.locator("#consistency-live")).to_be_hidden()
    expect(page.locator("#consistency-updated")).to_contain_text("Last update")
    expect(page.locator("#banner")).to_be_hidden()
    page.wait_for_timeout(2500)  # past the next poll: still calm
    expect(page.locator("#banner")).to_be_hidden()
    expect(notice).to_be_visible()
    ui.screenshot(page, f"web-no-controller-{viewport}.png")

    # The files page copes with a node that has no workers yet.
    page.goto("/#/files")
    expect(page.locator("#storage-line")).to_have_text(
        "0 files · 0 B · 3 replicas · 0 of 0 workers alive")
    expect(page.locator("#files-empty")).to_have_text("No files yet. Drop one above.")
    expect(page.locator("#banner")).to_be_hidden()


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
def secured_page(ui, secured) -> Page:
    return ui.open(secured.url)


def test_accounts_login_isolation_and_admin_pages(secured_page, ui):
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
    listed = ui.row(page, "private.bin")
    expect(listed).to_be_visible(timeout=15_000)
    # With a token the download goes through fetch (a link cannot send it).
    name, body = ui.download(page, listed.get_by_role("button", name="Download"))
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
    expect(ui.row(page, "private.bin")).to_have_count(0)
    expect(page.locator('#nav a[data-page="consistency"]')).to_be_hidden()
    page.goto("/#/consistency")
    expect(page.locator("#page-forbidden")).to_be_visible()
