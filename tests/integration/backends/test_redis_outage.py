"""Redis stopped under two running masters, then started again: no request
fails, no read is stale, and each master says so once each way."""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from contextlib import AsyncExitStack

import aiohttp

from echofs.testing.http import put_raw
from echofs.testing.services import RedisServer
from echofs.testing.waiting import eventually

from .conftest import Backends, assert_no_errors_logged


def cache_available(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/v1/health", timeout=5) as resp:
        return bool(json.load(resp)["cache"]["available"])


async def test_redis_stopped_mid_test_fails_no_request(production: Backends, tmp_path) -> None:
    with RedisServer() as redis_server:
        cluster = production.cluster(tmp_path, masters=2, env={"REDIS_URL": redis_server.url})
        with cluster:
            stop = asyncio.Event()
            done: list[int] = []

            async def traffic(writer: int) -> None:
                """Overwrite a file through one master, read it back through
                the other (twice: the second read is a cache hit), forever."""
                async with AsyncExitStack() as stack:
                    mine, other = [await stack.enter_async_context(
                        aiohttp.ClientSession(base_url=cluster.urls[i]))
                        for i in (writer, 1 - writer)]
                    rng = random.Random(writer)
                    n = 0
                    while not stop.is_set():
                        n += 1
                        data = rng.randbytes(rng.randint(1, 300_000))
                        body = await put_raw(mine, f"outage/{writer}.bin", data)
                        for http in (other, other, mine):
                            url = f"/api/v1/files/{body['file_id']}/download"
                            async with http.get(url) as resp:
                                assert resp.status == 200, await resp.text()
                                assert resp.headers["X-EchoFS-Version"] == str(body["version"])
                                assert await resp.read() == data
                        async with other.get(f"/api/v1/files/{body['file_id']}") as resp:
                            assert resp.status == 200
                            assert (await resp.json())["version"] == body["version"]
                    done.append(n)

            async def both_masters(available: bool) -> bool:
                states = await asyncio.gather(*(asyncio.to_thread(cache_available, url)
                                                for url in cluster.urls))
                return all(s is available for s in states)

            load = asyncio.gather(traffic(0), traffic(1))
            try:
                await asyncio.sleep(1.5)
                redis_server.stop()
                await eventually(lambda: both_masters(False), 10, "masters notice Redis gone")
                await asyncio.sleep(1.5)
                redis_server.start()
                await eventually(lambda: both_masters(True), 10, "masters use Redis again")
                await asyncio.sleep(1.5)
            finally:
                stop.set()
                await load
            assert min(done) >= 3

        for master in cluster.masters:
            log = master.log_path.read_text()
            assert log.count("unreachable") == 1, master.name
            assert log.count("is back") == 1, master.name
        assert_no_errors_logged(cluster)
