"""S3 multipart uploads on DynamoDB (the SQL repository's
``echofs.metadata.s3_uploads``): the S3 side of an upload session, with the
same methods and records.

An S3 upload is its session's item (``sessions`` table, ``S#<id>`` /
``SESSION``) with ``s3_bucket``, ``s3_key``, ``s3_headers`` and
``s3_user_meta`` (JSON text) set, plus a listing item while it is open:

``L#<owner>#<bucket>`` / ``<key>\\0<upload_id>``   ``upload_id``, ``key``,
                                                    ``expires_at``.

The listing item's sort key orders an owner's uploads in a bucket by key
then upload id (UTF-8 bytes, as S3 lists them), so ListMultipartUploads is
one strongly consistent Query from the marker. A key too long for a sort
key is cut with a digest (``long_keys``): keys sharing their first 880
bytes list in the order of their digests among themselves. Both are
written by one transaction conditioned on the session being open; abort, expiry and
completion remove the listing item in the transaction that deletes or
closes the session (``upload_sessions``), so a closed upload is never
listed, and :meth:`DynamoS3Uploads.get` answers as long as the session
exists, open or completed.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from echofs.core.errors import Conflict, NotFound
from echofs.core.upload_sessions import SessionState
from echofs.metadata.dynamodb.base import SESSIONS
from echofs.metadata.dynamodb.connection import encode, transaction_cancelled, value
from echofs.metadata.dynamodb.long_keys import key_prefix, key_text
from echofs.metadata.dynamodb.upload_sessions import (
    listing_key,
    listing_sort_key,
    session_key,
)
from echofs.metadata.s3_uploads import S3Upload

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.repository import DynamoMetadataRepository

# Past any upload id (hex) after a key's NUL: "after this key and all its uploads".
AFTER_KEY = "\x01"


class DynamoS3Uploads:
    def __init__(self, repo: DynamoMetadataRepository) -> None:
        self._repo = repo
        self._db = repo.db
        self._table = self._db.table(SESSIONS)

    async def add(self, upload: S3Upload) -> None:
        """Mark the (just created) session ``upload.upload_id`` as an S3 upload."""
        session = await self._repo.get_upload_session(upload.upload_id)
        pk, sk = session_key(upload.upload_id)
        items: list[dict[str, Any]] = [
            {"Update": {
                "TableName": self._table, "Key": encode({"pk": pk, "sk": sk}),
                "UpdateExpression": "SET s3_bucket = :b, s3_key = :k, s3_headers = :h, "
                                    "s3_user_meta = :m",
                "ConditionExpression": "#s = :open AND attribute_not_exists(s3_bucket)",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {
                    ":b": value(upload.bucket), ":k": value(upload.key),
                    ":h": value(json.dumps(upload.headers, sort_keys=True)),
                    ":m": value(json.dumps(upload.user_meta, sort_keys=True)),
                    ":open": value(SessionState.OPEN.value)}}},
            {"Put": {"TableName": self._table, "Item": encode({
                "pk": listing_key(session.owner, upload.bucket),
                "sk": listing_sort_key(upload.key, upload.upload_id),
                "upload_id": upload.upload_id, "key": upload.key,
                "expires_at": session.expires_at})}},
        ]
        try:
            await self._db.call("transact_write_items", TransactItems=items,
                                ClientRequestToken=uuid.uuid4().hex)
        except Exception as exc:
            if not transaction_cancelled(exc):
                raise
            raise Conflict("this upload session is closed or an S3 upload already",
                           code="session_completed") from None

    async def get(self, upload_id: str) -> S3Upload | None:
        """The S3 upload of that id, open or completed (None: not an S3 upload,
        or its session is gone)."""
        try:
            item = await self._repo._session_item(upload_id)
        except NotFound:
            return None
        if "s3_bucket" not in item:
            return None
        return S3Upload(upload_id, item["s3_bucket"], item["s3_key"],
                        json.loads(item["s3_headers"]), json.loads(item["s3_user_meta"]),
                        float(item["created_at"]))

    async def open_uploads(self, owner: str, bucket: str, prefix: str, key_marker: str,
                           upload_id_marker: str, limit: int) -> list[S3Upload]:
        """Open, unexpired uploads of ``owner`` in ``bucket`` whose key starts
        with ``prefix``, after (key_marker, upload_id_marker), ordered by key
        then upload id; at most ``limit``."""
        if limit <= 0:
            return []
        now = time.time()
        condition = "pk = :pk"
        values = {":pk": value(listing_key(owner, bucket))}
        # Sort keys hold a long key cut (``long_keys``): a prefix longer
        # than that matches every long key sharing its cut prefix, so the
        # key itself is checked too.
        keyed, _ = key_prefix(prefix)
        after = ""
        if key_marker:
            after = (listing_sort_key(key_marker, upload_id_marker) if upload_id_marker
                     else key_text(key_marker) + AFTER_KEY)
        if keyed and keyed > after:
            # Every key with the prefix is past the marker: start at the prefix.
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = value(keyed)
        elif after:
            condition += " AND sk > :after"
            values[":after"] = value(after)
        ids: list[str] = []
        async for item in self._db.query(SESSIONS, KeyConditionExpression=condition,
                                         ExpressionAttributeValues=values):
            if not item["sk"].startswith(keyed):
                if item["sk"] > keyed:
                    break  # past every key with the prefix
                continue
            if not item["key"].startswith(prefix):
                continue
            if float(item["expires_at"]) > now:
                ids.append(item["upload_id"])
                if len(ids) >= limit:
                    break
        found = await self._db.get_many(SESSIONS, [session_key(i) for i in ids])
        uploads: list[S3Upload] = []
        for upload_id in ids:
            item = found.get(session_key(upload_id))
            # The listing item goes with the session's close; a session read
            # gone or closed here was closed since the Query.
            if item is None or item["state"] != SessionState.OPEN.value:
                continue
            uploads.append(S3Upload(upload_id, item["s3_bucket"], item["s3_key"],
                                    json.loads(item["s3_headers"]),
                                    json.loads(item["s3_user_meta"]),
                                    float(item["created_at"])))
        return uploads
