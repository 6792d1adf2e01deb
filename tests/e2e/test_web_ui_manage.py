"""The web UI's housekeeping in a real browser, on a phone and a desktop
screen: bulk delete, the storage summary, the icon, and a layout that fits a
narrow screen. Fixtures: ``conftest.py``."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.usefixtures("empty_store")
BOTH_WIDTHS = pytest.mark.parametrize("viewport", ["phone", "desktop"])
LONG_NAME = "q4_quarterly-report_final-version-with-appendix_and-reviewer-notes.pdf"


def box(page: Page, selector: str) -> dict[str, float]:
    bounds = page.locator(selector).bounding_box()
    assert bounds is not None, f"{selector} is not rendered"
    return bounds


def assert_on_screen(page: Page, selector: str) -> None:
    """Every match lies within the viewport's width (nothing cut off at the side)."""
    width = page.viewport_size["width"]
    locator = page.locator(selector)
    assert locator.count() > 0, f"nothing matches {selector}"
    for i in range(locator.count()):
        bounds = locator.nth(i).bounding_box()
        assert bounds is not None, f"{selector} #{i} is not rendered"
        assert bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= width + 0.5, (
            f"{selector} #{i} spans {bounds['x']:.0f}..{bounds['x'] + bounds['width']:.0f} "
            f"on a {width} px screen")


def assert_no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), (
        "the page is wider than the screen")


@BOTH_WIDTHS
def test_bulk_delete_removes_exactly_the_selected_files(page, ui, web_api, viewport):
    ids = {path: web_api.upload(path.encode(), path).file_id
           for path in ("keep-1.txt", "gone-1.txt", "keep-2.txt", "gone-2.txt", "gone-3.txt",
                        "sub/keep-3.txt")}
    page.goto("/")
    expect(page.locator("#files-body tr.file-row")).to_have_count(5)
    button = page.locator("#delete-selected")
    expect(button).to_be_disabled()
    for path in ("gone-1.txt", "gone-2.txt", "gone-3.txt"):
        ui.row(page, path).get_by_label(f"Select {path}").check()
    expect(button).to_have_text("Delete selected (3)")
    expect(page.locator("#select-all")).to_have_js_property("indeterminate", True)
    # Someone else deletes one of them meanwhile: it fails on its own, the rest go.
    web_api.delete(ids["gone-3.txt"])
    ui.screenshot(page, f"web-bulk-selected-{viewport}.png")

    confirmations: list[str] = []

    def confirm(dialog):
        confirmations.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    button.click()
    expect(page.locator("#bulk-summary")).to_have_text(
        "Deleted 2 of 3 files. 1 could not be deleted:")
    errors = page.locator("#bulk-errors li")
    expect(errors).to_have_count(1)
    expect(errors.first).to_have_attribute("data-path", "gone-3.txt")
    expect(errors.first).to_contain_text("gone-3.txt: ")
    assert confirmations and confirmations[0].startswith("Delete 3 files and all their versions?")
    assert "gone-2.txt" in confirmations[0]

    # The list is refreshed: only the unselected files are left, everywhere.
    expect(page.locator("#files-body tr.file-row")).to_have_count(2)
    assert {f.path for f in web_api.all_files()} == {"keep-1.txt", "keep-2.txt",
                                                     "sub/keep-3.txt"}
    expect(button).to_be_disabled()
    ui.screenshot(page, f"web-bulk-deleted-{viewport}.png")

    page.locator("#select-all").check()  # every file listed at this level
    expect(button).to_have_text("Delete selected (2)")
    page.once("dialog", lambda dialog: dialog.dismiss())  # a change of mind deletes nothing
    button.click()
    expect(page.locator("#files-body tr.file-row")).to_have_count(2)
    assert len(web_api.all_files()) == 3


def human(n: int) -> str:
    """Bytes as the UI writes them (formatBytes in app.js)."""
    value, unit = float(n), 0
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{n} B" if unit == 0 else f"{value:.{2 if value < 10 else 1}f} {units[unit]}"


@BOTH_WIDTHS
def test_storage_summary_counts_files_replicas_and_one_shared_disk(page, ui, web_api,
                                                                   viewport):
    web_api.upload(os.urandom(1000), "one.bin")
    web_api.upload(os.urandom(3000), "deeper/two.bin")
    # A write returns at quorum (2 of 3); wait for the third copies, so every
    # worker holds these chunks when the page reads its numbers.
    deadline = time.monotonic() + 10
    while web_api.health()["replication_queue"]["depth"] and time.monotonic() < deadline:
        time.sleep(0.05)
    page.goto("/")
    expect(page.locator("#storage-line")).to_have_text(
        "2 files · 3.91 KiB · 3 replicas · 3 of 3 workers alive")
    page.locator("#storage summary").click()
    facts = page.locator("#storage-facts dd")
    expect(facts.nth(0)).to_have_text("2")
    expect(facts.nth(1)).to_have_text("3.91 KiB (current versions, before replication)")
    expect(facts.nth(2)).to_have_text(
        "3 copies of every chunk; a write is acknowledged once 2 have it")
    expect(facts.nth(4)).to_have_text("3 of 3 alive")
    expect(page.locator("#storage-workers-body tr")).to_have_count(3)
    for worker in ("w1", "w2", "w3"):
        worker_row = page.locator(f'#storage-workers-body tr[data-worker-id="{worker}"]')
        expect(worker_row).to_have_attribute("data-state", "alive")
        expect(worker_row.locator("td.chunks")).to_have_text(re.compile(r"^[1-9]\d*$"))
        expect(worker_row.locator("td.stored")).not_to_have_text("0 B")
    # The embedded node's workers share one disk: its size is said once, not per worker.
    reported = page.request.get("/api/v1/workers/health").json()["workers"]
    capacity = {w["capacity_bytes"] for w in reported}
    assert len(capacity) == 1
    expect(page.locator("#storage-disk")).to_have_text(re.compile(
        rf"^All 3 workers store on one disk: {re.escape(human(capacity.pop()))} capacity, "
        r"[\d.]+ \w+ free \(shared\)\.$"))
    disk_cells = page.locator("#storage-workers .disk-col")
    assert disk_cells.count() == 8  # two headers, two cells a worker: there, not shown
    for cell in disk_cells.all():
        expect(cell).to_be_hidden()
    ui.screenshot(page, f"web-storage-{viewport}.png")

    # The workers page says the same.
    page.goto("/#/workers")
    expect(page.locator("#workers-body tr")).to_have_count(3)
    expect(page.locator("#workers-disk")).to_contain_text("All 3 workers store on one disk")
    for cell in page.locator("#workers-table .disk-col").all():
        expect(cell).to_be_hidden()
    assert_no_sideways_scroll(page)


@BOTH_WIDTHS
def test_the_icon_is_linked_and_served_as_an_image(page, viewport):
    page.goto("/")
    expect(page.locator("#page-files")).to_be_visible()
    hrefs = page.locator('link[rel="icon"]').evaluate_all("links => links.map(l => l.href)")
    assert len(hrefs) == 2
    for href in hrefs:
        response = page.request.get(href)
        assert response.status == 200, href
        assert response.headers["content-type"].startswith("image/"), response.headers
    # Both decode as images the browser can draw, at the sizes a tab needs.
    sizes = page.evaluate("""hrefs => Promise.all(hrefs.map(href => new Promise((ok, fail) => {
        const img = new Image();
        img.onload = () => ok([img.naturalWidth, img.naturalHeight]);
        img.onerror = () => fail(new Error("cannot decode " + href));
        img.src = href;
    })))""", hrefs)
    assert all(w >= 16 and h >= 16 for w, h in sizes), sizes


@BOTH_WIDTHS
def test_layout_fits_the_screen_and_long_names_wrap_at_their_parts(page, ui, web_api,
                                                                    viewport):
    web_api.upload(b"report", LONG_NAME)
    web_api.upload(b"short", "a.txt")
    web_api.upload(b"inside", "folder-with-a-long-name/inner.txt")
    page.goto("/")
    listed = ui.row(page, LONG_NAME)
    expect(listed).to_be_visible()
    assert_no_sideways_scroll(page)
    for selector in ("#files-body button", "#files-body input", "#refresh",
                     "#delete-selected", "#prefix", "#dropzone .file-button",
                     "#upload-folder", "#nav a", "#files-table th button",
                     "#files-body .folder-link"):
        assert_on_screen(page, selector)

    name = box(page, f'#files-body tr[data-path="{LONG_NAME}"] td.name')
    line_height = page.locator(f'#files-body tr[data-path="{LONG_NAME}"] td.name').evaluate(
        "td => parseFloat(getComputedStyle(td).lineHeight) || 1.2 * parseFloat("
        "getComputedStyle(td).fontSize)")
    # Wrapped at its separators into a few lines, not a column of single letters.
    assert name["width"] >= 200, name
    assert name["height"] <= 4 * line_height + 1, (name, line_height)
    lines = page.locator(f'#files-body tr[data-path="{LONG_NAME}"] td.name').evaluate("""td => {
        const range = document.createRange();
        range.selectNodeContents(td);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        return tops.size;
    }""")
    if viewport == "phone":
        assert 2 <= lines <= 4, lines
    else:
        assert lines <= 2, lines
    # The buttons of a row sit side by side on screen, not stacked in a sliver.
    download = box(page, f'#files-body tr[data-path="{LONG_NAME}"] button.download')
    delete = box(page, f'#files-body tr[data-path="{LONG_NAME}"] button.delete')
    assert abs(download["y"] - delete["y"]) < 2 and delete["x"] > download["x"]
    ui.screenshot(page, f"web-layout-{viewport}.png")

    page.locator("#storage summary").click()
    assert_no_sideways_scroll(page)
    assert_on_screen(page, "#storage-workers-box")
    for admin_page in ("workers", "consistency"):
        page.goto(f"/#/{admin_page}")
        expect(page.locator(f"#page-{admin_page}")).to_be_visible()
        page.wait_for_timeout(300)
        assert_no_sideways_scroll(page)
        assert_on_screen(page, "#nav a")
