"""``echofs dev cluster``: a master and N workers as separate processes on
loopback, for local work on the real cluster path.

Each member is an ordinary ``echofs serve`` child; their logs are interleaved
on this terminal (each line already names its role and worker id). Ctrl-C or
SIGTERM stops them all with SIGTERM, so each shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path


def member_commands(*, data_dir: Path, workers: int, port: int, grpc_port: int,
                    replication_factor: int) -> list[tuple[str, list[str]]]:
    base = [sys.executable, "-m", "echofs", "serve"]
    commands = [("master", [*base, "--role=master", "--port", str(port),
                            "--grpc-port", str(grpc_port), "--data-dir", str(data_dir / "master"),
                            "--replication-factor", str(replication_factor)])]
    for index in range(1, workers + 1):
        worker_id = f"w{index}"
        commands.append((worker_id, [
            *base, "--role=worker", "--id", worker_id,
            "--store", f"local:{data_dir / 'workers' / worker_id}",
            "--grpc-port", str(grpc_port + index), "--http-port", str(port + 10 + index),
            "--master", f"127.0.0.1:{grpc_port}", "--data-dir", str(data_dir),
        ]))
    return commands


async def _pump(name: str, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        sys.stderr.write(line.decode(errors="replace"))
        sys.stderr.flush()


async def run_cluster(*, data_dir: Path, workers: int, port: int, grpc_port: int,
                      replication_factor: int) -> int:
    if not 1 <= replication_factor <= workers:
        raise ValueError(f"replication factor {replication_factor} needs 1..{workers} workers")
    procs: list[asyncio.subprocess.Process] = []
    pumps: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    for name, command in member_commands(data_dir=data_dir, workers=workers, port=port,
                                         grpc_port=grpc_port,
                                         replication_factor=replication_factor):
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        procs.append(proc)
        assert proc.stdout is not None
        pumps.append(asyncio.create_task(_pump(name, proc.stdout)))
    print(f"echofs dev cluster: master http://127.0.0.1:{port} (gRPC {grpc_port}), "
          f"{workers} workers, RF={replication_factor}, data in {data_dir}; Ctrl-C stops",
          file=sys.stderr)
    exited = asyncio.ensure_future(asyncio.wait(
        [asyncio.ensure_future(p.wait()) for p in procs], return_when=asyncio.FIRST_COMPLETED))
    await asyncio.wait([exited, asyncio.ensure_future(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        elif proc.returncode != 0:
            code = proc.returncode
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
    for pump in pumps:
        pump.cancel()
    return code
