"""Files and versions as readers see them: get, find, list, delete, totals
(the SQL repository's ``echofs.metadata.files``)."""

from __future__ import annotations

from echofs.metadata.dynamodb.base import DynamoBase


class DynamoFiles(DynamoBase):
    pass
