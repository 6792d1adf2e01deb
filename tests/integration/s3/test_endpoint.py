"""Where the S3 endpoint listens: a chosen port must bind (or the node does
not start, saying why); the default port, when taken, is skipped with a
warning; ``off`` serves no S3 at all."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from contextlib import ExitStack

from echofs.config import DEFAULT_S3_PORT
from echofs.testing.process import ServeProcess, free_port


def _health(process: ServeProcess) -> dict:
    with urllib.request.urlopen(f"{process.url}/api/v1/health") as answer:
        return json.loads(answer.read())


def _hold(port: int) -> socket.socket | None:
    """Listen on ``port`` if nobody does; None if it is taken already."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    sock.listen()
    return sock


def test_default_port_taken_is_skipped_with_a_warning(tmp_path):
    with ExitStack() as stack:
        held = _hold(DEFAULT_S3_PORT)  # taken either way: by us or by someone else
        if held is not None:
            stack.callback(held.close)
        process = stack.enter_context(ServeProcess(tmp_path / "data"))
        assert _health(process)["s3"] == {"enabled": False, "port": None}
        assert f"S3 endpoint not started: port {DEFAULT_S3_PORT} is in use" in process.log()


def test_off_and_a_chosen_port(tmp_path):
    with ServeProcess(tmp_path / "off" / "data", "--s3-port", "off") as process:
        assert _health(process)["s3"] == {"enabled": False, "port": None}
        assert "S3          off" in process.log()
    port = free_port()
    with ServeProcess(tmp_path / "on" / "data", "--s3-port", str(port)) as process:
        assert _health(process)["s3"] == {"enabled": True, "port": port}
        assert f"S3          http://127.0.0.1:{port}" in process.log()


def test_a_chosen_port_that_is_taken_stops_the_start(tmp_path):
    held = _hold(free_port())
    assert held is not None
    with held:
        port = held.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "echofs", "serve", "--port", "0", "--data-dir",
             str(tmp_path / "data"), "--s3-port", str(port)],
            capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"the S3 endpoint cannot listen on 127.0.0.1:{port}" in done.stderr
