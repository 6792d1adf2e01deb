"""Fixtures of the DynamoDB engine's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from echofs.metadata import backends
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository


@pytest.fixture
async def two_masters(fresh_dynamodb_url: str
                      ) -> AsyncIterator[tuple[DynamoMetadataRepository, ...]]:
    await backends.prepare(fresh_dynamodb_url, migrate=True)
    repos = tuple(backends.open_metadata(fresh_dynamodb_url) for _ in range(2))
    try:
        yield repos  # type: ignore[misc]
    finally:
        for repo in repos:
            await repo.close()
