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
- ``heavy``: the workload at ≥ 100 operations/s, mostly small writes.

Policies: ``fixed-strong`` and ``fixed-available`` (the controller's global
override) and ``adaptive`` (no override: the controller decides per file).

Per cell: latency percentiles of writes and reads, availability, stale-read
share, mode switches, convergence after each heal, and the loss check —
every acknowledged write read back (:func:`~echofs.bench.workload.verify_acknowledged`).
The history checker (:mod:`echofs.bench.history`) judges every read. A lost
or corrupt acknowledged write, or a history violation, fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from echofs.bench import history, report
from echofs.bench.workload import KIB, MIB, Op, Workload, WorkloadConfig, verify_acknowledged
from echofs.testing.cluster import FAST_ENV
from echofs.testing.faultproxy import FaultControl, Faults
from echofs.testing.proxied_cluster import ProxiedCluster

SCENARIOS = ("normal", "latency", "partition", "heavy")
POLICIES = ("fixed-strong", "fixed-available", "adaptive")
_OVERRIDE = {"fixed-strong": "strong", "fixed-available": "available", "adaptive": None}

WORKERS = 5
REPLICATION_FACTOR = 3
FAULTED = ("w4", "w5")  # the two workers the latency and partition scenarios hit
LATENCY_FAULT = Faults(latency_ms=100, jitter_ms=25, stall_share=0.02, stall_ms=200,
                       reset_share=0.05)
PARTITION_FAULT = Faults(blackhole=True)

# The test cluster's short timeouts (failure noticed in about a second), but a
# worker is declared dead — its chunks re-homed elsewhere — only after the
# production default of 30 s: a partition of seconds is not a lost machine.
CLUSTER_ENV = {**FAST_ENV, "DEAD_AFTER": "30"}
_POLL = 0.1  # seconds between health polls while measuring convergence
_DECISIONS = ("policy", "emergency")  # transition reasons that are the controller's choice


@dataclass(frozen=True)
class Profile:
    name: str
    normal: float
    heavy: float
    warmup: float
    fault: float
    recovery: float
    cycles: int
    clients: int
    rate: float
    heavy_clients: int
    heavy_rate: float
    small_names: int
    large_names: int
    heavy_small_names: int
    heavy_large_names: int
    cluster_per: str  # cell | run
    # Longest wait for a heal to converge (or the cluster to settle).
    settle_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("normal", "heavy", "fault", "recovery", "rate", "heavy_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.warmup < 0 or self.cycles < 1 or self.clients < 1 or self.heavy_clients < 1:
            raise ValueError("--warmup must be ≥ 0; --cycles and the client counts ≥ 1")


FULL = Profile("full", normal=30, heavy=30, warmup=6, fault=10, recovery=6, cycles=3,
               clients=4, rate=20, heavy_clients=8, heavy_rate=100, small_names=20,
               large_names=4, heavy_small_names=40, heavy_large_names=1, cluster_per="cell")
QUICK = Profile("quick", normal=2.5, heavy=2.5, warmup=1, fault=3, recovery=2, cycles=1,
                clients=3, rate=15, heavy_clients=6, heavy_rate=100, small_names=8,
                large_names=2, heavy_small_names=16, heavy_large_names=1, cluster_per="run",
                settle_timeout=15)


def workload_config(profile: Profile, scenario: str, seed: int) -> WorkloadConfig:
    if scenario == "heavy":
        return WorkloadConfig(clients=profile.heavy_clients, rate=profile.heavy_rate,
                              write_share=0.9, small_names=profile.heavy_small_names,
                              large_names=profile.heavy_large_names, seed=seed)
    return WorkloadConfig(clients=profile.clients, rate=profile.rate, write_share=0.5,
                          small_names=profile.small_names, large_names=profile.large_names,
                          seed=seed)


def scenario_faults(scenario: str) -> Faults | None:
    return {"latency": LATENCY_FAULT, "partition": PARTITION_FAULT}.get(scenario)


# -- talking to the cluster ----------------------------------------------------------


async def _get_json(http: aiohttp.ClientSession, path: str) -> dict[str, Any]:
    # The master answers its health with 503 (and the same JSON) when too few
    # workers are alive: still an answer.
    async with http.get(path) as resp:
        return await resp.json(content_type=None)


async def _expect_ok(resp: aiohttp.ClientResponse) -> None:
    if resp.status != 200:
        raise RuntimeError(f"{resp.method} {resp.url.path}: {resp.status} {await resp.text()}")


async def set_policy(http: aiohttp.ClientSession, policy: str, default_mode: str) -> None:
    """Set the override for ``policy`` and wait until the master applies it."""
    mode = _OVERRIDE[policy]
    if mode is None:
        async with http.delete("/api/v1/consistency/override") as resp:
            await _expect_ok(resp)
    else:
        async with http.post("/api/v1/consistency/override", json={"mode": mode}) as resp:
            await _expect_ok(resp)
    expected = mode or default_mode
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        health = await _get_json(http, "/api/v1/health")
        if health["consistency"]["default_mode"] == expected:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the master did not apply policy {policy} within 15 s")


async def _cluster_state(http: aiohttp.ClientSession) -> tuple[dict[str, str], int, float | None]:
    workers = await _get_json(http, "/api/v1/workers/health")
    health = await _get_json(http, "/api/v1/health")
    queue = health["replication_queue"]
    return ({w["id"]: w["state"] for w in workers["workers"]}, int(queue["depth"]),
            queue["oldest_age_seconds"])


async def _workers_detail(http: aiohttp.ClientSession) -> dict[str, Any]:
    """What the master thinks of each worker (evidence when a heal does not
    converge)."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        rows = (await _get_json(http, "/api/v1/workers/health"))["workers"]
        return {w["id"]: {k: w.get(k) for k in ("state", "seconds_since_heartbeat", "calls",
                                                 "failures", "rtt_ms")} for w in rows}
    return {}


async def measure_convergence(http: aiohttp.ClientSession, since: float,
                              workers: Iterable[str], within: float) -> dict[str, Any]:
    """Seconds from ``since`` (wall clock: a heal, or the end of the load)
    until the cluster is whole again: the named workers alive as the master
    sees them, and every replication task that existed at ``since`` done."""
    workers = list(workers)
    depth_at_start: int | None = None
    alive_after: float | None = None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            states, depth, oldest_age = await _cluster_state(http)
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
            await asyncio.sleep(_POLL)
            continue
        now = time.time()
        if depth_at_start is None:
            depth_at_start = depth
        alive = all(states.get(w) == "alive" for w in workers)
        if alive and alive_after is None:
            alive_after = now - since
        # Tasks are removed when done and keep their creation time when
        # retried: the oldest one younger than `since` means the backlog of
        # that moment is gone.
        backlog_gone = depth == 0 or (oldest_age is not None and now - oldest_age > since)
        if alive and backlog_gone:
            return {"seconds": round(now - since, 3), "workers_alive_after":
                    round(alive_after if alive_after is not None else now - since, 3),
                    "queue_depth_at_start": depth_at_start}
        await asyncio.sleep(_POLL)
    health = await _get_json(http, "/api/v1/health")
    return {"seconds": None, "workers_alive_after": _round(alive_after, 3),
            "queue_depth_at_start": depth_at_start,
            "queue_depth_at_end": health["replication_queue"]["depth"],
            "oldest_task_age_at_end": health["replication_queue"]["oldest_age_seconds"],
            "workers_at_end": await _workers_detail(http)}


async def settle(http: aiohttp.ClientSession, within: float) -> bool:
    """Wait until every worker is alive and the replication queue is empty."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
            states, depth, _ = await _cluster_state(http)
            if len(states) == WORKERS and all(s == "alive" for s in states.values()) \
                    and depth == 0:
                return True
        await asyncio.sleep(_POLL)
    return False


async def fetch_transitions(http: aiohttp.ClientSession, file_ids: set[str],
                            since: float) -> list[dict[str, Any]]:
    """Mode transitions of these files at or after ``since`` (wall clock),
    oldest first, paging back through the audit log."""
    found: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        params = {"limit": "1000", **({"before": str(before)} if before is not None else {})}
        async with http.get("/api/v1/consistency/transitions", params=params) as resp:
            await _expect_ok(resp)
            rows = (await resp.json())["transitions"]
        for row in rows:
            at = datetime.fromisoformat(row["at"]).timestamp()
            if at >= since and row["object_id"] in file_ids:
                found.append({**row, "at_wall": at})
        if len(rows) < 1000 or not rows:
            break
        if datetime.fromisoformat(rows[-1]["at"]).timestamp() < since:
            break
        before = min(int(r["id"]) for r in rows)
    return sorted(found, key=lambda r: r["at_wall"])


# -- statistics ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every value reported was
    measured)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def latency_summary(ops: list[Op]) -> dict[str, Any]:
    ms = [o.latency * 1000 for o in ops if o.ok]
    return {"n": len(ms), **{f"p{q}": _round(percentile(ms, q)) for q in (50, 95, 99)},
            "max": _round(max(ms) if ms else None)}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summarize(ops: list[Op], stale: set[tuple[str, float]], seconds: float) -> dict[str, Any]:
    writes = [o for o in ops if o.kind == "write"]
    reads = [o for o in ops if o.kind == "read"]
    ok_reads = [o for o in reads if o.ok]
    stale_reads = sum(1 for o in ok_reads if (o.name, o.started) in stale)
    succeeded = sum(1 for o in ops if o.ok)
    return {
        "ops": len(ops), "succeeded": succeeded,
        "ops_per_second": _round(len(ops) / seconds if seconds > 0 else None),
        # Operations that succeeded, per second of the window: what the
        # cluster delivered of the offered rate.
        "succeeded_per_second": _round(succeeded / seconds if seconds > 0 else None),
        "availability_pct": round(100 * succeeded / len(ops), 3) if ops else None,
        "writes": len(writes), "writes_succeeded": sum(1 for o in writes if o.ok),
        "reads": len(reads), "reads_succeeded": len(ok_reads),
        "write_latency_ms": latency_summary(writes),
        "read_latency_ms": latency_summary(reads),
        "latency_ms": latency_summary(ops),
        "stale_reads": stale_reads,
        "flagged_stale_reads": sum(1 for o in ok_reads if o.stale),
        "stale_read_pct": round(100 * stale_reads / len(ok_reads), 3) if ok_reads else None,
        "failures": dict(Counter(f"{o.kind}: {o.error}" for o in ops if not o.ok)),
    }


# -- one cell --------------------------------------------------------------------------


@dataclass
class Phase:
    name: str  # warmup | fault | recovery | run
    started: float  # workload clock
    ended: float = 0.0


class Cell:
    def __init__(self, scenario: str, policy: str, profile: Profile, index: int,
                 seed: int) -> None:
        self.scenario = scenario
        self.policy = policy
        self.profile = profile
        self.index = index
        self.seed = seed
        self.phases: list[Phase] = []
        self.convergence: list[dict[str, Any]] = []

    async def run(self, cluster: ProxiedCluster, control: FaultControl) -> dict[str, Any]:
        started_wall = time.time()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(base_url=cluster.url, connector=connector) as http:
            await control.heal()
            if not await settle(http, self.profile.settle_timeout):
                raise RuntimeError("the cluster did not settle before the cell")
            await set_policy(http, self.policy, cluster.env.get("DEFAULT_MODE", "strong"))
            config = workload_config(self.profile, self.scenario, self.seed + self.index)
            workload = Workload(http, config, prefix=f"c{self.index:02d}-{self.scenario}-"
                                                     f"{self.policy}")
            await workload.seed()
            server_before = await _get_json(http, "/api/v1/health")
            workload.start()
            try:
                await self._drive(http, control, workload)
            finally:
                await workload.stop()
                await control.heal()
            load_ended = workload.now()
            if scenario_faults(self.scenario) is None:
                # No heal to converge from: how long the load's backlog takes to drain.
                self.convergence.append(await measure_convergence(
                    http, workload.wall(load_ended), [], self.profile.settle_timeout))
            settled = await settle(http, self.profile.settle_timeout)
            loss = await verify_acknowledged(
                http, workload.ops, versions_kept=int(cluster.env.get("VERSIONS_KEPT", "5")))
            transitions = await fetch_transitions(http, set(workload.file_ids.values()),
                                                  started_wall)
            server_after = await _get_json(http, "/api/v1/health")
        return self._result(workload, loss, transitions, settled, server_before, server_after,
                            started_wall, load_ended)

    async def _drive(self, http: aiohttp.ClientSession, control: FaultControl,
                     workload: Workload) -> None:
        p = self.profile
        faults = scenario_faults(self.scenario)
        if faults is None:
            await self._phase(workload, "run", p.heavy if self.scenario == "heavy" else p.normal)
            return
        await self._phase(workload, "warmup", p.warmup)
        names = ProxiedCluster.proxy_names(FAULTED)
        for _ in range(p.cycles):
            await control.set(dict.fromkeys(names, faults))
            await self._phase(workload, "fault", p.fault)
            await control.heal(names)
            healed = time.time()
            measuring = asyncio.create_task(measure_convergence(
                http, healed, FAULTED, p.settle_timeout))
            await self._phase(workload, "recovery", p.recovery)
            # A slow convergence holds the next fault back: each heal is
            # measured whole.
            self.convergence.append(await measuring)

    async def _phase(self, workload: Workload, name: str, seconds: float) -> None:
        if self.phases:
            self.phases[-1].ended = workload.now()
        workload.phase = name
        self.phases.append(Phase(name, workload.now()))
        await asyncio.sleep(seconds)
        self.phases[-1].ended = workload.now()

    def _window(self) -> str:
        return "fault" if scenario_faults(self.scenario) is not None else "run"

    def _result(self, workload: Workload, loss: Any, transitions: list[dict[str, Any]],
                settled: bool, server_before: dict[str, Any], server_after: dict[str, Any],
                started_wall: float, load_ended: float) -> dict[str, Any]:
        writes, reads = workload.history()
        checked = history.check(writes, reads)
        stale = {(r.name, r.started) for r in checked.stale}
        window = self._window()
        window_ops = [o for o in workload.ops if o.phase == window]
        window_seconds = sum(p.ended - p.started for p in self.phases if p.name == window)
        run_ops = [o for o in workload.ops if o.phase != "seed"]
        run_seconds = sum(p.ended - p.started for p in self.phases)
        fault_starts = [p.started for p in self.phases if p.name == "fault"]
        seconds = [c["seconds"] for c in self.convergence]
        # A heal that never converged (within the settle timeout) counts as
        # infinitely slow: it is not left out of the median.
        ordered = [math.inf if s is None else s for s in seconds]
        median = statistics.median(ordered) if ordered else math.inf
        wall_zero = workload.wall_zero
        every = [{"at": round(t["at_wall"] - wall_zero, 3), "object_id": t["object_id"],
                  "from": t["from"], "to": t["to"], "reason": t["reason"]}
                 for t in transitions]
        # The controller's own decisions. A lever's entries (the override
        # recorded for each new file it meets) are operators' choices, not
        # switches; they stay in the JSON.
        switches = [t for t in every if t["reason"] in _DECISIONS]
        fault_windows = [(p.started, p.ended) for p in self.phases if p.name == "fault"]
        left_strong = sorted({s["object_id"] for s in switches if s["from"] == "strong"
                              and s["to"] != "strong"
                              and any(a <= s["at"] <= b for a, b in fault_windows)})
        first_leave = [min((s["at"] - a for s in switches if a <= s["at"] <= b
                            and s["from"] == "strong" and s["to"] != "strong"), default=None)
                       for a, b in fault_windows]
        return {
            "scenario": self.scenario, "policy": self.policy, "window": window,
            "started_at": datetime.fromtimestamp(started_wall, UTC).isoformat(
                timespec="seconds").replace("+00:00", "Z"),
            "phases": [dataclasses.asdict(p) for p in self.phases],
            "workload": dataclasses.asdict(workload.config),
            "in_window": summarize(window_ops, stale, window_seconds),
            "whole_run": summarize(run_ops, stale, run_seconds),
            "seed_writes": sum(1 for o in workload.ops if o.phase == "seed"),
            "mode_switches": len(switches),
            "files_left_strong_during_fault": len(left_strong),
            "first_leave_strong_after_fault_s": [_round(s, 3) for s in first_leave],
            "lever_transitions": len(every) - len(switches),
            "transitions": every[:200],
            "convergence": self.convergence,
            "convergence_median_s": None if math.isinf(median) else _round(median, 3),
            "convergence_max_s": None if not ordered or math.isinf(max(ordered))
            else _round(max(ordered), 3),
            "convergence_unmeasured": sum(1 for s in seconds if s is None),
            "convergence_wait_s": self.profile.settle_timeout,
            "loss": loss.to_json(),
            "acked_writes_lost": len(loss.lost),
            "history": {
                "reads_checked": checked.reads, "writes_acked": checked.writes_acked,
                "stale_reads": len(checked.stale), "flagged": checked.flagged,
                "violations": len(checked.violations),
                "violations_by_kind": dict(Counter(v.kind for v in checked.violations)),
                "examples": [dataclasses.asdict(v) for v in checked.violations[:20]],
            },
            "slow_writes_near_fault_start": _slow_near(workload.ops, fault_starts),
            "failures_timeline": [
                {"at": round(o.started, 3), "kind": o.kind, "phase": o.phase,
                 "error": o.error, "latency_s": round(o.latency, 3),
                 "after_fault_start_s": _since_fault(o.started, fault_starts)}
                for o in workload.ops if not o.ok][:100],
            "settled_after": settled,
            "server_stale_reads": int(server_after["consistency"]["stale_reads"])
            - int(server_before["consistency"]["stale_reads"]),
            "load_seconds": round(load_ended, 3),
        }


def _since_fault(at: float, fault_starts: list[float]) -> float | None:
    before = [at - s for s in fault_starts if s <= at]
    return round(min(before), 3) if before else None


def _slow_near(ops: list[Op], fault_starts: list[float]) -> list[dict[str, Any]]:
    """The ten slowest successful writes, with when they began relative to the
    latest fault start (explains a p95: in flight when the fault hit?)."""
    writes = sorted((o for o in ops if o.kind == "write" and o.ok and o.phase != "seed"),
                    key=lambda o: o.latency, reverse=True)[:10]
    return [{"latency_ms": round(o.latency * 1000, 1), "phase": o.phase,
             "after_fault_start_s": _since_fault(o.started, fault_starts),
             "mode": o.mode, "size": o.size} for o in writes]


# -- the run ---------------------------------------------------------------------------


_START_ATTEMPTS = 3


async def _settles(cluster: ProxiedCluster, within: float) -> bool:
    await cluster.control.heal()
    async with aiohttp.ClientSession(base_url=cluster.url) as http:
        return await settle(http, within)


async def start_cluster(root: Path) -> ProxiedCluster:
    """A fresh cluster on fresh ports. Ports are picked free and bound a
    moment later by another process; meanwhile any outgoing connection on the
    machine may take one as its source port. That race (``address already in
    use``) is the harness's, not the system's: it is retried on new ports."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        cluster = ProxiedCluster(root / f"attempt-{attempt}", workers=WORKERS, env=CLUSTER_ENV,
                                 replication_factor=REPLICATION_FACTOR)
        try:
            await asyncio.to_thread(cluster.start)
            return cluster
        except (RuntimeError, TimeoutError) as exc:
            cluster.stop()
            if "address already in use" not in str(exc) or attempt == _START_ATTEMPTS:
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
            try:
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
                    cluster = await start_cluster(work_dir / f"cluster-{index:02d}")
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
        "heavy_rate", "heavy_clients", "cluster_per") if getattr(args, name, None) is not None}
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
                 "cycles", "rate", "clients", "heavy_rate", "heavy_clients", "cluster_per"):
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
    scenarios = _choices(args.scenarios, SCENARIOS, "scenario(s)")
    policies = _choices(args.policies, POLICIES, "policy(ies)")
    command = command_line(args)
    machine = report.machine_facts()
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
                        replication_factor=REPLICATION_FACTOR,
                        sizes={"small": 4 * KIB, "large": MIB})
    report.write(data, args.markdown, args.json)
    verdict = data["verdict"]
    print(f"report: {args.markdown} and {args.json} ({time.monotonic() - began:.0f} s)")
    for problem in verdict["problems"]:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 0 if verdict["ok"] else 1
