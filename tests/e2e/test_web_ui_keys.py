"""The web UI's S3 access keys page in a real browser: create a key (its
secret shown once), use it with boto3, revoke it. Fixtures: ``conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from playwright.sync_api import Page, expect

from echofs.testing.process import ServeProcess, free_port

SECRET = "k" * 40


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[ServeProcess, int]]:
    import tempfile
    from pathlib import Path

    s3_port = free_port()
    with tempfile.TemporaryDirectory() as root, ServeProcess(
            Path(root) / "data", "--s3-port", str(s3_port),
            env={"JWT_SECRET": SECRET}) as process:
        yield process, s3_port


def _client(port: int, key: str, secret: str):
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


def test_keys_page_creates_shows_once_and_revokes(ui, keyed):
    process, s3_port = keyed
    page: Page = ui.open(process.url)
    page.goto("/")
    page.fill("#login-username", "keeper")
    page.fill("#login-password", "keeper's password")
    page.click("#register-submit")
    expect(page.locator("#nav")).to_be_visible()
    page.goto("/#/keys")
    expect(page.locator("#keys-empty")).to_be_visible()
    page.click("#keys-create")
    expect(page.locator("#keys-new")).to_be_visible()
    key_id = page.locator("#keys-new-id").inner_text()
    secret = page.locator("#keys-new-secret").inner_text()
    expect(page.locator("#keys-body tr")).to_have_count(1)
    expect(page.locator("#keys-body")).to_contain_text(key_id)
    client = _client(s3_port, key_id, secret)
    client.create_bucket(Bucket="from-the-ui")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["from-the-ui"]
    page.reload()
    expect(page.locator("#keys-new")).to_be_hidden()  # the secret is not shown again
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#keys-body tr").get_by_role("button", name="Revoke").click()
    expect(page.locator("#keys-body tr")).to_have_count(0)
    with pytest.raises(ClientError) as revoked:
        client.list_buckets()
    assert revoked.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_keys_page_in_single_user_mode_explains(page):
    page.goto("/#/keys")
    expect(page.locator("#keys-mode")).to_contain_text("any well-formed signature")
    expect(page.locator("#keys-panel")).to_be_hidden()
