"""What the process-cluster tests share: an HTTP session on the cluster's
master. Each module brings its own ``cluster`` fixture (the settings differ)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def http(cluster) -> AsyncIterator[aiohttp.ClientSession]:  # type: ignore[no-untyped-def]
    # Generous: large uploads on a loaded 2-core machine, workers killed mid-way.
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url=cluster.url, timeout=timeout) as session:
        yield session
