"""The client's memory of unfinished resumable uploads, and its size flags."""

from __future__ import annotations

import argparse

import pytest

from echofs.client.commands import parse_size
from echofs.client.errors import ConnectionFailed, EchoFSClientError
from echofs.client.resumable import LocalFile, ResumeState, state_dir, transient


def test_a_session_is_remembered_per_server_path_and_file_version(tmp_path) -> None:
    state = ResumeState(tmp_path / "state")
    local_path = tmp_path / "f.bin"
    local_path.write_bytes(b"x" * 10)
    local = LocalFile.of(local_path)
    assert state.load("http://a", "r", local) is None
    state.save("http://a", "r", local, "s1")
    assert state.load("http://a", "r", local) == "s1"
    assert state.load("http://b", "r", local) is None
    assert state.load("http://a", "other", local) is None
    # The same file changed (size, mtime): a new upload.
    local_path.write_bytes(b"y" * 11)
    assert state.load("http://a", "r", LocalFile.of(local_path)) is None
    state.forget("http://a", "r", local)
    assert state.load("http://a", "r", local) is None
    assert not [p for p in (tmp_path / "state").iterdir() if p.suffix == ".tmp"]


def test_state_dir_follows_xdg() -> None:
    assert str(state_dir({"XDG_STATE_HOME": "/s"})) == "/s/echofs/uploads"
    assert str(state_dir({"XDG_STATE_HOME": "relative"})).endswith(".local/state/echofs/uploads")


def test_sizes_and_transient_failures() -> None:
    assert parse_size("64MiB") == 64 * 1024 * 1024
    assert parse_size("1k") == 1024 and parse_size("100") == 100
    for bad in ("", "x", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)
    assert transient(ConnectionFailed("cut"))
    assert transient(EchoFSClientError(503, "unavailable", ""))
    assert not transient(EchoFSClientError(400, "digest_mismatch", ""))
