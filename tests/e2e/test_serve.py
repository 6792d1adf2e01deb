"""`echofs serve` as a real process: ready fast, the original README's curl
walk-through works unchanged, SIGTERM is clean, data survives a restart, and
memory stays flat for a 1 GiB transfer."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import aiohttp
import blake3
import pytest

from echofs.testing.http import pattern_digest, pattern_stream
from echofs.testing.process import PeakRSS, ServeProcess, free_port

MIB = 1024 * 1024
CURL = shutil.which("curl")


def curl(*args: str) -> str:
    assert CURL, "curl is needed for the walk-through test (apt-get install curl)"
    done = subprocess.run([CURL, "-sS", "--fail-with-body", *args], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_ready_within_two_seconds_and_clean_sigterm(tmp_path):
    server = ServeProcess(tmp_path / "data")
    with server:
        assert server.ready_after is not None and server.ready_after < 2.0, server.ready_after
        health = json.loads(curl(f"{server.url}/api/v1/health"))
        assert health["status"] == "ok"
        assert server.terminate() == 0
    assert "shutting down" in server.log()


def test_seed_readme_curl_walkthrough(tmp_path):
    """The original project's "Testing the System" commands, verbatim but for the port."""
    example = tmp_path / "example.txt"
    example.write_text("hello from the original README\n")
    with ServeProcess(tmp_path / "data") as server:
        base = server.url
        assert json.loads(curl(f"{base}/api/v1/health"))["status"] == "ok"
        workers = json.loads(curl(f"{base}/api/v1/workers/health"))["workers"]
        assert len(workers) == 3 and all(w["state"] == "alive" for w in workers)
        uploaded = json.loads(curl("-X", "POST", f"{base}/api/v1/files/upload",
                                   "-F", f"file=@{example}", "-F", "user_id=test-user"))
        assert uploaded["path"] == "example.txt" and uploaded["owner"] == "test-user"
        listing = json.loads(curl(f"{base}/api/v1/files"))
        assert [f["file_id"] for f in listing["files"]] == [uploaded["file_id"]]
        target = tmp_path / "downloaded_file.txt"
        curl(f"{base}/api/v1/files/{uploaded['file_id']}/download", "-o", str(target))
        assert target.read_bytes() == example.read_bytes()


def test_data_survives_restart(tmp_path):
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir) as server:
        put = json.loads(curl("-X", "PUT", "--data-binary", "persistent bytes",
                              f"{server.url}/api/v1/files/content/keep/me.txt"))
        assert server.terminate() == 0
    with ServeProcess(data_dir) as server:
        got = curl(f"{server.url}/api/v1/files/{put['file_id']}/download")
        assert got == "persistent bytes"


@pytest.mark.slow
def test_memory_stays_flat_for_a_1_gib_round_trip(tmp_path):
    size = 1024 * MIB

    async def transfer(url: str) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(base_url=url, timeout=timeout) as http:
            async with http.put("/api/v1/files/content/big.bin",
                                data=pattern_stream(size)) as resp:
                body = await resp.json()
                assert resp.status == 201, body
            hasher, received = blake3.blake3(), 0
            async with http.get(f"/api/v1/files/{body['file_id']}/download") as resp:
                async for piece in resp.content.iter_chunked(MIB):
                    hasher.update(piece)
                    received += len(piece)
            return received, hasher.hexdigest()

    with ServeProcess(tmp_path / "data") as server:
        with PeakRSS(server.proc.pid) as rss:
            received, digest = asyncio.run(transfer(server.url))
        assert (received, digest) == (size, pattern_digest(size))
        print(f"RSS baseline {rss.baseline / MIB:.0f} MiB, peak {rss.peak / MIB:.0f} MiB")
        assert rss.growth < 100 * MIB, f"RSS grew by {rss.growth / MIB:.0f} MiB"


def _banner(log: str) -> str:
    """The banner's lines (after the "ready in" line the tests also wait for)."""
    assert " ready in " in log, log
    start = log.index("is ready (")
    return log[start:]


def test_the_embedded_node_prints_a_start_banner(tmp_path):
    with ServeProcess(tmp_path / "data") as server:
        banner = _banner(server.log())
        assert f"API         {server.url}/api/v1" in banner
        assert f"Web UI      {server.url}/" in banner
        assert f"Metrics     {server.url}/metrics" in banner
        assert "Controller  in this process" in banner
        assert f"Data        {(tmp_path / 'data').resolve()}" in banner
        assert ("3 copies of each chunk; 3 workers on one disk: copies guard against a "
                "damaged copy, not a failed disk") in banner
        assert "60 min after a file is deleted" in banner
        assert "single-user" in banner and "Ctrl-C" in banner
        # Membership is the cluster master's: the embedded node has no gRPC port.
        assert "Membership" not in banner


def test_a_master_and_its_controller_print_their_ports(tmp_path):
    http, grpc, master_grpc = free_port(), free_port(), free_port()
    controller = ServeProcess(
        tmp_path / "controller", "--role=controller", "--controller-port", str(http),
        "--controller-grpc-port", str(grpc), name="controller",
        health_url=f"http://127.0.0.1:{http}/health")
    with controller:
        assert f"Controller  http://127.0.0.1:{http}, gRPC 127.0.0.1:{grpc}" in _banner(
            controller.log())
        master = ServeProcess(
            tmp_path / "master", "--role=master", "--grpc-port", str(master_grpc),
            "--controller", f"127.0.0.1:{grpc}", "--controller-port", str(http),
            env={"JWT_SECRET": "s" * 40}, name="master", up_statuses=(200, 503))
        with master:
            banner = _banner(master.log())
            assert f"Membership  gRPC 127.0.0.1:{master_grpc}" in banner
            assert f"Controller  reports to 127.0.0.1:{grpc}" in banner
            assert "on workers that register over gRPC" in banner
            assert "accounts: register or `echofs login`" in banner
