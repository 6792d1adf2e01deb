"""With CLUSTER_TOKEN set, gRPC between roles needs it: members with it work,
a worker without it cannot register, and no one without it touches chunks."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import Unavailable
from echofs.rpc.worker_client import GrpcWorkerClient
from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import download, put_raw
from echofs.testing.process import ServeProcess, free_port

TOKEN = "cluster-secret-for-tests"


async def test_cluster_token_is_required_between_roles(tmp_path):
    with ProcessCluster(tmp_path, env={"CLUSTER_TOKEN": TOKEN}) as cluster:
        async with aiohttp.ClientSession(base_url=cluster.url) as http:
            body = await put_raw(http, "t.bin", os.urandom(100_000))
            assert len(await download(http, body["file_id"])) == 100_000
        http_port = free_port()
        rogue = ServeProcess(
            tmp_path / "rogue", "--role=worker", "--id", "rogue",
            "--store", f"local:{tmp_path / 'rogue-store'}", "--grpc-port", str(free_port()),
            "--http-port", str(http_port), "--master", f"127.0.0.1:{cluster.master_grpc}",
            env={**cluster.env, "CLUSTER_TOKEN": "not-the-token"}, name="rogue",
            health_url=f"http://127.0.0.1:{http_port}/health",
        )
        with rogue:
            await asyncio.sleep(1.5)  # several heartbeats' worth of attempts
            assert "rogue" not in cluster.workers_health()
            assert "unreachable" in rogue.log() or "UNAUTHENTICATED" in rogue.log()
        anonymous = GrpcWorkerClient("w1", f"127.0.0.1:{cluster.worker_grpc['w1']}")
        chunk = encode_chunk(b"sneaky")
        try:
            with pytest.raises(Unavailable, match="UNAUTHENTICATED"):
                await anonymous.put_chunk(chunk.chunk_id, chunk.frame)
            with pytest.raises(Unavailable, match="UNAUTHENTICATED"):
                await anonymous.get_chunk(chunk.chunk_id)
        finally:
            await anonymous.close()
        assert chunk.chunk_id not in await cluster.chunks_on("w1")
