"""``echofs bench chaos``: the original's experiment, run for real.

A cell is one scenario under one consistency policy. Each runs on a real
cluster of processes — master, controller, five workers, RF=3 — with a
fault proxy on every path between the master and each worker
(:class:`~echofs.testing.proxied_cluster.ProxiedCluster`):

- ``normal``: the mixed workload, no fault;
- ``latency``: two workers get +200 ms round trip (100 ms each way) ± 50 ms,
  2 % of segments stalled 200 ms (loss, as a retransmission timeout costs
  it) and 5 % of new connections reset — then healed;
- ``partition``: two workers blackholed in both directions, then healed;
- ``heavy``: the workload at ≥ 100 operations/s, mostly small writes;
- ``flapping``: the link to two workers cut and healed every 2 s for 30 s
  (the controller must not follow it: its mode switches are counted);
- ``slow-disk``: one worker's store takes +200 ms per write (fault injection
  inside the store, :mod:`echofs.worker.stores.delayed`, set only here);
- ``master-kill``: a partition, and the master killed with SIGKILL in its
  middle and restarted: nothing acknowledged lost, its replication queue
  and its mode table recovered;
- ``worker-lost``: one worker killed and its data folder wiped under load,
  restarted empty: the time until every copy it held is back at RF.

Policies: ``fixed-strong`` and ``fixed-available`` (the controller's global
override) and ``adaptive`` (no override: the controller decides per file).

Per cell: latency percentiles of writes and reads, availability, stale-read
share, mode switches, convergence after each heal, and the loss check —
every acknowledged write read back (:func:`~echofs.bench.workload.verify_acknowledged`).
The history checker (:mod:`echofs.bench.history`) judges every read. A lost
or corrupt acknowledged write, or a history violation, fails the run.

This module is the run and its command line. The scenarios, policies and
profiles are in :mod:`echofs.bench.scenarios`; one cell is
:class:`~echofs.bench.cell.Cell`, which calls the master through
:mod:`echofs.bench.probes` and sums its operations up with
:mod:`echofs.bench.summary`; the goals and verdict are judged in
:mod:`echofs.bench.goals` and the report written by :mod:`echofs.bench.report`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from echofs.bench import report
from echofs.bench.cell import Cell
from echofs.bench.machine import machine_facts
from echofs.bench.probes import settle
from echofs.bench.scenarios import (
    CLUSTER_ENV,
    FAULTED,
    FULL,
    LATENCY_FAULT,
    LOST_WORKER,
    PARTITION_FAULT,
    POLICIES,
    QUICK,
    REPLICATION_FACTOR,
    SCENARIOS,
    SLOW_DISK_DELAY_MS,
    SLOW_WORKER,
    WORKERS,
    Profile,
    worker_env,
)
from echofs.bench.workload import KIB, MIB
from echofs.testing.process import ServeProcess
from echofs.testing.proxied_cluster import ProxiedCluster

_START_ATTEMPTS = 3


async def _settles(cluster: ProxiedCluster, within: float) -> bool:
    await cluster.control.heal()
    async with aiohttp.ClientSession(base_url=cluster.url) as http:
        return await settle(http, within)


class BenchCluster(ProxiedCluster):
    """The proxied cluster, where single workers may get settings of their
    own (a scenario's fault injection, :func:`~echofs.bench.scenarios.worker_env`)."""

    def __init__(self, root: Path, *, worker_env: dict[str, dict[str, str]] | None = None,
                 **kwargs: Any) -> None:
        self.worker_env = worker_env or {}
        super().__init__(root, **kwargs)

    def _worker_process(self, worker_id: str) -> ServeProcess:
        process = super()._worker_process(worker_id)
        process.env.update(self.worker_env.get(worker_id, {}))
        return process


async def start_cluster(root: Path, worker_env: dict[str, dict[str, str]] | None = None
                        ) -> ProxiedCluster:
    """A fresh cluster on fresh ports. Ports are picked free and bound a
    moment later by another process; meanwhile any process on the machine
    may take one (an outgoing connection's source port, another server), and
    the cluster then fails to start (``address already in use``) or a probe
    reaches the wrong server. That race is the harness's, not the system's:
    a cluster that does not start is stopped — every process it started —
    and tried again on new ports."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        cluster = BenchCluster(root / f"attempt-{attempt}", workers=WORKERS, env=CLUSTER_ENV,
                               replication_factor=REPLICATION_FACTOR, worker_env=worker_env)
        try:
            await asyncio.to_thread(cluster.start)
            return cluster
        except Exception:
            cluster.stop()
            if attempt == _START_ATTEMPTS:
                raise
        except BaseException:
            cluster.stop()
            raise
    raise AssertionError("unreachable")


async def run_benchmark(profile: Profile, scenarios: list[str], policies: list[str],
                        work_dir: Path, seed: int,
                        progress: Any = print) -> list[dict[str, Any]]:
    cells = [(s, p) for p in policies for s in scenarios]
    results: list[dict[str, Any]] = []
    cluster: ProxiedCluster | None = None
    try:
        for index, (scenario, policy) in enumerate(cells, 1):
            cell = Cell(scenario, policy, profile, index, seed)
            began = time.monotonic()
            replaced = None
            own_env = worker_env(scenario)
            try:
                if cluster is not None and (own_env or getattr(cluster, "worker_env", None)):
                    # A worker with a fault of its own (slow disk) serves
                    # that cell alone: cells before and after get a clean one.
                    cluster.stop()
                    cluster = None
                if cluster is not None and profile.cluster_per == "run" and \
                        not await _settles(cluster, profile.settle_timeout):
                    # The last cell left it unwell (its report says so); this
                    # cell starts on a fresh one rather than inherit that.
                    replaced = "the previous cell's cluster did not settle"
                    cluster.stop()
                    cluster = None
                if cluster is None or profile.cluster_per == "cell":
                    if cluster is not None:
                        cluster.stop()
                        cluster = None
                    cluster = await start_cluster(work_dir / f"cluster-{index:02d}", own_env)
                result = await cell.run(cluster, cluster.control)
                if replaced:
                    result["fresh_cluster_because"] = replaced
            except Exception as exc:  # a cell that could not run is reported, not hidden
                result = {"scenario": scenario, "policy": policy, "error": repr(exc)}
                if cluster is not None:
                    cluster.stop()
                    cluster = None
            result["cell_seconds"] = round(time.monotonic() - began, 1)
            results.append(result)
            progress(f"[{index}/{len(cells)}] {report.progress_line(result)}")
    finally:
        if cluster is not None:
            cluster.stop()
    return results


def profile_from_args(args: argparse.Namespace) -> Profile:
    base = QUICK if args.quick else FULL
    changes = {name: getattr(args, name) for name in (
        "normal", "heavy", "warmup", "fault", "recovery", "cycles", "rate", "clients",
        "heavy_rate", "heavy_clients", "cluster_per", "flapping", "flap_period", "slow_disk",
        "worker_lost") if getattr(args, name, None) is not None}
    return dataclasses.replace(base, **changes)


def _choices(raw: str | None, allowed: tuple[str, ...], what: str) -> list[str]:
    if not raw:
        return list(allowed)
    chosen = [c.strip() for c in raw.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise ValueError(f"unknown {what} {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (defaults left out)."""
    parts = ["echofs", "bench", "chaos"]
    if args.quick:
        parts.append("--quick")
    for name in ("scenarios", "policies", "normal", "heavy", "warmup", "fault", "recovery",
                 "cycles", "rate", "clients", "heavy_rate", "heavy_clients", "cluster_per",
                 "flapping", "flap_period", "slow_disk", "worker_lost"):
        value = getattr(args, name, None)
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", str(value)]
    if args.seed != 1:
        parts += ["--seed", str(args.seed)]
    from echofs.bench import DEFAULT_JSON, DEFAULT_MARKDOWN

    if args.markdown != DEFAULT_MARKDOWN:
        parts += ["--markdown", str(args.markdown)]
    if args.json != DEFAULT_JSON:
        parts += ["--json", str(args.json)]
    return " ".join(parts)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_from_args(args: argparse.Namespace) -> int:
    profile = profile_from_args(args)
    scenarios = _choices(args.scenarios, SCENARIOS, "scenario(s)") if args.scenarios \
        else list(profile.scenarios)
    policies = _choices(args.policies, POLICIES, "policy(ies)")
    command = command_line(args)
    machine = machine_facts()
    cells = len(scenarios) * len(policies)
    print(f"echofs bench chaos: profile {profile.name}, {cells} cell(s) "
          f"({', '.join(scenarios)} x {', '.join(policies)}), "
          f"cluster per {profile.cluster_per}", flush=True)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="echofs-chaos-"))
    began = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so the clusters' processes are stopped too.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        results = asyncio.run(run_benchmark(
            profile, scenarios, policies, work_dir, args.seed,
            progress=lambda line: print(line, flush=True)))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    data = report.build(results, profile=dataclasses.asdict(profile), command=command,
                        machine=machine, env=CLUSTER_ENV, seconds=time.monotonic() - began,
                        faults={"latency": LATENCY_FAULT.to_json(),
                                "partition": PARTITION_FAULT.to_json()},
                        faulted_workers=list(FAULTED), workers=WORKERS,
                        slow_disk={"worker": SLOW_WORKER, "delay_ms": SLOW_DISK_DELAY_MS},
                        lost_worker=LOST_WORKER,
                        replication_factor=REPLICATION_FACTOR,
                        sizes={"small": 4 * KIB, "large": MIB})
    report.write(data, args.markdown, args.json)
    verdict = data["verdict"]
    print(f"report: {args.markdown} and {args.json} ({time.monotonic() - began:.0f} s)")
    for problem in verdict["problems"]:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 0 if verdict["ok"] else 1
