"""The original's auth flow against a real ``echofs serve`` with accounts on,
in its test script's order and with its requests, through curl: register
(username, email, password), login by email, profile with the token, profile
without one → 401; then the original's web client's upload, which reads the
new file's id from ``data.file_id``, and the rest of the script: list,
download, no token, another user, delete."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from echofs.testing.process import ServeProcess

SECRET = "original-flow-" + "s" * 32
CURL = shutil.which("curl")


def curl(*args: str) -> tuple[int, dict]:
    """(HTTP status, JSON body) of one curl request."""
    assert CURL, "curl is needed (apt-get install curl)"
    done = subprocess.run([CURL, "-sS", "-w", "\n%{http_code}", *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServeProcess(tmp_path_factory.mktemp("orig-auth") / "data",
                      env={"JWT_SECRET": SECRET}) as process:
        yield process


def test_register_login_by_email_profile_and_no_token(server, tmp_path):
    api = f"{server.url}/api/v1"
    json_header = ("-H", "Content-Type: application/json")

    status, registered = curl("-X", "POST", f"{api}/auth/register", *json_header, "-d",
                              json.dumps({"username": "testuser", "email": "test@example.com",
                                          "password": "password123"}))
    assert status == 201, registered
    assert registered["success"] is True and registered["token"]
    assert registered["user"]["email"] == "test@example.com"

    status, again = curl("-X", "POST", f"{api}/auth/register", *json_header, "-d",
                         json.dumps({"username": "someoneelse", "email": "test@example.com",
                                     "password": "password123"}))
    assert status == 409, again

    status, logged_in = curl("-X", "POST", f"{api}/auth/login", *json_header, "-d",
                             json.dumps({"email": "test@example.com",
                                         "password": "password123"}))
    assert status == 200, logged_in
    assert logged_in["success"] is True and logged_in["message"] == "Login successful"
    token = logged_in["token"]

    status, wrong = curl("-X", "POST", f"{api}/auth/login", *json_header, "-d",
                         json.dumps({"email": "test@example.com", "password": "wrong"}))
    assert status == 401, wrong

    status, profile = curl(f"{api}/auth/profile", "-H", f"Authorization: Bearer {token}")
    assert status == 200, profile
    assert profile["success"] is True
    assert profile["user"]["email"] == "test@example.com"
    assert profile["user"]["username"] == "testuser"

    status, refused = curl(f"{api}/auth/profile")
    assert status == 401, refused

    # The script goes on: upload (the id is data.file_id), list (.data), download.
    sample = tmp_path / "echofs_test_file.txt"
    sample.write_bytes(b"Test file content\n")
    auth = ("-H", f"Authorization: Bearer {token}")
    status, uploaded = curl("-X", "POST", f"{api}/files/upload", *auth, "-F", f"file=@{sample}")
    assert status == 201, uploaded
    assert uploaded["success"] is True and uploaded["data"]["file_id"] == uploaded["file_id"]
    file_id = uploaded["data"]["file_id"]
    status, listed = curl(f"{api}/files", *auth)
    assert status == 200 and listed["success"] is True
    assert [f["file_id"] for f in listed["data"]] == [file_id]
    download = subprocess.run([CURL, "-sS", "--fail-with-body", *auth,
                               f"{api}/files/{file_id}/download"],
                              capture_output=True, timeout=60, check=True)
    assert download.stdout == sample.read_bytes()

    # Without a token: refused, in the words the script looks for.
    status, refused = curl(f"{api}/files")
    assert status == 401 and "Authorization header required" in refused["error"]["message"]

    # A second user cannot reach the file: 404 here (the original said 403;
    # a 404 does not tell that the file exists).
    _, second = curl("-X", "POST", f"{api}/auth/register", *json_header, "-d",
                     json.dumps({"username": "testuser2", "email": "test2@example.com",
                                 "password": "password123"}))
    status, _ = curl(f"{api}/files/{file_id}/download",
                     "-H", f"Authorization: Bearer {second['token']}")
    assert status == 404

    status, deleted = curl("-X", "DELETE", f"{api}/files/{file_id}", *auth)
    assert status == 200 and deleted["success"] is True
    _, listed = curl(f"{api}/files", *auth)
    assert listed["data"] == []
