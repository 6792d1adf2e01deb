"""The controller's metrics: files per mode, transitions by reason and
partition risk — in the embedded node (which runs a controller) and on a
controller process's own ``/metrics``."""

from __future__ import annotations

import aiohttp

from echofs.testing.cluster import ProcessCluster
from echofs.testing.metrics import scrape
from echofs.testing.node import running_node
from echofs.testing.waiting import eventually


async def test_a_hint_is_a_transition_counted_by_reason_and_mode_counts_follow(tmp_path):
    async with running_node(tmp_path / "data", sample_interval=0.1) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        async with http.put("/api/v1/files/content/h.bin", data=b"hinted") as resp:
            file_id = (await resp.json())["file_id"]
        before = await scrape(f"{node.url}/metrics")
        async with http.post("/api/v1/consistency/hint",
                             json={"object_id": file_id, "hint": "available"}) as resp:
            assert resp.status == 200, await resp.text()
        after = await scrape(f"{node.url}/metrics")
        moved = {"from_mode": "strong", "to_mode": "available", "reason": "hint"}
        assert after.total("echofs_mode_transitions_total", **moved) == before.total(
            "echofs_mode_transitions_total", **moved) + 1
        assert after.value("echofs_files_by_mode", mode="available") == 1
        # No label carries the file.
        assert all(file_id not in v for (_n, ls), _ in after.samples.items() for _k, v in ls)

        async def risk_known() -> bool:
            risk = (await scrape(f"{node.url}/metrics")).value("echofs_partition_risk")
            return risk is not None and 0.0 <= risk <= 1.0

        await eventually(risk_known, 10, "a partition risk sample")


async def test_a_controller_process_serves_its_own_metrics(tmp_path):
    with ProcessCluster(tmp_path, controller=True) as cluster:
        http_port, _grpc = cluster.controller_ports
        controller = await scrape(f"http://127.0.0.1:{http_port}/metrics")
        assert controller.types["echofs_mode_transitions"] == "counter"
        assert controller.types["echofs_files_by_mode"] == "gauge"
        # Masters report to it over gRPC; the calls are counted like any role's.

        async def reports_counted() -> bool:
            scraped = await scrape(f"http://127.0.0.1:{http_port}/metrics")
            return scraped.total("echofs_grpc_requests_total", status="OK") > 0

        await eventually(reports_counted, 15, "the master's gRPC calls to the controller")
        master = await scrape(f"{cluster.url}/metrics")
        # A master does not export the controller's partition risk as its own.
        assert "echofs_partition_risk" not in master.types
