"""From recorded operations to the report, with no cluster: statistics per
window, goals judged with their evidence, the verdict, and the Markdown."""

from __future__ import annotations

from typing import Any

from echofs.bench import goals as chaos_goals
from echofs.bench import report
from echofs.bench.cell import Cell, Phase
from echofs.bench.scenarios import QUICK
from echofs.bench.summary import percentile
from echofs.bench.workload import LossReport, Op, Workload, WorkloadConfig


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def op(kind: str, name: str, phase: str, started: float, latency: float, *, ok: bool = True,
       version: int = 1, error: str | None = None, stale: bool = False,
       mode: str = "strong") -> Op:
    return Op(kind, name, 4096, phase, started, started + latency, ok, 200 if ok else 503,
              error, version if ok else None, mode, stale, f"d-{name}-{version}", "f1")


def cell_result(scenario: str, policy: str, ops: list[Op], phases: list[Phase],
                transitions: list[dict[str, Any]] | None = None,
                lost: list[dict[str, Any]] | None = None,
                converged: tuple[float | None, ...] = (0.4,)) -> dict[str, Any]:
    cell = Cell(scenario, policy, QUICK, 1, 1)
    cell.phases = phases
    cell.convergence = [{"seconds": s, "workers_alive_after": 0.3, "queue_depth_at_start": 2,
                         **({} if s is not None else {
                             "queue_depth_at_end": 1, "workers_at_end": {"w4": {
                                 "state": "suspect", "failures": 7,
                                 "seconds_since_heartbeat": 0.1}}})}
                        for s in converged]
    workload = Workload(None, WorkloadConfig(), "p")  # type: ignore[arg-type]
    workload.ops = ops
    workload.wall_zero = 1000.0
    loss = LossReport(acknowledged=sum(1 for o in ops if o.kind == "write" and o.ok),
                      verified=1, lost=lost or [])
    health = {"consistency": {"stale_reads": 0}}
    result = cell._result(workload, loss, transitions or [], True, health, health, 1000.0, 10.0)
    result["cell_seconds"] = 9.0
    return result


def partition_cell(policy: str, *, failed: int) -> dict[str, Any]:
    phases = [Phase("warmup", 0, 2), Phase("fault", 2, 6), Phase("recovery", 6, 8)]
    ops = [op("write", "a", "warmup", 1.0, 0.01, version=1)]
    for i in range(10):
        ops.append(op("write", "a", "fault", 2.1 + i * 0.3, 0.02 if i else 5.0,
                      version=i + 2, mode="available"))
    ops += [op("read", "a", "fault", 5.9, 0.01, version=11, mode="available")]
    ops += [op("write", "b", "fault", 2.05, 5.0, ok=False, error="503 quorum_not_reached")
            for _ in range(failed)]
    transitions = [{"at_wall": 1003.3, "object_id": "f1", "from": "strong", "to": "available",
                    "reason": "emergency"},
                   {"at_wall": 1000.5, "object_id": "f1", "from": "strong", "to": "available",
                    "reason": "override"}]
    return cell_result("partition", policy, ops, phases, transitions)


def normal_cell(policy: str) -> dict[str, Any]:
    ops = [op("write", "a", "run", 0.5 + i * 0.1, 0.02, version=i + 1) for i in range(20)]
    ops += [op("read", "a", "run", 2.55, 0.01, version=20)]
    return cell_result("normal", policy, ops, [Phase("run", 0, 3)])


def test_a_cell_summarises_its_fault_window():
    cell = partition_cell("adaptive", failed=1)
    window = cell["in_window"]
    assert window["ops"] == 12 and window["succeeded"] == 11
    assert window["availability_pct"] == round(100 * 11 / 12, 3)
    assert window["write_latency_ms"]["p50"] == 20.0
    assert window["write_latency_ms"]["max"] == 5000.0
    assert window["failures"] == {"write: 503 quorum_not_reached": 1}
    assert cell["whole_run"]["ops"] == 13
    # The override entry is a lever, not a controller decision.
    assert (cell["mode_switches"], cell["lever_transitions"]) == (1, 1)
    assert cell["files_left_strong_during_fault"] == 1
    assert cell["first_leave_strong_after_fault_s"] == [1.3]
    assert cell["history"]["violations"] == 0
    assert cell["slow_writes_near_fault_start"][0]["after_fault_start_s"] == 0.1


def test_goals_say_by_how_much_and_why():
    results = [normal_cell("adaptive"), partition_cell("adaptive", failed=1),
               partition_cell("fixed-strong", failed=3)]
    goals = {g["goal"]: g for g in chaos_goals.goals(results)}
    availability = goals["availability during partition, adaptive"]
    assert availability["met"] is False
    assert availability["gap"] == f"{99.9 - 100 * 11 / 12:.2f} points short"
    assert "1 x write: 503 quorum_not_reached" in availability["why"]
    assert "out of strong 1.30 s after each fault began" in availability["why"]
    assert goals["convergence after heal (median), adaptive"]["met"] is True
    latency = goals["p95 write latency in partition ≤ 2x normal, adaptive"]
    assert latency["met"] is False and "began 0.10 s into a fault" in latency["why"]
    assert goals["acknowledged writes lost, every cell"]["met"] is True
    data = report.build(results, command="echofs bench chaos", machine={
        "cpus": 2, "cpu_model": "x", "memory_gib": 1.0, "os": "linux", "python": "3.11",
        "load_average_start": [1, 1, 1], "load_average_end": [1, 1, 1], "commit": "abc",
        "date": "2026-01-01T00:00:00Z"}, profile=QUICK.__dict__, env={"A": "1"}, seconds=60,
        faults={"latency": {"latency_ms": 100, "jitter_ms": 25, "stall_share": 0.02,
                            "stall_ms": 200, "reset_share": 0.05},
                "partition": {"blackhole": True}},
        faulted_workers=["w4", "w5"], workers=5, replication_factor=3,
        sizes={"small": 4096, "large": 1 << 20})
    assert data["verdict"]["ok"]
    text = report.render(data, "chaos.json")
    assert "| partition | fixed-strong |" in text and "| normal | adaptive |" in text
    assert "**no**" in text and "Goals not met" in text


def test_lost_writes_and_cells_that_did_not_run_fail_the_verdict():
    lost = normal_cell("adaptive")
    lost["loss"]["lost"] = [{"name": "a", "version": 3, "why": "version missing"}]
    lost["acked_writes_lost"] = 1
    broken = {"scenario": "heavy", "policy": "adaptive", "error": "RuntimeError('x')",
              "cell_seconds": 1.0}
    verdict = chaos_goals.verdict([lost, broken])
    assert not verdict["ok"]
    assert any("acknowledged write lost: a v3" in p for p in verdict["problems"])
    assert any("did not run" in p for p in verdict["problems"])
    goal = {g["goal"]: g for g in chaos_goals.goals([lost, broken])}[
        "acknowledged writes lost, every cell"]
    assert goal["met"] is False and "a v3 (version missing)" in goal["why"]
    assert "FAILED TO RUN" in report.progress_line(broken)


def test_a_stale_read_in_fixed_strong_fails_the_verdict():
    phases = [Phase("run", 0, 3)]
    ops = [op("write", "a", "run", 0.5, 0.1, version=1),
           op("write", "a", "run", 1.0, 0.1, version=2),
           op("read", "a", "run", 2.0, 0.1, version=1)]
    cell = cell_result("normal", "fixed-strong", ops, phases)
    assert cell["history"]["violations_by_kind"] == {"stale_read_strict": 1}
    problems = chaos_goals.verdict([cell])["problems"]
    assert any("history violation" in p for p in problems)
    assert any("stale read(s) in fixed-strong" in p for p in problems)


def test_a_heal_that_never_converges_counts_as_infinitely_slow():
    ops = [op("write", "a", "run", 0.5, 0.1, version=1)]
    one = cell_result("partition", "adaptive", ops, [Phase("run", 0, 3)],
                      converged=(None, 0.5, 0.7))
    assert (one["convergence_median_s"], one["convergence_max_s"]) == (0.7, None)
    assert one["convergence_unmeasured"] == 1
    two = cell_result("partition", "adaptive", ops, [Phase("run", 0, 3)],
                      converged=(None, None, 0.5))
    assert two["convergence_median_s"] is None
    goal = {g["goal"]: g for g in chaos_goals.goals([two], {"SUSPECT_AFTER": "1.0"})}[
        "convergence after heal (median), adaptive"]
    assert goal["met"] is False
    assert f"2 not converged within {QUICK.settle_timeout:g} s" in goal["measured"]
    assert "w4 suspect (7 failed calls, heartbeat 0.1 s ago)" in goal["why"]
    assert "w4 stayed suspect although its heartbeats kept arriving" in goal["why"]
