"""``echofs serve`` as a real child process: start, wait until healthy, watch
its memory, signal it. Used by end-to-end tests and the benchmark scripts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """One ``echofs serve`` child. By default the embedded node (role all);
    pass ``--role=...`` in ``args`` and a ``health_url`` for other roles."""

    def __init__(self, data_dir: Path, *args: str, port: int | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 health_url: str | None = None, name: str | None = None,
                 up_statuses: tuple[int, ...] = (200,)) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.name = name or f"serve-{self.port}"
        self.log_path = data_dir.parent / f"{self.name}.log"
        self.health_url = health_url or f"{self.url}/api/v1/health"
        # A master with no workers yet answers 503 (cannot take writes) but is up.
        self.up_statuses = up_statuses
        self.started_at = 0.0
        self.ready_after: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ServeProcess:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "echofs", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
        )
        log.close()
        self.wait_healthy(timeout)
        self.ready_after = time.monotonic() - self.started_at
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.log())
            try:
                with urllib.request.urlopen(self.health_url, timeout=1) as r:
                    if r.status in self.up_statuses:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code in self.up_statuses:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss(self) -> int:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the exit code of a clean shutdown."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to clean up."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class PeakRSS:
    """Samples a process's RSS in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._proc = psutil.Process(pid)
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline
