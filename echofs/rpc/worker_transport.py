"""HTTP/2 tuned for the chunk data path (master ↔ worker gRPC).

grpclib keeps HTTP/2's default 16 KiB frames, so a 1 MiB chunk frame crosses
the connection as 64 DATA frames, each a trip through h2's state machine, in
Python, on both ends. The chunk channel and the worker's server advertise a
larger SETTINGS_MAX_FRAME_SIZE, and each peer then sends a chunk in one or two
frames. Flow-control windows stay at grpclib's 4 MiB: larger ones only let a
sender outrun the socket and buffer (copy) what it cannot write yet.

Re-measured for striped, read-ahead downloads (a client fetching 1 MiB
chunks from one worker, 4 and 8 calls in flight, receiver CPU per chunk):
16 KiB frames 2.4 ms, 64 KiB 1.9, 256 KiB 1.75, 1 MiB 1.8, 2 MiB 2.0; and
windows of 1, 4 and 16 MiB made no difference beyond the noise. Below 1 MiB
each frame costs a trip through h2; above, a receiver holds more before it
can parse. What remains is per byte, not per frame: h2 and grpclib copy each
frame's payload several times, and a fresh buffer per copy once cost more
than the copy (see :func:`echofs.memory.keep_freed_buffers`).

h2 also formats every frame it receives for a trace log line, whether or not
anything logs it, and hyperframe formats a DATA frame by copying its payload
and hex-encoding all of it to show the first ten bytes: more CPU than the rest
of receiving it. :func:`_trim_frame_repr` keeps the exact text and does only
the work the text needs.
"""

from __future__ import annotations

import binascii
from typing import Any

import hyperframe.frame
from grpclib.client import Channel
from grpclib.protocol import H2Protocol
from grpclib.server import Server
from h2.connection import H2Connection
from h2.settings import SettingCodes

# A default chunk frame (1 MiB + header) in two DATA frames; h2 allows up to
# 16 MiB, but a receiver buffers a whole frame before it can parse it.
MAX_FRAME_SIZE = 1024 * 1024


class ChunkChannel(Channel):
    """A grpclib channel whose connections accept large HTTP/2 frames."""

    def _protocol_factory(self) -> H2Protocol:
        return _accepting_large_frames(super()._protocol_factory())


class ChunkServer(Server):
    """A grpclib server whose connections accept large HTTP/2 frames."""

    def _protocol_factory(self) -> H2Protocol:
        return _accepting_large_frames(super()._protocol_factory())


def _accepting_large_frames(protocol: H2Protocol) -> H2Protocol:
    made = protocol.connection_made

    def connection_made(transport: Any) -> None:
        made(transport)
        accept_large_frames(protocol.connection._connection)
        protocol.connection.flush()

    protocol.connection_made = connection_made  # type: ignore[method-assign]
    return protocol


def accept_large_frames(connection: H2Connection) -> None:
    """Advertise :data:`MAX_FRAME_SIZE` and accept such frames from now on.

    h2 would start accepting them only when the peer acks the setting, and
    it fixes the limit once per ``receive_data`` call, before the frames of
    that read are handled: a read holding the ack *and* the peer's first
    large frame (a busy connection's first moments) failed with
    FrameTooLargeError, and h2 dropped the whole connection ("Connection
    lost" on every call in flight). Accepting early is safe: the peer may not
    send larger frames than before until it has our setting anyway.
    """
    connection.update_settings({SettingCodes.MAX_FRAME_SIZE: MAX_FRAME_SIZE})
    connection.max_inbound_frame_size = MAX_FRAME_SIZE


_PREFIX_BYTES = 10  # hyperframe shows 20 hex digits


def _trim_frame_repr() -> None:
    frames = hyperframe.frame
    if getattr(frames._raw_data_repr, "trimmed", False):
        return
    padded_body_repr = frames.DataFrame._body_repr

    def raw_data_repr(data: bytes | None) -> str:
        # Same text as hyperframe's: "<hex:" + 20 digits (+ "..." when longer) + ">".
        if not data:
            return "None"
        shown = binascii.hexlify(data[: _PREFIX_BYTES + 1]).decode("ascii")
        if len(shown) > 2 * _PREFIX_BYTES:
            shown = shown[: 2 * _PREFIX_BYTES] + "..."
        return "<hex:" + shown + ">"

    def data_body_repr(frame: hyperframe.frame.DataFrame) -> str:
        # Unpadded, the serialised body hyperframe formats is the data itself.
        if "PADDED" in frame.flags:
            return padded_body_repr(frame)
        return raw_data_repr(frame.data)

    raw_data_repr.trimmed = True  # type: ignore[attr-defined]
    frames._raw_data_repr = raw_data_repr
    frames.DataFrame._body_repr = data_body_repr  # type: ignore[method-assign]


_trim_frame_repr()
