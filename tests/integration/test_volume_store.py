"""The embedded node on volume stores: bit rot in a volume record is found by
the scrubber and repaired by the replicator, and a data folder written in the
one-file-per-chunk layout opens, reads back and converts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from echofs.cli import main
from echofs.core.chunk_codec import decode_chunk
from echofs.core.vocabulary import Verdict
from echofs.testing.disk import stored_copies
from echofs.testing.http import download, upload
from echofs.testing.node import (
    drain_replication,
    flip_chunk_byte,
    running_node,
    stored_frame,
    worker_root,
)
from echofs.worker.stores.local import LocalChunkStore

MIB = 1024 * 1024


async def _chunk_ids(http: aiohttp.ClientSession, file_id: str) -> list[str]:
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        return [c["chunk_id"] for c in (await resp.json())["chunk_list"]]


async def test_scrubber_finds_a_flipped_bit_in_a_volume_and_it_is_repaired(http, node):
    data = os.urandom(3 * MIB)
    file_id = (await upload(http, "rot.bin", data))["file_id"]
    after = (await upload(http, "after.bin", os.urandom(MIB)))["file_id"]  # records behind it
    first = (await _chunk_ids(http, file_id))[0]
    worker = node.workers[1]
    flip_chunk_byte(node, worker.worker_id, first, offset=1000)
    assert await worker.verify_chunk(first) == Verdict.CORRUPT

    report = await node.master.scrubber.scrub_all()
    assert report.bad == 1
    await drain_replication(node)
    assert await worker.verify_chunk(first) == Verdict.OK
    decode_chunk(stored_frame(node, worker.worker_id, first) or b"", first)
    assert (await node.master.scrubber.scrub_all()).bad == 0
    assert await download(http, file_id) == data
    assert len(await download(http, after)) == MIB


async def test_a_data_folder_of_the_old_layout_opens_reads_and_converts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    files = {f"f{i}.bin": os.urandom(size) for i, size in enumerate((0, 1000, 2 * MIB + 7))}
    with monkeypatch.context() as patch:  # a node of the release before volumes
        patch.setattr("echofs.node.VolumeChunkStore", LocalChunkStore)
        async with running_node(data_dir) as node, \
                aiohttp.ClientSession(base_url=node.url) as http:
            ids = {name: (await upload(http, name, body))["file_id"]
                   for name, body in files.items()}
    old = stored_copies(data_dir / "workers" / "w1")
    assert old and not any(c.in_volume for c in old.values())

    async with running_node(data_dir) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        for name, body in files.items():
            assert await download(http, ids[name]) == body
        for worker in node.workers:  # the scrubber's view: every old copy good
            for chunk_id in old:
                assert await worker.verify_chunk(chunk_id) == Verdict.OK
        files["new.bin"] = os.urandom(MIB)
        ids["new.bin"] = (await upload(http, "new.bin", files["new.bin"]))["file_id"]
        roots = [worker_root(node, w.worker_id) for w in node.workers]

    command = ["store", "convert", *map(str, roots), "--no-progress"]
    assert await asyncio.to_thread(main, command) == 0
    for root in roots:
        assert list((root / "chunks").glob("*/*/*")) == []
        assert all(c.in_volume for c in stored_copies(root).values())
    async with running_node(data_dir) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        for name, body in files.items():
            assert await download(http, ids[name]) == body
