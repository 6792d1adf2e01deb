"""S3 multipart uploads in the metadata store: the S3 side of an upload session.

The session itself (its parts, their chunks, expiry) is
``echofs.metadata.upload_sessions``'; this table adds what S3 names and
keeps: the bucket and key (ListMultipartUploads lists them) and the content
headers and user metadata given at CreateMultipartUpload, which land on the
object when the upload completes. A row goes with its session (ON DELETE
CASCADE), so abort and expiry need nothing from here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select

from echofs.core.upload_sessions import SessionState
from echofs.metadata.models import S3UploadRow, UploadSessionRow
from echofs.metadata.repository import MetadataRepository


@dataclass(frozen=True, slots=True)
class S3Upload:
    upload_id: str
    bucket: str
    key: str
    headers: dict[str, str] = field(default_factory=dict)
    user_meta: dict[str, str] = field(default_factory=dict)
    initiated: float = 0.0


class S3UploadsRepository:
    def __init__(self, repo: MetadataRepository) -> None:
        self._repo = repo

    async def add(self, upload: S3Upload) -> None:
        """Mark the (just created) session ``upload.upload_id`` as an S3 upload."""
        async with self._repo.writing_unmemoized() as session:
            session.add(S3UploadRow(session_id=upload.upload_id, bucket=upload.bucket,
                                    key=upload.key,
                                    headers=json.dumps(upload.headers, sort_keys=True),
                                    user_meta=json.dumps(upload.user_meta, sort_keys=True)))

    async def get(self, upload_id: str) -> S3Upload | None:
        """The S3 upload of that id, open or completed (None: not an S3 upload,
        or its session is gone)."""
        async with self._repo.reading() as session:
            found = (await session.execute(
                select(S3UploadRow, UploadSessionRow.created_at)
                .join(UploadSessionRow, UploadSessionRow.id == S3UploadRow.session_id)
                .where(S3UploadRow.session_id == upload_id))).first()
        return None if found is None else _upload(found[0], found[1])

    async def open_uploads(self, owner: str, bucket: str, prefix: str, key_marker: str,
                           upload_id_marker: str, limit: int) -> list[S3Upload]:
        """Open, unexpired uploads of ``owner`` in ``bucket`` whose key starts
        with ``prefix``, after (key_marker, upload_id_marker), ordered by key
        then upload id; at most ``limit``."""
        query = (select(S3UploadRow, UploadSessionRow.created_at)
                 .join(UploadSessionRow, UploadSessionRow.id == S3UploadRow.session_id)
                 .where(S3UploadRow.bucket == bucket, UploadSessionRow.owner == owner,
                        UploadSessionRow.state == SessionState.OPEN.value,
                        UploadSessionRow.expires_at > time.time()))
        if prefix:
            query = query.where(func.substr(S3UploadRow.key, 1, len(prefix)) == prefix)
        if key_marker:
            after = S3UploadRow.key > key_marker
            if upload_id_marker:
                after = or_(after, and_(S3UploadRow.key == key_marker,
                                        S3UploadRow.session_id > upload_id_marker))
            query = query.where(after)
        query = query.order_by(S3UploadRow.key, S3UploadRow.session_id).limit(limit)
        async with self._repo.reading() as session:
            rows = (await session.execute(query)).all()
        return [_upload(row, created) for row, created in rows]


def _upload(row: S3UploadRow, created: float) -> S3Upload:
    return S3Upload(row.session_id, row.bucket, row.key, json.loads(row.headers),
                    json.loads(row.user_meta), float(created))
