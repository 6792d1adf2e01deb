"""Durable intents to copy a chunk to a worker (the SQL repository's
``echofs.metadata.replication_queue``)."""

from __future__ import annotations

from echofs.metadata.dynamodb.base import DynamoBase


class DynamoReplicationQueue(DynamoBase):
    pass
