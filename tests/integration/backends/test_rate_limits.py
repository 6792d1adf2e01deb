"""Per-user request limits (RATE_LIMIT_PER_MINUTE): counted per master
in-process, across masters in Redis; 429 ``rate_limited`` with Retry-After."""

from __future__ import annotations

import uuid

import aiohttp

from echofs.testing.http import error_of
from echofs.testing.node import running_node


async def _get(http: aiohttp.ClientSession, path: str, user: str | None = None) -> int:
    params = {"user_id": user} if user else {}
    async with http.get(path, params=params) as resp:
        if resp.status == 429:
            error = await error_of(resp)
            assert error["code"] == "rate_limited"
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
        return resp.status


async def test_limit_per_user_in_process(tmp_path) -> None:
    async with running_node(tmp_path / "data", rate_limit_per_minute=3) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        assert [await _get(http, "/api/v1/files", "alice") for _ in range(4)] == [
            200, 200, 200, 429]
        assert await _get(http, "/api/v1/files", "bob") == 200
        assert await _get(http, "/api/v1/files") == 200  # the single local user
        assert await _get(http, "/api/v1/health", "alice") == 200  # never limited


async def test_limit_is_shared_by_masters_through_redis(tmp_path, redis_url: str) -> None:
    shared = {"rate_limit_per_minute": 4, "redis_url": redis_url,
              "redis_prefix": f"echofs-test-{uuid.uuid4().hex[:8]}"}
    async with running_node(tmp_path / "a", **shared) as a, \
            running_node(tmp_path / "b", **shared) as b, \
            aiohttp.ClientSession(base_url=a.url) as http_a, \
            aiohttp.ClientSession(base_url=b.url) as http_b:
        statuses = [await _get(http, "/api/v1/files", "carol")
                    for http in (http_a, http_b, http_a, http_b, http_a)]
        assert statuses == [200, 200, 200, 200, 429]
        assert await _get(http_b, "/api/v1/files", "carol") == 429
