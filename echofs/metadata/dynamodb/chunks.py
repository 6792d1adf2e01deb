"""Claims, touches and where copies live (the SQL repository's
``echofs.metadata.chunks``)."""

from __future__ import annotations

from echofs.metadata.dynamodb.base import DynamoBase


class DynamoChunks(DynamoBase):
    pass
