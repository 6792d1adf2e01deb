"""A real Prometheus, started with the shipped ``config/prometheus.yml``
(targets rewritten to a process cluster on loopback, scraping every second),
scrapes every role and answers queries about EchoFS metrics.

Prometheus is a CI prerequisite (``.ci/run`` installs the Debian package):
without it this test fails, it does not skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from echofs.testing.cluster import ProcessCluster
from echofs.testing.process import free_port
from echofs.testing.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "config" / "prometheus.yml"
MIB = 1024 * 1024


def prometheus_binary(name: str = "prometheus") -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: this test needs the Prometheus server. "
                    "Install it with `apt-get install prometheus` (.ci/run does).")
    return path


def test_the_shipped_config_is_valid_for_prometheus():
    done = subprocess.run([prometheus_binary("promtool"), "check", "config", str(SHIPPED)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def scrape_config(cluster: ProcessCluster) -> dict:
    """The shipped config, pointed at this cluster and scraping every second."""
    config = yaml.safe_load(SHIPPED.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"echofs-master", "echofs-controller", "echofs-workers"}
    workers = [w.health_url.removesuffix("/health").removeprefix("http://")  # type: ignore[union-attr]
               for w in cluster.workers.values()]
    jobs["echofs-master"]["static_configs"] = [
        {"targets": [f"127.0.0.1:{cluster.master.port}"]}]
    jobs["echofs-workers"]["static_configs"] = [{"targets": workers}]
    # This cluster runs no controller process; its job would only report down.
    del jobs["echofs-controller"]
    config["scrape_configs"] = list(jobs.values())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    return config


@pytest.fixture
def cluster(tmp_path) -> Iterator[ProcessCluster]:
    with ProcessCluster(tmp_path / "cluster") as c:
        yield c


@pytest.fixture
def prometheus(tmp_path, cluster) -> Iterator[str]:
    binary = prometheus_binary()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(cluster)))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def query(http: aiohttp.ClientSession, promql: str) -> list[dict]:
    async with http.get("/api/v1/query", params={"query": promql}) as resp:
        body = await resp.json()
        assert resp.status == 200 and body["status"] == "success", body
        return body["data"]["result"]


async def test_prometheus_scrapes_every_role_and_answers_queries(cluster, prometheus):
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(base_url=cluster.url, timeout=timeout) as echofs, \
            echofs.put("/api/v1/files/content/scraped.bin", data=os.urandom(2 * MIB)) as resp:
        assert resp.status == 201, await resp.text()

    async with aiohttp.ClientSession(base_url=prometheus, timeout=timeout) as http:
        async def ready() -> bool:
            try:
                async with http.get("/-/ready") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, 30, "Prometheus ready")

        async def every_target_up() -> bool:
            up = await query(http, 'up{job=~"echofs-.*"} == 1')
            return len(up) == 1 + len(cluster.workers)

        await eventually(every_target_up, 30, "master and every worker scraped and up",
                         every=0.5)

        async def uploads_visible() -> bool:
            return bool(await query(http, 'echofs_uploads_total{outcome="ok"}'))

        await eventually(uploads_visible, 30, "the upload counted in Prometheus", every=0.5)
        uploads = await query(http, 'echofs_uploads_total{outcome="ok"}')
        assert [(r["metric"]["job"], float(r["value"][1])) for r in uploads] == [
            ("echofs-master", 1.0)]
        alive = await query(http, 'echofs_workers{job="echofs-master", state="alive"}')
        assert float(alive[0]["value"][1]) == 3
        chunks = await query(http, 'sum(echofs_store_chunks{job="echofs-workers"})')
        assert float(chunks[0]["value"][1]) == 2 * 3  # two chunks, three copies


async def test_prometheus_sees_a_killed_worker_go_down(cluster, prometheus):
    async with aiohttp.ClientSession(base_url=prometheus) as http:
        async def all_up() -> bool:
            try:
                return len(await query(http, 'up{job="echofs-workers"} == 1')) == 3
            except aiohttp.ClientError:
                return False

        await eventually(all_up, 30, "three workers up", every=0.5)
        cluster.kill_worker("w2")

        async def w2_down() -> bool:
            down = await query(http, 'up{job="echofs-workers"} == 0')
            return len(down) == 1

        await eventually(w2_down, 30, "the killed worker scraped as down", every=0.5)
