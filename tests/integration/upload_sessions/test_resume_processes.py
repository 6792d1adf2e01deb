"""Resumable uploads across real processes: ``echofs put`` killed midway and
run again, the master killed -9 midway and restarted, the network cut under
a client, and one session continued through two masters on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import blake3
import pytest

from echofs.client.aio import AsyncClient
from echofs.client.errors import NotFound
from echofs.client.resumable import ResumeState
from echofs.testing import disk
from echofs.testing.cluster import ProcessCluster
from echofs.testing.fault_forwarding import FaultProxy
from echofs.testing.faults import Faults
from echofs.testing.process import ServeProcess

MIB = 1024 * 1024
PART = MIB
SERVE_ENV = {"UPLOAD_PART_SIZE": str(PART), "GC_INTERVAL_SECONDS": "0.5"}


def put_command(url: str, local: Path, remote: str, state_home: Path
                ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ECHOFS_URL": url, "XDG_STATE_HOME": str(state_home),
           "XDG_CONFIG_HOME": str(state_home / "config")}
    return subprocess.Popen(
        [sys.executable, "-m", "echofs", "put", str(local), remote, "--no-progress", "--json",
         "--resumable-above", "1MiB"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def remembered_session(state_home: Path) -> str | None:
    for entry in (state_home / "echofs" / "uploads").glob("*.json"):
        return str(json.loads(entry.read_text())["session_id"])
    return None


async def parts_held(url: str, session_id: str) -> list[int]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"{url}/api/v1/files/upload/{session_id}") as resp:
        return list((await resp.json())["received"]) if resp.status == 200 else []


async def wait_for_parts(url: str, state_home: Path, at_least: int) -> tuple[str, list[int]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    while loop.time() < deadline:
        session_id = remembered_session(state_home)
        if session_id is not None:
            held = await parts_held(url, session_id)
            if len(held) >= at_least:
                return session_id, held
        await asyncio.sleep(0.02)
    raise TimeoutError("the upload never got that far")


async def finish(proc: subprocess.Popen[bytes]) -> tuple[dict, str]:
    out, err = await asyncio.to_thread(proc.communicate, timeout=120.0)
    assert proc.returncode == 0, err.decode()
    return json.loads(out), err.decode()


async def download(url: str, path: str) -> bytes:
    async with aiohttp.ClientSession() as http, \
            http.get(f"{url}/api/v1/files/content/{path}") as resp:
        assert resp.status == 200
        return await resp.read()


def resumed_parts(stderr: str, session_id: str, total: int) -> int:
    found = re.search(rf"resuming upload {session_id}: (\d+) of {total} parts", stderr)
    assert found, stderr
    held = int(found.group(1))
    assert 0 < held < total
    return held


def big_file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    return local, data


async def test_put_killed_midway_resumes_from_the_parts_held(tmp_path):
    local, data = big_file(tmp_path, 24 * MIB + 12345)
    state_home = tmp_path / "state"
    with ServeProcess(tmp_path / "data", env=SERVE_ENV) as server:
        # A slow link, so the client is surely midway when it is killed.
        async with FaultProxy("127.0.0.1", server.port,
                              faults=Faults(bandwidth=6 * MIB)) as proxy:
            url = f"http://127.0.0.1:{proxy.listen_port}"
            client = put_command(url, local, "resumed/big.bin", state_home)
            session_id, before = await wait_for_parts(url, state_home, at_least=5)
            client.send_signal(signal.SIGKILL)
            client.wait()
            assert len(before) < 25
            held = await parts_held(url, session_id)
            # Nothing is visible until the session completes.
            async with aiohttp.ClientSession() as http, \
                    http.get(f"{url}/api/v1/files/content/resumed/big.bin") as resp:
                assert resp.status == 404
            result, err = await finish(put_command(url, local, "resumed/big.bin", state_home))
        # Parts whose bytes had all arrived when the client died may still
        # have been recorded after ``held`` was read: at least those held.
        assert resumed_parts(err, session_id, 25) >= len(held)
        assert result["blake3"] == blake3.blake3(data).hexdigest()
        assert await download(server.url, "resumed/big.bin") == data
        assert remembered_session(state_home) is None  # forgotten once complete


async def test_master_killed_midway_loses_no_part(tmp_path):
    local, data = big_file(tmp_path, 16 * MIB)
    state_home = tmp_path / "state"
    server = ServeProcess(tmp_path / "data", env=SERVE_ENV).start()
    try:
        async with FaultProxy("127.0.0.1", server.port,
                              faults=Faults(bandwidth=6 * MIB)) as proxy:
            url = f"http://127.0.0.1:{proxy.listen_port}"
            client = put_command(url, local, "crash/big.bin", state_home)
            session_id, before = await wait_for_parts(url, state_home, at_least=4)
            server.kill()  # -9, mid-upload
            client.kill()
            client.wait()
            server = ServeProcess(tmp_path / "data", port=server.port, env=SERVE_ENV).start()
            after = await parts_held(url, session_id)
            assert set(before) <= set(after), "an acknowledged part was lost"
            result, err = await finish(put_command(url, local, "crash/big.bin", state_home))
        assert resumed_parts(err, session_id, 16) >= len(after)
        assert result["size"] == len(data)
        assert await download(server.url, "crash/big.bin") == data
    finally:
        server.kill()


async def test_a_network_cut_is_retried_without_starting_over(tmp_path):
    local, data = big_file(tmp_path, 12 * MIB)
    with ServeProcess(tmp_path / "data", env=SERVE_ENV) as server:
        async with FaultProxy("127.0.0.1", server.port,
                              faults=Faults(bandwidth=6 * MIB)) as proxy:
            url = f"http://127.0.0.1:{proxy.listen_port}"
            seen: list[str] = []
            async with AsyncClient(url) as client:
                upload = asyncio.create_task(client.upload_resumable(
                    local, "cut.bin", state=ResumeState(tmp_path / "st"),
                    on_start=lambda info: seen.append(info.session_id)))
                while not seen or len(await parts_held(url, seen[0])) < 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                assert proxy.reset_connections() > 0  # the cut
                result = await upload
        assert result.size == len(data)
        assert await download(server.url, "cut.bin") == data


async def test_two_masters_on_postgresql_share_one_session(tmp_path, postgres_url):
    env = {"DATABASE_URL": postgres_url, "UPLOAD_PART_SIZE": str(PART)}
    data = os.urandom(10 * PART + 777)
    parts = [data[i:i + PART] for i in range(0, len(data), PART)]
    with ProcessCluster(tmp_path, masters=2, env=env) as cluster:
        first, second = cluster.urls
        async with AsyncClient(first) as a, AsyncClient(second) as b:
            session = await a.upload_init("shared/file.bin", len(data))
            sid = session["session_id"]
            # Odd parts through one master, even through the other, all at once.
            await asyncio.gather(*(
                (a if n % 2 else b).upload_part(sid, n, p, blake3=blake3.blake3(p).hexdigest())
                for n, p in enumerate(parts)))
            assert (await a.upload_status(sid))["received"] == list(range(11))
            assert (await b.upload_status(sid))["missing"] == []
            # The master that took half the parts dies; the other completes.
            cluster.kill_master(0)
            done = await b.upload_complete(sid, blake3=blake3.blake3(data).hexdigest())
            cluster.start_master(0)
            # A restarted master serves reads once its workers have
            # registered with it again (until then it answers 503).
            cluster.wait_for_workers(3, master=0)
            again = await a.upload_complete(sid)
            assert (again.file_id, again.version) == (done.file_id, done.version)
        assert await download(first, "shared/file.bin") == data
        assert await download(second, "shared/file.bin") == data


async def test_put_goes_on_through_another_master_when_its_master_dies(tmp_path,
                                                                      postgres_url):
    """Two masters on PostgreSQL behind one address (a fault proxy standing
    in for a load balancer): the master taking ``echofs put``'s parts is
    killed -9 midway, the address turns to the other master, and the same
    run carries on there with the parts the first one recorded."""
    local, data = big_file(tmp_path, 16 * MIB)
    state_home = tmp_path / "state"
    env = {"DATABASE_URL": postgres_url, "UPLOAD_PART_SIZE": str(PART)}
    with ProcessCluster(tmp_path / "cluster", masters=2, env=env) as cluster:
        first, second = cluster.masters
        async with FaultProxy("127.0.0.1", first.port,
                              faults=Faults(bandwidth=6 * MIB)) as proxy:
            url = f"http://127.0.0.1:{proxy.listen_port}"
            client = put_command(url, local, "failover/big.bin", state_home)
            session_id, before = await wait_for_parts(url, state_home, at_least=4)
            cluster.kill_master(0)
            proxy.upstream = ("127.0.0.1", second.port)
            proxy.reset_connections()
            assert set(before) <= set(await parts_held(url, session_id))
            result, err = await finish(client)
        assert "resuming" not in err  # the same run, not a second one
        assert result["blake3"] == blake3.blake3(data).hexdigest()
        assert await download(second.url, "failover/big.bin") == data


async def test_an_expired_sessions_chunks_are_collected_by_the_daemons(tmp_path):
    """``echofs serve`` on its own: the expirer drops a session whose time ran
    out, the collector then removes its part's chunks from every worker's
    disk, while an open session's part stays."""
    env = {**SERVE_ENV, "UPLOAD_SESSION_TTL_SECONDS": "6", "UPLOAD_SESSION_SWEEP_SECONDS": "0.2",
           "GC_GRACE_SECONDS": "1", "GC_PRESSURE_GRACE_SECONDS": "1"}
    expiring, kept = os.urandom(PART), os.urandom(PART)
    with ServeProcess(tmp_path / "data", env=env) as server:
        async with AsyncClient(server.url) as client:
            first = await client.upload_init("expiring.bin", PART)
            await client.upload_part(first["session_id"], 0, expiring)
            # The second session expires 4.5 s after the first: time enough to
            # see the first's chunks go while the second's stay.
            await asyncio.sleep(4.5)
            second = await client.upload_init("kept.bin", PART)
            await client.upload_part(second["session_id"], 0, kept)

            def on_disk() -> set[str]:
                return {chunk_id for worker in ("w1", "w2", "w3")
                        for chunk_id in disk.stored_copies(
                            tmp_path / "data" / "workers" / worker)}

            gone, held = chunk_ids(expiring), chunk_ids(kept)
            assert gone | held <= on_disk()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while gone & on_disk() and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            assert not gone & on_disk(), "the expired session's chunks are still stored"
            assert held <= on_disk()
            with pytest.raises(NotFound):
                await client.upload_status(first["session_id"])
            assert (await client.upload_status(second["session_id"]))["received"] == [0]


def chunk_ids(data: bytes, chunk_size: int = MIB) -> set[str]:
    return {blake3.blake3(data[i:i + chunk_size]).hexdigest()
            for i in range(0, len(data), chunk_size)}
