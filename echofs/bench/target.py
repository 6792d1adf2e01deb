"""What the throughput bench's load generator drives: one HTTP store, named by
its PUT and GET URLs and the headers every request carries; and the wait for a
peer server's port that every peer started by the bench shares."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field

# How long a peer server (nginx, each Swift server) may take to listen.
LISTEN_TIMEOUT_S = 20.0
_POLL_S = 0.05


@dataclass
class Target:
    name: str
    base_url: str
    put_path: str  # format with {name}
    get_path: str  # format with {name} (or {file_id} for EchoFS by path: same)
    pids: list[int] = field(default_factory=list)
    # Sent with every PUT and GET (Swift's X-Auth-Token); empty for the
    # targets that need none, so their requests are unchanged.
    headers: dict[str, str] = field(default_factory=dict)
    # An EchoFS master is pids[0] (its CPU per GiB is measured); a cluster's
    # master also counts the chunk bytes it sends to workers.
    master: bool = False
    cluster: bool = False

    def put_url(self, name: str) -> str:
        return self.base_url + self.put_path.format(name=name)

    def get_url(self, name: str) -> str:
        return self.base_url + self.get_path.format(name=name)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str,
                  log: str = "", timeout: float = LISTEN_TIMEOUT_S) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; stop the bench if
    ``proc`` exits first or the port stays closed (``log`` names where the
    server wrote why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            details = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"{what} exited with {proc.returncode}: {details}{log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(_POLL_S)
    raise SystemExit(f"{what} did not start listening on port {port}{log}")
