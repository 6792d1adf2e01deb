"""The consistency of the metadata contract on DynamoDB (the SQL repository's
``echofs.metadata.consistency``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.repository import DynamoMetadataRepository


class DynamoConsistency:
    def __init__(self, repo: DynamoMetadataRepository) -> None:
        self._repo = repo
        self._db = repo.db
