"""One cell of the chaos benchmark: a scenario under a policy, run on a cluster.

The cell settles the cluster, sets its policy, seeds and starts the workload,
drives the scenario's phases (warm-up, fault, heal, recovery — or one fault-free
run), then measures convergence, checks every acknowledged write
(:func:`~echofs.bench.workload.verify_acknowledged`) and every read
(:mod:`echofs.bench.history`), checks the files that stayed strong for the
whole cell for linearizability (:mod:`echofs.bench.linearizability`), and
returns its result as JSON-ready data.

The scenarios beyond one fault and its heal are driven by
:mod:`echofs.bench.drivers` (flapping link, master killed mid-partition,
worker lost); slow-disk is a plain run on a cluster whose one worker has a
slow store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from echofs.bench import drivers, history, linearizability
from echofs.bench.probes import fetch_transitions, get_json, measure_convergence, set_policy, settle
from echofs.bench.scenarios import (
    FAULTED,
    Profile,
    scenario_faults,
    scenario_window,
    workload_config,
)
from echofs.bench.summary import rounded, summarize
from echofs.bench.workload import Op, Workload, verify_acknowledged
from echofs.core.consistency import Mode
from echofs.testing.fault_control import FaultControl
from echofs.testing.proxied_cluster import ProxiedCluster

_DECISIONS = ("policy", "emergency")  # transition reasons that are the controller's choice


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
        # What a scenario's driver measured beyond the common figures.
        self.extra: dict[str, Any] = {}

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
            server_before = await get_json(http, "/api/v1/health")
            workload.start()
            try:
                await self._drive(http, cluster, control, workload)
            finally:
                await workload.stop()
                await control.heal()
            load_ended = workload.now()
            await drivers.finish_worker_lost(self)
            if scenario_window(self.scenario) == "run" and self.scenario != "worker-lost":
                # No heal to converge from: how long the load's backlog takes to drain.
                self.convergence.append(await measure_convergence(
                    http, workload.wall(load_ended), [], self.profile.settle_timeout))
            settled = await settle(http, self.profile.settle_timeout)
            loss = await verify_acknowledged(
                http, workload.ops, versions_kept=int(cluster.env.get("VERSIONS_KEPT", "5")))
            transitions = await fetch_transitions(http, set(workload.file_ids.values()),
                                                  started_wall)
            server_after = await get_json(http, "/api/v1/health")
        return self._result(workload, loss, transitions, settled, server_before, server_after,
                            started_wall, load_ended)

    async def _drive(self, http: aiohttp.ClientSession, cluster: ProxiedCluster,
                     control: FaultControl, workload: Workload) -> None:
        p = self.profile
        if self.scenario == "flapping":
            await drivers.flapping(self, http, control, workload)
            return
        if self.scenario == "master-kill":
            await drivers.master_kill(self, http, cluster, control, workload)
            return
        if self.scenario == "worker-lost":
            await drivers.worker_lost(self, cluster, workload)
            return
        faults = scenario_faults(self.scenario)
        if faults is None:
            seconds = {"heavy": p.heavy, "slow-disk": p.slow_disk}.get(self.scenario, p.normal)
            await self._phase(workload, "run", seconds)
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
        self.begin_phase(workload, name)
        await asyncio.sleep(seconds)
        self.phases[-1].ended = workload.now()

    def begin_phase(self, workload: Workload, name: str) -> None:
        """Start a phase whose length the caller decides (end it with the
        next phase, or set ``phases[-1].ended``)."""
        if self.phases:
            self.phases[-1].ended = workload.now()
        workload.phase = name
        self.phases.append(Phase(name, workload.now()))

    def _window(self) -> str:
        return scenario_window(self.scenario)

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
        left_strong = sorted({s["object_id"] for s in switches if s["from"] == Mode.STRONG
                              and s["to"] != Mode.STRONG
                              and any(a <= s["at"] <= b for a, b in fault_windows)})
        first_leave = [min((s["at"] - a for s in switches if a <= s["at"] <= b
                            and s["from"] == Mode.STRONG and s["to"] != Mode.STRONG), default=None)
                       for a, b in fault_windows]
        per_file = Counter(s["object_id"] for s in switches)
        down = self.extra.get("down_window")
        if down is not None:
            # The only master was down: what the window looks like without
            # the operations that had nobody to answer them.
            self.extra["in_window_master_up"] = summarize(
                [o for o in window_ops if not down[0] <= o.started <= down[1]], stale,
                window_seconds - (down[1] - down[0]))
        strong = _strong_throughout(workload, every)
        linear = linearizability.check_files(writes, reads, strong)
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
            "first_leave_strong_after_fault_s": [rounded(s, 3) for s in first_leave],
            "lever_transitions": len(every) - len(switches),
            "transitions": every[:200],
            "convergence": self.convergence,
            "convergence_median_s": None if math.isinf(median) else rounded(median, 3),
            "convergence_max_s": None if not ordered or math.isinf(max(ordered))
            else rounded(max(ordered), 3),
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
            "switches_max_per_file": max(per_file.values(), default=0),
            "files_switched": len(per_file),
            "linearizability": linear.to_json(),
            "scenario_detail": self.extra,
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


def _strong_throughout(workload: Workload, transitions: list[dict[str, Any]]) -> list[str]:
    """Names that were strong for the whole cell: every answer the master
    gave for them said strong, and the controller moved none of them to
    another mode (a lever's entry to strong is no move)."""
    moved = {t["object_id"] for t in transitions if t["to"] != Mode.STRONG}
    modes: dict[str, set[str]] = {}
    for op in workload.ops:
        if op.mode:
            modes.setdefault(op.name, set()).add(op.mode)
    return sorted(name for name, seen in modes.items()
                  if seen == {Mode.STRONG.value}
                  and workload.file_ids.get(name) not in moved)


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
