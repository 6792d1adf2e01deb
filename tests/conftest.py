"""Fixtures shared by every layer of the suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from echofs.node import EmbeddedNode
from echofs.observability.logging import configure_logging
from echofs.testing.node import running_node

# Route structlog through the standard library as `echofs serve` does, so
# pytest's log capture sees every server event.
configure_logging("info")


@pytest.fixture
async def node(tmp_path) -> AsyncIterator[EmbeddedNode]:
    async with running_node(tmp_path / "data") as n:
        yield n


@pytest.fixture
async def http(node: EmbeddedNode) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=node.url) as session:
        yield session


