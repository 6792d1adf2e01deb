"""Garbage collection's claims on unreferenced chunks (the SQL
repository's ``echofs.metadata.collection``)."""

from __future__ import annotations

from echofs.metadata.dynamodb.base import DynamoBase


class DynamoCollection(DynamoBase):
    pass
