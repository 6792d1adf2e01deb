"""The command-line clients people use, installed from their packages:
aws-cli (PyPI, the test extras), rclone and s3cmd (Debian packages, see
tests/run.sh), each against the embedded node."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET

MIB = 1024 * 1024


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n" \
        f"{done.stderr}"
    return done.stdout


def _clean_env() -> dict[str, str]:
    """This process's environment without AWS settings that would steer a client
    elsewhere (profiles, CA bundles, endpoints of the machine it runs on)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"alpha\n", "dir/b.bin": os.urandom(70_000),
             "dir/sub/c.txt": b"gamma " * 1000, "dir/sub/empty": b"",
             "d e f/space name.txt": b"spaces"}
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return files


# -- aws-cli -------------------------------------------------------------------------------


@pytest.fixture
def aws(s3_node, tmp_path):
    config = tmp_path / "aws-config"
    # aws-cli's own defaults: files above 8 MiB go up as multipart uploads.
    config.write_text("[default]\nregion = us-east-1\n")
    env = {**_clean_env(), "AWS_ACCESS_KEY_ID": OPEN_KEY, "AWS_SECRET_ACCESS_KEY": OPEN_SECRET,
           "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_DEFAULT_REGION": "us-east-1"}
    binary = str(Path(sys.executable).parent / "aws")

    def run(*args: str) -> str:
        return _run([binary, "--endpoint-url", s3_node.endpoint, *args], env)

    return run


@pytest.mark.slow
def test_aws_cp_up_and_down_200_mib(aws, s3_node, tmp_path):
    source = tmp_path / "big.bin"
    digest = hashlib.md5()
    with source.open("wb") as out:
        for _ in range(200):
            block = os.urandom(MIB)
            digest.update(block)
            out.write(block)
    aws("s3", "mb", "s3://big")
    rss_before = s3_node.process.rss()
    aws("s3", "cp", str(source), "s3://big/file.bin")
    back = tmp_path / "back.bin"
    aws("s3", "cp", "s3://big/file.bin", str(back))
    assert hashlib.md5(back.read_bytes()).hexdigest() == digest.hexdigest()
    # Streamed both ways: the server does not hold the file in memory.
    assert s3_node.process.rss() - rss_before < 150 * MIB
    listing = aws("s3", "ls", "s3://big/")
    assert "file.bin" in listing and str(200 * MIB) in listing


def test_aws_sync_twice_ls_and_rm_recursive(aws, tmp_path):
    source = tmp_path / "tree"
    files = _tree(source)
    aws("s3", "mb", "s3://synced")
    first = aws("s3", "sync", str(source), "s3://synced/tree")
    assert first.count("upload:") == len(files)
    second = aws("s3", "sync", str(source), "s3://synced/tree")
    assert "upload:" not in second  # nothing changed, nothing copied
    listed = aws("s3", "ls", "--recursive", "s3://synced/")
    # Lines are "date time size key"; keys may hold spaces.
    assert sorted(line.split(None, 3)[3].removeprefix("tree/")
                  for line in listed.splitlines()) == sorted(files)
    down = tmp_path / "down"
    aws("s3", "sync", "s3://synced/tree", str(down))
    assert {str(p.relative_to(down)): p.read_bytes()
            for p in down.rglob("*") if p.is_file()} == files
    removed = aws("s3", "rm", "--recursive", "s3://synced/tree")
    assert removed.count("delete:") == len(files)
    assert aws("s3", "ls", "--recursive", "s3://synced/").strip() == ""
    aws("s3", "rb", "s3://synced")


# -- rclone --------------------------------------------------------------------------------


@pytest.fixture
def rclone(s3_node):
    binary = shutil.which("rclone")
    assert binary, "rclone is missing: tests/run.sh installs the Debian package"
    env = {**_clean_env(), "RCLONE_CONFIG": os.devnull,
           "RCLONE_CONFIG_ECHO_TYPE": "s3", "RCLONE_CONFIG_ECHO_PROVIDER": "Other",
           "RCLONE_CONFIG_ECHO_ACCESS_KEY_ID": OPEN_KEY,
           "RCLONE_CONFIG_ECHO_SECRET_ACCESS_KEY": OPEN_SECRET,
           "RCLONE_CONFIG_ECHO_ENDPOINT": s3_node.endpoint,
           "RCLONE_CONFIG_ECHO_REGION": "us-east-1"}

    def run(*args: str) -> str:
        return _run([binary, *args], env)

    return run


def test_rclone_copy_check_lsf(rclone, tmp_path):
    source = tmp_path / "tree"
    files = _tree(source)
    rclone("mkdir", "echo:rcloned")
    rclone("copy", str(source), "echo:rcloned/tree")
    # check compares sizes and MD5s (our ETags): zero differences.
    rclone("check", str(source), "echo:rcloned/tree")
    assert sorted(rclone("lsf", "-R", "--files-only", "echo:rcloned/tree").split("\n")[:-1]) \
        == sorted(files)
    down = tmp_path / "down"
    rclone("copy", "echo:rcloned/tree", str(down))
    assert {str(p.relative_to(down)): p.read_bytes()
            for p in down.rglob("*") if p.is_file()} == files


# -- s3cmd ---------------------------------------------------------------------------------


@pytest.fixture(params=["v4", "v2"])
def s3cmd(s3_node, tmp_path, request):
    binary = shutil.which("s3cmd")
    assert binary, "s3cmd is missing: tests/run.sh installs the Debian package"
    host = s3_node.endpoint.removeprefix("http://")
    config = tmp_path / "s3cfg"
    config.write_text(f"[default]\naccess_key = {OPEN_KEY}\nsecret_key = {OPEN_SECRET}\n"
                      f"host_base = {host}\nhost_bucket = {host}\nuse_https = False\n"
                      f"signature_v2 = {request.param == 'v2'}\n"
                      "bucket_location = us-east-1\n")

    def run(*args: str) -> str:
        return _run([binary, "-c", str(config), "--no-progress", *args], _clean_env())

    return run


def test_s3cmd_put_get_ls_del(s3cmd, tmp_path):
    source = tmp_path / "note.txt"
    source.write_bytes(b"s3cmd was here\n" * 100)
    bucket = "s3://s3cmd-" + os.urandom(4).hex()
    s3cmd("mb", bucket)
    s3cmd("put", str(source), f"{bucket}/notes/note.txt")
    assert f"{bucket}/notes/note.txt" in s3cmd("ls", "-r", bucket)
    back = tmp_path / "back.txt"
    s3cmd("get", f"{bucket}/notes/note.txt", str(back))
    assert back.read_bytes() == source.read_bytes()
    s3cmd("del", f"{bucket}/notes/note.txt")
    assert "note.txt" not in s3cmd("ls", "-r", bucket)
    s3cmd("rb", bucket)
