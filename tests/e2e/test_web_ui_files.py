"""The web UI's file list in a real browser: upload by file input and by
drag-and-drop, download and compare the bytes, delete; versions; folders
with breadcrumbs; sorting; the filter. Fixtures: ``conftest.py``."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.usefixtures("empty_store")
BOTH_WIDTHS = pytest.mark.parametrize("viewport", ["phone", "desktop"])
MIB = 1024 * 1024


def names_in_order(page: Page) -> list[str]:
    """What the list shows, top to bottom: folders as 'name/', files by path."""
    return page.locator("#files-body tr.folder-row, #files-body tr.file-row").evaluate_all(
        "rows => rows.map(r => r.dataset.folder || r.dataset.path)")


def expect_order(page: Page, expected: list[str], timeout: float = 5.0) -> None:
    """The list shows exactly these rows in this order (once its listing arrived)."""
    deadline = time.monotonic() + timeout
    while (shown := names_in_order(page)) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert shown == expected


def test_upload_by_file_input_list_download_and_delete(page, ui, web_api):
    data = os.urandom(3 * MIB + 17)
    page.goto("/")
    expect(page.locator("#page-files")).to_be_visible()
    expect(page.locator("#whoami")).to_have_text("single-user mode")

    page.set_input_files("#file-input", files=[{
        "name": "report.bin", "mimeType": "application/octet-stream", "buffer": data}])
    listed = ui.row(page, "report.bin")
    expect(listed).to_be_visible(timeout=15_000)
    expect(page.locator('li.upload[data-path="report.bin"]')).to_have_attribute(
        "data-state", "done")
    expect(page.locator('li.upload[data-path="report.bin"] progress')).to_have_attribute(
        "value", "100")
    expect(listed.locator("td.size")).to_have_text("3.00 MiB")
    expect(listed.locator("td.mode")).to_have_text(re.compile("strong|hybrid|available"))
    expect(listed.locator(".versions-toggle")).to_have_text("v1")
    ui.screenshot(page, "web-file-list.png")

    name, body = ui.download(page, listed.get_by_role("button", name="Download"))
    assert name == "report.bin" and body == data

    page.once("dialog", lambda dialog: dialog.accept())
    listed.get_by_role("button", name="Delete").click()
    expect(listed).to_have_count(0)
    expect(page.locator("#files-empty")).to_be_visible()
    assert web_api.all_files() == []


def test_drag_and_drop_uploads_each_file_with_its_own_progress(page, ui, web_api):
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
        expect(page.locator(f'li.upload[data-path="{path}"]')).to_have_attribute(
            "data-state", "done", timeout=15_000)
    # Uploaded into a sub-folder of the top level: listed there as a folder.
    dropped = ui.folder(page, "dropped/")
    expect(dropped).to_contain_text("2 files")
    dropped.get_by_role("link").click()
    expect(ui.row(page, "dropped/two.bin").locator("td.size")).to_have_text("2.00 MiB")
    expect(ui.row(page, "dropped/one.txt")).to_be_visible()
    on_server = {f.path: f for f in web_api.all_files()}
    assert set(on_server) == {"dropped/one.txt", "dropped/two.bin"}
    assert web_api.read(on_server["dropped/one.txt"].file_id) == b"first file"
    assert web_api.read(on_server["dropped/two.bin"].file_id) == b"\x07" * (2 * MIB)


def test_versions_are_listed_and_an_old_one_downloads(page, ui, web_api):
    web_api.upload(b"first version", "notes.txt")
    web_api.upload(b"second version", "notes.txt")
    page.goto("/")
    listed = ui.row(page, "notes.txt")
    expect(listed.locator(".versions-toggle")).to_have_text("v2")
    listed.locator(".versions-toggle").click()
    versions = page.locator("tr.versions-row table.versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_contain_text("v2 (current)")
    name, body = ui.download(page, versions.nth(1).get_by_role("button", name="Download"))
    assert (name, body) == ("notes.txt", b"first version")


def test_file_names_are_shown_as_text_never_run(page, web_api):
    nasty = '<img src=x onerror="window.pwned=1">.txt'
    up = web_api.upload(b"harmless", nasty)
    page.goto("/")
    listed = page.locator(f'#files-body tr[data-file-id="{up.file_id}"]')
    expect(listed.locator("td.name")).to_have_text(nasty)
    assert listed.locator("td.name img").count() == 0
    assert page.evaluate("window.pwned") is None


def test_filter_by_prefix_lists_matches_below_the_folder_flat(page, ui, web_api):
    for path in ("a/1.txt", "a/2.txt", "b/3.txt"):
        web_api.upload(path.encode(), path)
    page.goto("/")
    expect(page.locator("#files-body tr.folder-row")).to_have_count(2)
    expect(page.locator("#files-count")).to_have_text("2 folders")
    page.fill("#prefix", "a/")
    expect(page.locator("#files-body tr.file-row")).to_have_count(2)
    expect(page.locator("#files-body tr.folder-row")).to_have_count(0)
    expect(page.locator("#files-count")).to_have_text("2 files")
    page.fill("#prefix", "c")
    expect(page.locator("#files-empty")).to_have_text("No file names here start with “c”.")


@BOTH_WIDTHS
def test_folders_breadcrumbs_and_upload_into_the_current_folder(page, ui, web_api, viewport):
    for path in ("top.txt", "docs/guide.txt", "docs/2026/plan.txt", "docs/2026/budget.txt",
                 "photos/cat.jpg"):
        web_api.upload(path.encode() * 10, path)
    page.goto("/")
    crumbs = page.locator("#crumbs li")
    expect(crumbs).to_have_text(["All files"])
    expect(page.locator("#files-count")).to_have_text("1 file · 2 folders")
    expect_order(page, ["docs/", "photos/", "top.txt"])
    expect(ui.folder(page, "docs/")).to_contain_text("3 files")
    # The list shows what is at this level only.
    expect(ui.row(page, "docs/guide.txt")).to_have_count(0)

    ui.folder(page, "docs/").get_by_role("link", name="docs/").click()
    expect(crumbs).to_have_text(["All files", "docs"])
    expect(page).to_have_url(re.compile(r"#/files/docs/$"))
    expect_order(page, ["docs/2026/", "docs/guide.txt"])
    # Inside a folder a file shows its own name, not the folder again.
    expect(ui.row(page, "docs/guide.txt").locator("td.name")).to_have_text("guide.txt")

    ui.folder(page, "docs/2026/").get_by_role("link").click()
    expect(crumbs).to_have_text(["All files", "docs", "2026"])
    expect(page.locator('#crumbs [aria-current="page"]')).to_have_text("2026")
    expect(page.locator("#upload-where")).to_have_text("docs/2026/")
    expect_order(page, ["docs/2026/budget.txt", "docs/2026/plan.txt"])

    page.set_input_files("#file-input", files=[{
        "name": "new.txt", "mimeType": "text/plain", "buffer": b"made in the folder"}])
    expect(ui.row(page, "docs/2026/new.txt")).to_be_visible(timeout=15_000)
    uploaded = {f.path: f for f in web_api.all_files()}["docs/2026/new.txt"]
    assert web_api.read(uploaded.file_id) == b"made in the folder"
    ui.screenshot(page, f"web-folders-{viewport}.png")

    page.locator("#crumbs").get_by_role("link", name="docs").click()
    expect(crumbs).to_have_text(["All files", "docs"])
    expect(ui.folder(page, "docs/2026/")).to_contain_text("3 files")
    page.go_back()  # the folder is in the address: Back goes back down
    expect(crumbs).to_have_text(["All files", "docs", "2026"])
    page.locator("#crumbs").get_by_role("link", name="All files").click()
    expect(crumbs).to_have_text(["All files"])
    expect_order(page, ["docs/", "photos/", "top.txt"])

    page.goto("/#/files/docs/")  # a folder's address opens it directly
    expect(crumbs).to_have_text(["All files", "docs"])


@BOTH_WIDTHS
def test_sorting_by_name_size_and_modified(page, ui, web_api, viewport):
    # Uploaded one after another: the modified times are in this order.
    for path, size in (("b-middle.bin", 2000), ("file10.txt", 10), ("A-first.txt", 500),
                       ("file9.txt", 3000), ("zeta/inner.txt", 100)):
        web_api.upload(b"x" * size, path)
    page.goto("/")
    expect(page.locator("#files-body tr.file-row")).to_have_count(4)
    header = {key: page.locator(f'#files-table th[data-sort="{key}"]')
              for key in ("name", "size", "modified")}
    # Default: by name, ascending; case aside and numbers by value (9 before 10).
    expect(header["name"]).to_have_attribute("aria-sort", "ascending")
    expect(header["size"]).to_have_attribute("aria-sort", "none")
    expect_order(page, ["zeta/", "A-first.txt", "b-middle.bin", "file9.txt",
                                    "file10.txt"])

    header["name"].get_by_role("button").click()
    expect(header["name"]).to_have_attribute("aria-sort", "descending")
    expect_order(page, ["zeta/", "file10.txt", "file9.txt", "b-middle.bin",
                                    "A-first.txt"])

    header["size"].get_by_role("button").click()
    expect(header["size"]).to_have_attribute("aria-sort", "ascending")
    expect(header["name"]).to_have_attribute("aria-sort", "none")
    expect_order(page, ["zeta/", "file10.txt", "A-first.txt", "b-middle.bin",
                                    "file9.txt"])
    # The mark is drawn, not only announced: the active header has an arrow.
    arrow = header["size"].get_by_role("button").evaluate(
        "b => getComputedStyle(b, '::after').borderBottomColor")
    assert arrow != "rgba(0, 0, 0, 0)"
    ui.screenshot(page, f"web-sorted-{viewport}.png")

    header["size"].get_by_role("button").click()
    expect(header["size"]).to_have_attribute("aria-sort", "descending")
    expect_order(page, ["zeta/", "file9.txt", "b-middle.bin", "A-first.txt",
                                    "file10.txt"])

    header["modified"].get_by_role("button").click()
    expect(header["modified"]).to_have_attribute("aria-sort", "ascending")
    expect_order(page, ["zeta/", "b-middle.bin", "file10.txt", "A-first.txt",
                                    "file9.txt"])

    page.reload()  # the choice is remembered in this browser
    expect(header["modified"]).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#files-body tr.file-row")).to_have_count(4)
    expect_order(page, ["zeta/", "b-middle.bin", "file10.txt", "A-first.txt",
                                    "file9.txt"])
