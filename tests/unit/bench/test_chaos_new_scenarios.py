"""The newer chaos scenarios from recorded results to goals and report, with
no cluster: flapping bounded, master-kill recovered, worker-lost back at RF,
linearizability of strong files in the verdict; and the redundancy watch."""

from __future__ import annotations

import time
from typing import Any

import pytest

from echofs.bench import goals as chaos_goals
from echofs.bench import redundancy, report
from echofs.bench.cell import Phase
from echofs.bench.goals_new import GOAL_FLAP_SWITCHES_PER_FILE
from echofs.bench.scenarios import (
    QUICK,
    SLOW_WORKER,
    scenario_faults,
    scenario_window,
    worker_env,
)
from tests.unit.bench.test_chaos_report import cell_result, op


def _flapping(switches_per_file: int) -> dict[str, Any]:
    phases = [Phase("warmup", 0, 1), Phase("fault", 1, 7), Phase("recovery", 7, 9)]
    ops = [op("write", "a", "fault", 1.5, 0.01, version=1, mode="available"),
           op("read", "a", "fault", 2.0, 0.01, version=1, mode="available")]
    modes = ["strong", "available"]
    transitions = [{"at_wall": 1001.0 + i * 0.5, "object_id": "f1", "from": modes[i % 2],
                    "to": modes[(i + 1) % 2], "reason": "emergency" if i % 2 == 0 else "policy"}
                   for i in range(switches_per_file)]
    cell = cell_result("flapping", "adaptive", ops, phases, transitions)
    cell["scenario_detail"] = {"link_flips": 15}
    return cell


def _data(results: list[dict[str, Any]]) -> dict[str, Any]:
    return report.build(results, command="echofs bench chaos", machine={
        "cpus": 2, "cpu_model": "x", "memory_gib": 1.0, "os": "linux", "python": "3.11",
        "load_average_start": [1, 1, 1], "load_average_end": [1, 1, 1], "commit": "abc",
        "date": "2026-01-01T00:00:00Z"}, profile=QUICK.__dict__, env={"A": "1"}, seconds=60,
        faults={"latency": {"latency_ms": 100, "jitter_ms": 25, "stall_share": 0.02,
                            "stall_ms": 200, "reset_share": 0.05},
                "partition": {"blackhole": True}},
        faulted_workers=["w4", "w5"], workers=5, replication_factor=3,
        sizes={"small": 4096, "large": 1 << 20},
        slow_disk={"worker": "w5", "delay_ms": 200}, lost_worker="w5")


def test_the_new_scenarios_fault_and_window():
    assert scenario_faults("flapping") is not None and scenario_faults("master-kill") is not None
    assert scenario_faults("slow-disk") is None and scenario_faults("worker-lost") is None
    assert scenario_window("flapping") == "fault" and scenario_window("worker-lost") == "run"
    # The slow store is injected on one worker, only in its scenario.
    assert worker_env("slow-disk") == {SLOW_WORKER: {"FAULT_STORE_PUT_DELAY_MS": "200"}}
    assert worker_env("partition") == {} and worker_env("normal") == {}


@pytest.mark.parametrize(("switches", "met"), [(GOAL_FLAP_SWITCHES_PER_FILE, True),
                                               (GOAL_FLAP_SWITCHES_PER_FILE + 1, False)])
def test_flapping_switches_per_file_are_bounded(switches, met):
    cell = _flapping(switches)
    assert cell["switches_max_per_file"] == switches
    goal = {g["goal"]: g for g in chaos_goals.goals([cell])}[
        "mode switches per file while a link flaps, adaptive"]
    assert goal["met"] is met
    if not met:
        assert "the controller's moves" in goal["why"]


def test_master_kill_and_worker_lost_goals_and_report():
    phases = [Phase("warmup", 0, 1), Phase("fault", 1, 4), Phase("recovery", 4, 6)]
    ops = [op("write", "a", "fault", 1.5, 0.01, version=1)]
    kill = cell_result("master-kill", "fixed-strong", ops, phases)
    kill["scenario_detail"] = {
        "killed_after_fault_start_s": 1.5, "master_down_s": 1.2,
        "before_kill": {"queue_depth": 15, "default_mode": "strong", "modes": {"strong": 4}},
        "after_restart": {"queue_depth": 15, "default_mode": "strong", "modes": {"strong": 4}},
        "modes_recovered_after_s": 0.02, "modes_recovered": True}
    lost = cell_result("worker-lost", "adaptive", [op("write", "a", "run", 1, 0.01)],
                       [Phase("run", 0, 5)])
    lost["scenario_detail"] = {"lost_worker": "w5", "restarted_empty_after_s": 1.3,
                               "rf_restored": False, "redundancy": {
                                   "chunks_lost": 40, "seconds_to_full_redundancy": None,
                                   "short_at_end": 3, "collected": 2}}
    data = _data([kill, lost])
    goals = {g["goal"]: g for g in data["goals"]}
    assert goals["master killed mid-partition: queue and modes recovered, every policy"][
        "met"] is True
    restored = goals["worker lost for good: RF restored, every policy"]
    assert restored["met"] is False and "3 lost chunk(s) still below RF" in restored["why"]
    text = report.render(data, "chaos.json")
    assert "Master killed 1.50 s into the partition, down 1.20 s" in text
    assert "40 copies lost, all back at RF after not reached" in text
    assert "Linearizability (files strong throughout)" in text


def test_a_strong_file_that_is_not_linearizable_fails_the_verdict():
    phases = [Phase("run", 0, 10)]
    ops = [op("write", "a", "run", 1.0, 0.1, version=1),
           op("write", "a", "run", 2.0, 0.1, version=2),
           # Returns version 1's bytes after version 2 was acknowledged.
           op("read", "a", "run", 3.0, 0.1, version=1)]
    cell = cell_result("normal", "fixed-strong", ops, phases)
    assert cell["linearizability"]["violations"] == ["a"]
    verdict = chaos_goals.verdict([cell])
    assert not verdict["ok"]
    assert any("not shown linearizable" in p for p in verdict["problems"])


def test_files_that_left_strong_are_not_checked_as_registers():
    phases = [Phase("run", 0, 10)]
    ops = [op("write", "a", "run", 1.0, 0.1, version=1, mode="available"),
           op("write", "b", "run", 1.0, 0.1, version=1)]
    cell = cell_result("normal", "adaptive", ops, phases)
    assert cell["linearizability"]["files_checked"] == 1  # b only


def test_shortfall_counts_lost_chunks_below_rf_and_gone():
    holdings = {"w1": {"a", "b", "c"}, "w2": {"a", "b"}, "w3": {"a"}, "w5": set()}
    assert redundancy.shortfall({"a", "b", "c", "z"}, holdings, 3) == (2, 1)


async def test_the_watch_ends_at_full_redundancy():
    stores = {"w1": {"a"}, "w2": {"a"}, "w3": set()}
    calls = []

    async def list_chunks(worker_id: str) -> set[str]:
        calls.append(worker_id)
        if len(calls) == 4:
            stores["w3"] = {"a"}  # the copy lands between two looks
        return set(stores[worker_id])

    result = await redundancy.watch({"a"}, sorted(stores), list_chunks, since=time.time(),
                                    replication_factor=3, until=lambda: False, poll=0)
    assert result.seconds is not None and 0 <= result.seconds < 5
    assert result.looks == 2 and result.short == 0
    assert result.to_json()["chunks_lost"] == 1


async def test_the_watch_gives_up_when_told_and_says_so():
    async def list_chunks(worker_id: str) -> set[str]:
        if worker_id == "w3":
            raise ConnectionError("restarting")
        return {"a"}

    result = await redundancy.watch({"a"}, ["w1", "w2", "w3"], list_chunks, since=0.0,
                                    replication_factor=3, until=lambda: True, poll=0)
    assert result.seconds is None and result.looks == 1
