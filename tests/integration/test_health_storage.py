"""Health tells the truth about the embedded node's storage: its workers
share one disk, and deleted data waits out the collector's grace period."""

from __future__ import annotations

import time
from datetime import datetime

import aiohttp

from echofs.testing.node import drain_replication, running_node


async def _storage(http: aiohttp.ClientSession) -> dict:
    async with http.get("/api/v1/health") as resp:
        assert resp.status == 200
        return (await resp.json())["storage"]


async def test_embedded_node_reports_one_disk_and_deleted_bytes_until_reclaimed(tmp_path):
    async with running_node(tmp_path / "d", gc_grace=600.0) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        storage = await _storage(http)
        assert storage["shared_disk"] is True
        assert storage["note"].startswith("3 workers on one disk")
        assert storage["reclaimable"] == {"chunks": 0, "bytes": 0, "grace_seconds": 600.0,
                                          "earliest_at": None, "earliest_in_seconds": None}

        body = b"x" * 300_000
        async with http.put("/api/v1/files/content/gone.bin", data=body) as resp:
            assert resp.status == 201
            file_id = (await resp.json())["file_id"]
        await drain_replication(node)
        deleted_at = time.time()
        async with http.delete(f"/api/v1/files/{file_id}") as resp:
            assert resp.status == 200

        waiting = (await _storage(http))["reclaimable"]
        assert waiting["chunks"] >= 1
        # Three copies of at most the file's bytes (chunks may be compressed).
        assert 0 < waiting["bytes"] <= 3 * len(body)
        assert waiting["bytes"] % 3 == 0
        assert 500 < waiting["earliest_in_seconds"] <= 600
        at = datetime.fromisoformat(waiting["earliest_at"].replace("Z", "+00:00")).timestamp()
        assert deleted_at - 10 + 600 <= at <= time.time() + 600

        # Once the collector has run past the grace period, nothing waits.
        await node.master.collector.run_once(grace=-1.0)
        assert (await _storage(http))["reclaimable"]["bytes"] == 0


async def test_a_master_of_remote_workers_does_not_claim_one_disk(tmp_path):
    from echofs.master.http_health import StorageLayout

    assert StorageLayout().note() is None
    assert StorageLayout(shared_disk=False, local_workers=0).note() is None
