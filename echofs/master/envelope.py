"""The original EchoFS's answer shapes, given beside ours.

The original answered ``{"success", "message", "data"}`` and its web client
read, for instance, an upload's ``data.file_id``. Our answers keep every
field they had (our clients, the CLI and the web UI read those) and gain the
original's: ``success``, ``message`` and ``data`` with the original's field
names, filled from the same facts. The upload with consistency parameters
(``/api/v1/files/upload/consistency``) also carries the original's
``consistency`` block.
"""

from __future__ import annotations

import time
from typing import Any

from echofs.core.consistency import Mode
from echofs.core.manifest import FileRecord
from echofs.core.names import basename
from echofs.master.file_json import iso
from echofs.master.upload import UploadResult

# The original's names for the modes (its ConsistencyInfo.mode_used).
ORIGINAL_MODE_NAMES = {Mode.STRONG: "C", Mode.AVAILABLE: "A", Mode.HYBRID: "Hybrid"}


def envelope(message: str, data: Any, **ours: Any) -> dict[str, Any]:
    """Our fields (``ours``) with the original's three beside them."""
    return {**ours, "success": True, "message": message, "data": data}


def upload_data(result: UploadResult) -> dict[str, Any]:
    """The original upload answer's ``data``."""
    version = result.version
    return {
        "file_id": result.file.file_id,
        "chunks": version.chunk_count,
        "failed_chunks": 0,  # an upload with a chunk short of its quorum fails whole
        "file_size": version.size,
        "owner_id": result.file.owner,
        "consistency_mode": version.mode,
        "version": version.version,
        "name": basename(result.file.path),
    }


def listed_file(record: FileRecord) -> dict[str, Any]:
    """One entry of the original listing's ``data``."""
    return {"file_id": record.file_id, "name": basename(record.path), "path": record.path,
            "size": record.size, "uploaded": iso(record.created_at), "status": "completed",
            "version": record.current_version}


def consistency_block(result: UploadResult, requested: str, hint: str | None,
                      started: float) -> dict[str, Any]:
    """The original's ``consistency`` block: the mode the bytes were written
    in, the copies every chunk got at least, and how long the write took."""
    mode = Mode(result.version.mode)
    elapsed = time.perf_counter() - started
    return {
        "mode_used": ORIGINAL_MODE_NAMES[mode],
        "mode": mode.value,
        "requested": requested,
        "hint": hint,
        "version": result.version.version,
        "replicas": result.version.replicas_acked,
        "latency": f"{elapsed * 1000:.3f}ms",
        "latency_seconds": round(elapsed, 6),
        "timestamp": iso(result.version.created_at),
    }
