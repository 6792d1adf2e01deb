"""Two masters, one shared metadata store (PostgreSQL, then DynamoDB):
concurrent overwrites of one name through both.

Each master takes 50 uploads of the same path from 4 concurrent clients. No
update may be lost and no number given twice: the 100 versions are exactly
1..100, each client sees its own numbers rise, every version reads back
byte-exact through the *other* master right after it was acknowledged, and
the file ends as the upload that got the highest number.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack

import aiohttp

from echofs.testing.http import put_raw

from .conftest import Backends, assert_no_errors_logged

UPLOADS_PER_MASTER = 50
CLIENTS_PER_MASTER = 4
PATH = "hot/contended.bin"


def payload(master: int, n: int) -> bytes:
    rng = random.Random(master * 100_000 + n)
    return f"master {master} upload {n}\n".encode() + rng.randbytes(rng.randint(1, 48 * 1024))


async def test_concurrent_overwrites_through_two_masters(shared_metadata: Backends,
                                                         tmp_path) -> None:
    total = 2 * UPLOADS_PER_MASTER
    cluster = shared_metadata.cluster(tmp_path, masters=2, env={"VERSIONS_KEPT": str(total + 1)})
    with cluster:
        async with AsyncExitStack() as stack:
            timeout = aiohttp.ClientTimeout(total=60)
            sessions = [await stack.enter_async_context(
                aiohttp.ClientSession(base_url=url, timeout=timeout)) for url in cluster.urls]
            written: dict[int, bytes] = {}
            file_ids: set[str] = set()

            async def client(master: int, uploads: list[int]) -> list[int]:
                mine, other = sessions[master], sessions[1 - master]
                numbers = []
                for n in uploads:
                    data = payload(master, n)
                    body = await put_raw(mine, PATH, data)
                    number = body["version"]
                    assert number not in written, f"version {number} given twice"
                    written[number] = data
                    file_ids.add(body["file_id"])
                    numbers.append(number)
                    # Strong: acknowledged through one master, readable
                    # through the other at once.
                    async with other.get(f"/api/v1/files/{body['file_id']}/download",
                                         params={"version": str(number)}) as resp:
                        assert resp.status == 200, await resp.text()
                        assert await resp.read() == data
                return numbers

            jobs = [client(m, list(range(c, UPLOADS_PER_MASTER, CLIENTS_PER_MASTER)))
                    for m in (0, 1) for c in range(CLIENTS_PER_MASTER)]
            per_client = await asyncio.gather(*jobs)

            assert len(file_ids) == 1
            assert sorted(written) == list(range(1, total + 1))
            for numbers in per_client:
                assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
            (file_id,) = file_ids
            for http in sessions:
                async with http.get(f"/api/v1/files/{file_id}/download") as resp:
                    assert resp.headers["X-EchoFS-Version"] == str(total)
                    assert await resp.read() == written[total]
                async with http.get(f"/api/v1/files/{file_id}/versions") as resp:
                    versions = [v["version"] for v in (await resp.json())["versions"]]
                assert versions == list(range(total, 0, -1))
        assert_no_errors_logged(cluster)
