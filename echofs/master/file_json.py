"""How files, versions and uploads look in the REST API's JSON bodies, and the
opaque cursor that pages a listing (the last path and owner shown)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from echofs.core.errors import BadRequest
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.core.names import basename
from echofs.master.upload import UploadResult


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def file_json(record: FileRecord) -> dict[str, object]:
    return {
        "id": record.file_id, "file_id": record.file_id, "path": record.path,
        "name": basename(record.path), "owner": record.owner, "size": record.size,
        "blake3": record.blake3, "etag": f'"{record.blake3}"', "version": record.current_version,
        "mode": record.mode, "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }


def version_json(version: VersionRecord, current: int | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "version": version.version, "size": version.size, "blake3": version.blake3,
        "etag": version.etag, "chunks": version.chunk_count, "mode": version.mode,
        "replicas_acked": version.replicas_acked, "created_at": iso(version.created_at),
    }
    if current is not None:
        body["current"] = version.version == current
    return body


def upload_json(result: UploadResult) -> dict[str, object]:
    return {
        **file_json(result.file),
        "version": result.version.version, "size": result.version.size,
        "chunks": result.version.chunk_count, "blake3": result.version.blake3,
        "etag": result.version.etag, "mode": result.version.mode,
        "replicas_acked": result.version.replicas_acked,
        "chunks_deduplicated": result.chunks_deduplicated,
        "bytes_deduplicated": result.bytes_deduplicated,
    }


def encode_cursor(record: FileRecord) -> str:
    raw = json.dumps([record.path, record.owner]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        path, owner = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(path, str) or not isinstance(owner, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest("invalid pagination cursor") from None
    return path, owner
