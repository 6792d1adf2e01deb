"""The chunk data path's HTTP/2 tuning: large frames both ways, and frame
formatting that no longer hex-encodes whole payloads."""

from __future__ import annotations

import binascii
import os

import hyperframe.frame
import pytest
from grpclib.protocol import H2Protocol
from h2.config import H2Configuration
from h2.connection import H2Connection

from echofs.core.chunk_codec import encode_chunk
from echofs.rpc import worker_transport
from echofs.rpc.worker_client import GrpcWorkerClient
from echofs.rpc.worker_server import WorkerGrpcService
from echofs.rpc.worker_transport import MAX_FRAME_SIZE, ChunkServer, accept_large_frames
from echofs.testing.process import free_port
from echofs.worker.service import WorkerService
from echofs.worker.stores.local import LocalChunkStore


def _hyperframe_text(data: bytes) -> str:
    # hyperframe's own formatting, spelled out.
    if not data:
        return "None"
    r = binascii.hexlify(data).decode("ascii")
    if len(r) > 20:
        r = r[:20] + "..."
    return "<hex:" + r + ">"


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 12, 1000, 1 << 20])
def test_frame_text_is_unchanged(size: int) -> None:
    data = os.urandom(size)
    assert hyperframe.frame._raw_data_repr(data) == _hyperframe_text(data)
    frame = hyperframe.frame.DataFrame(1, data)
    assert repr(frame) == f"DataFrame(stream_id=1, flags=[]): {_hyperframe_text(data)}"


def test_padded_frame_text_is_unchanged() -> None:
    frame = hyperframe.frame.DataFrame(1, b"payload", flags=["PADDED"])
    frame.pad_length = 3
    assert repr(frame).endswith(_hyperframe_text(frame.serialize_body()))


def test_trimming_twice_is_harmless() -> None:
    trimmed = hyperframe.frame._raw_data_repr
    worker_transport._trim_frame_repr()
    assert hyperframe.frame._raw_data_repr is trimmed


class _RecordingServer(ChunkServer):
    def _protocol_factory(self) -> H2Protocol:
        protocol = super()._protocol_factory()
        self.protocols.append(protocol)
        return protocol


async def test_both_ends_send_large_frames(tmp_path) -> None:
    service = WorkerService("w1", LocalChunkStore(tmp_path / "store"))
    await service.open()
    server = _RecordingServer([WorkerGrpcService(service)])
    server.protocols = []
    port = free_port()
    await server.start("127.0.0.1", port)
    client = GrpcWorkerClient("w1", f"127.0.0.1:{port}")
    try:
        chunk = encode_chunk(os.urandom(3 << 20))
        await client.put_chunk(chunk.chunk_id, chunk.frame)
        assert await client.get_chunk(chunk.chunk_id) == chunk.frame
        h2_client = client._channel._protocol.connection._connection
        assert h2_client.max_outbound_frame_size == MAX_FRAME_SIZE
        assert h2_client.max_inbound_frame_size == MAX_FRAME_SIZE
        (protocol,) = server.protocols
        h2_server = protocol.connection._connection
        assert h2_server.max_outbound_frame_size == MAX_FRAME_SIZE
        assert h2_server.max_inbound_frame_size == MAX_FRAME_SIZE
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
        await service.close()


def test_a_large_frame_right_behind_the_settings_ack_is_accepted() -> None:
    # The first moments of a busy connection: the peer acks our larger
    # frame size and sends its first large frame, and both arrive in one read.
    # (Advertising the size alone, h2 refuses that frame as overlong.)
    server = H2Connection(H2Configuration(client_side=False))
    client = H2Connection(H2Configuration(client_side=True))
    server.initiate_connection()
    accept_large_frames(server)
    client.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())  # client now sends large frames
    client.send_headers(1, [(":method", "POST"), (":path", "/p"), (":scheme", "http"),
                            (":authority", "w")])
    client.send_data(1, os.urandom(60_000))
    read = client.data_to_send()  # the settings ack, the headers, one 60 kB frame
    events = server.receive_data(read)
    assert sum(len(getattr(e, "data", b"")) for e in events) == 60_000
