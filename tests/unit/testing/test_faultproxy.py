"""The fault proxy on its own, in front of a local echo server: each fault
has a measurable effect, and heal removes it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from echofs.testing.faultproxy import FaultError, FaultProxy, Faults, ProxyGroup, parse_proxy_spec


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.fixture
async def proxy(echo_port: int) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", echo_port, seed=7) as p:
        yield p


async def connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.listen_port)


async def round_trip(proxy: FaultProxy, payload: bytes, within: float = 10.0) -> float:
    reader, writer = await connect(proxy)
    try:
        started = time.monotonic()
        writer.write(payload)
        await writer.drain()
        got = await asyncio.wait_for(reader.readexactly(len(payload)), within)
        elapsed = time.monotonic() - started
        assert got == payload
        return elapsed
    finally:
        writer.close()


async def test_forwards_bytes_unchanged(proxy):
    payload = os.urandom(3 * 1024 * 1024)
    await round_trip(proxy, payload)
    assert proxy.bytes_forwarded == [len(payload), len(payload)]


async def test_latency_is_added_each_way_and_order_is_kept(proxy):
    base = await round_trip(proxy, b"ping")
    proxy.set_faults(Faults(latency_ms=100, jitter_ms=40))
    slow = await round_trip(proxy, b"ping")
    assert slow >= 0.12 + base  # at least 2 x (100 - 40) ms
    assert slow < 2.0
    # Many small writes with jitter: nothing overtakes anything.
    reader, writer = await connect(proxy)
    messages = [f"{i:05d};".encode() for i in range(200)]
    for message in messages:
        writer.write(message)
        await writer.drain()
        await asyncio.sleep(0.001)
    got = await asyncio.wait_for(reader.readexactly(sum(map(len, messages))), 10)
    assert got == b"".join(messages)
    writer.close()


async def test_stalls_delay_the_unlucky_share(proxy):
    proxy.set_faults(Faults(stall_share=1.0, stall_ms=150))
    assert await round_trip(proxy, b"x") >= 0.29  # one stall each way


async def test_blackhole_hangs_open_and_new_connections_until_heal(proxy):
    reader, writer = await connect(proxy)
    writer.write(b"before")
    assert await asyncio.wait_for(reader.readexactly(6), 5) == b"before"
    proxy.set_faults(Faults(blackhole=True))
    writer.write(b"during")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(6), 0.5)
    # A new connection is accepted but never answered.
    new_reader, new_writer = await connect(proxy)
    new_writer.write(b"hello")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(new_reader.readexactly(5), 0.5)
    proxy.heal()
    # What was held is delivered, as TCP would have retransmitted it.
    assert await asyncio.wait_for(reader.readexactly(6), 5) == b"during"
    assert await asyncio.wait_for(new_reader.readexactly(5), 5) == b"hello"
    writer.close()
    new_writer.close()
    assert await round_trip(proxy, b"after") < 1.0


async def test_stop_while_blackholed_does_not_hang(echo_port):
    proxy = await FaultProxy("127.0.0.1", echo_port).start()
    reader, writer = await connect(proxy)
    writer.write(b"x")
    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
    proxy.set_faults(Faults(blackhole=True))
    held_reader, held_writer = await connect(proxy)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(proxy.stop(), 5)
    for r in (reader, held_reader):
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(r.readexactly(1), 5)
    writer.close()
    held_writer.close()


async def test_bandwidth_cap_limits_throughput(proxy):
    payload = os.urandom(256 * 1024)
    free = await round_trip(proxy, payload)
    proxy.set_faults(Faults(bandwidth=256 * 1024))
    capped = await round_trip(proxy, payload)
    # 256 KiB at 256 KiB/s: about a second (each direction has its own bucket).
    assert capped >= 0.8, capped
    assert capped > 5 * free
    proxy.heal()
    assert await round_trip(proxy, payload) < 0.5


async def test_reset_closes_open_connections(proxy):
    reader, writer = await connect(proxy)
    writer.write(b"hi")
    assert await asyncio.wait_for(reader.readexactly(2), 5) == b"hi"
    assert proxy.reset_connections() == 1
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    writer.close()
    assert await round_trip(proxy, b"again") < 1.0


async def test_reset_share_resets_new_connections(proxy):
    proxy.set_faults(Faults(reset_share=1.0))
    reader, writer = await connect(proxy)
    writer.write(b"hi")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(2), 5)
    writer.close()
    assert proxy.resets == 1
    proxy.set_faults(Faults(reset_share=0.5))
    outcomes = []
    for _ in range(40):
        try:
            await round_trip(proxy, b"x", within=2)
            outcomes.append(True)
        except (ConnectionError, asyncio.IncompleteReadError):
            outcomes.append(False)
    assert 5 <= outcomes.count(False) <= 35


def test_faults_validation():
    assert Faults.from_json({}) == Faults()
    assert Faults.from_json({"latency_ms": 200, "jitter_ms": 50, "bandwidth": None}) == Faults(
        latency_ms=200.0, jitter_ms=50.0)
    for bad in ({"latency_ms": -1}, {"jitter_ms": 10}, {"stall_share": 1.5},
                {"reset_share": "x"}, {"blackhole": 1}, {"bandwidth": 10}, {"delay": 5},
                {"latency_ms": True}, []):
        with pytest.raises(FaultError):
            Faults.from_json(bad)
    assert parse_proxy_spec("w1=19091:127.0.0.1:9091") == ("w1", 19091, "127.0.0.1", 9091)
    for bad in ("w1", "w1=1:2", "=1:h:2", "w1=a:h:2"):
        with pytest.raises(ValueError):
            parse_proxy_spec(bad)


async def test_control_endpoint(echo_port):
    group = ProxyGroup()
    await group.add("a", "127.0.0.1", echo_port)
    await group.add("b", "127.0.0.1", echo_port)
    port = await group.serve_control()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.post("/faults", json={"a": {"blackhole": True},
                                                  "b": {"latency_ms": 50}}) as resp:
                assert resp.status == 200
                body = await resp.json()
            assert body["proxies"]["a"]["faults"]["blackhole"] is True
            assert body["proxies"]["b"]["faults"]["latency_ms"] == 50
            with pytest.raises(TimeoutError):
                await round_trip(group.proxies["a"], b"x", within=0.3)
            async with http.post("/heal", json={"proxies": ["a"]}) as resp:
                assert resp.status == 200
            assert not group.proxies["a"].faults.active
            assert group.proxies["b"].faults.latency_ms == 50
            assert await round_trip(group.proxies["a"], b"x") < 1.0
            async with http.post("/heal") as resp:
                assert resp.status == 200
            assert not group.proxies["b"].faults.active
            async with http.post("/reset") as resp:
                assert (await resp.json())["reset"] >= 0
            for payload, status, code in (
                ({"a": {"latency_ms": -5}}, 400, "invalid_faults"),
                ({"zz": {}}, 404, "unknown_proxy"),
                ({}, 400, "invalid_faults"),
                ([1], 400, "invalid_json"),
            ):
                async with http.post("/faults", json=payload) as resp:
                    assert resp.status == status, payload
                    assert (await resp.json())["error"]["code"] == code
            async with http.post("/faults", data=b"{not json") as resp:
                assert resp.status == 400
            async with http.post("/heal", json={"proxies": "a"}) as resp:
                assert resp.status == 400
            async with http.get("/faults") as resp:
                assert set((await resp.json())["proxies"]) == {"a", "b"}
            async with http.get("/nowhere") as resp:
                assert resp.status == 404
                assert "error" in await resp.json()
    finally:
        await group.stop()
