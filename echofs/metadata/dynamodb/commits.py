"""Publishing finished uploads as new versions (``commit_versions``,
``claim_and_commit``; the SQL repository's ``echofs.metadata.commits``)."""

from __future__ import annotations

from echofs.metadata.dynamodb.base import DynamoBase


class DynamoCommits(DynamoBase):
    pass
