"""A TCP fault proxy: one listening port forwarding to one upstream address,
with faults that can be changed while connections are open.

The chaos benchmark puts one in front of every worker's gRPC port (the master
reaches the worker through it) and one in front of the master's membership
port for every worker (its heartbeats go through it), so cutting both is a
real partition in both directions.

Faults (:class:`Faults`), all off by default:

- ``latency_ms`` ± ``jitter_ms``: every forwarded segment is delayed, in both
  directions, and order is kept per direction (a segment never overtakes the
  one before it — as on a real link, where jitter reorders nothing in TCP).
- ``stall_share`` / ``stall_ms``: that share of segments is held back
  ``stall_ms`` first (and what follows waits behind it): what a lost segment
  costs TCP, a retransmission timeout.
- ``reset_share``: that share of new connections is reset (RST) right after
  it is accepted; :meth:`FaultProxy.reset_connections` resets the open ones.
- ``bandwidth``: bytes per second per direction, shared by all connections
  (a token bucket), like a link of that capacity.
- ``blackhole``: nothing is forwarded and nothing new gets through: open
  connections hang, new ones are accepted but never answered — as seen from
  either side of a partition, calls time out rather than fail fast. Healing
  releases what was held (TCP would have retransmitted it).

Used in-process (:class:`FaultProxy`, :class:`ProxyGroup`) or as its own
process with a small HTTP control endpoint (this module's :func:`main`)::

    python -m echofs.testing.faultproxy --control-port 7000 \\
        --proxy w1=19091:127.0.0.1:9091 --proxy w2=19092:127.0.0.1:9092

    GET  /faults                  every proxy: listen port, upstream, faults, connections
    POST /faults                  {"w1": {"blackhole": true}, ...}: set those proxies' faults
    POST /heal                    {"proxies": ["w1"]} or no body (all): clear faults
    POST /reset                   {"proxies": ["w1"]} or no body (all): reset open connections

The faults are defined in :mod:`echofs.testing.faults`, applied by
:class:`~echofs.testing.fault_forwarding.FaultProxy`, and controlled over HTTP
by :mod:`echofs.testing.fault_control` (:class:`ProxyGroup` serves the
endpoint, :class:`FaultControl` is its client); their public names are
re-exported here, where the tool is documented.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from echofs.testing.fault_control import FaultControl, ProxyGroup
from echofs.testing.fault_forwarding import FaultProxy
from echofs.testing.faults import FaultError, Faults

__all__ = ["FaultControl", "FaultError", "FaultProxy", "Faults", "ProxyGroup", "main",
           "parse_proxy_spec"]

log = logging.getLogger(__name__)


def parse_proxy_spec(spec: str) -> tuple[str, int, str, int]:
    """``NAME=LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT``."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(":")
    if not sep or not name or len(parts) != 3:
        raise ValueError(f"proxy spec must be NAME=LISTEN_PORT:HOST:PORT, got {spec!r}")
    try:
        return name, int(parts[0]), parts[1], int(parts[2])
    except ValueError:
        raise ValueError(f"ports must be integers in {spec!r}") from None


async def _serve(control_port: int, specs: list[tuple[str, int, str, int]]) -> None:
    group = ProxyGroup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for name, listen, host, port in specs:
            await group.add(name, host, port, listen_port=listen)
        port = await group.serve_control(control_port)
        log.info("fault proxies %s; control on 127.0.0.1:%d", ", ".join(group.proxies), port)
        await stop.wait()
    finally:
        await group.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m echofs.testing.faultproxy",
                                     description="TCP fault proxies with an HTTP control port")
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--proxy", action="append", default=[], metavar="NAME=LISTEN:HOST:PORT")
    args = parser.parse_args(argv)
    try:
        specs = [parse_proxy_spec(s) for s in args.proxy]
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s faultproxy %(message)s")
    asyncio.run(_serve(args.control_port, specs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
