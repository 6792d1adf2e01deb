"""Resumable upload sessions and their parts (the SQL repository's
``echofs.metadata.upload_sessions``)."""

from __future__ import annotations

from echofs.metadata.dynamodb.base import DynamoBase


class DynamoUploadSessions(DynamoBase):
    pass
