"""The goals of the scenarios added after the original's table: flapping
link, slow disk, master killed mid-partition, worker lost — and the
linearizability of the files that stayed strong, in every cell.

Like :mod:`echofs.bench.goals`, every figure comes from the run's results and
a goal missed carries the run's own evidence.
"""

from __future__ import annotations

from typing import Any

from echofs.bench.figures import measured_cells, ms, seconds

# Mode switches per file while the link flips every flap_period (and during
# the recovery after it): a controller that followed the link would switch at
# every flip (15 flips in the full profile's 30 s). One that does not flap
# leaves strong at the first cut, may come back once at the first heal
# (which looks like the end of a single partition), leaves again, and comes
# back once the link is steady, possibly through hybrid: 5; one more allowed.
GOAL_FLAP_SWITCHES_PER_FILE = 6


def goals(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells = measured_cells(results)
    out: list[dict[str, Any]] = []

    def add(goal: str, target: str, measured: str, met: bool | None, gap: str = "",
            why: str = "") -> None:
        out.append({"goal": goal, "target": target, "original": "not measured",
                    "measured": measured, "met": met, "gap": gap, "why": why})

    flap = cells.get(("flapping", "adaptive"))
    if flap is None:
        add("mode switches per file while a link flaps, adaptive",
            f"≤ {GOAL_FLAP_SWITCHES_PER_FILE}", "not measured in this run", None)
    else:
        worst, flips = flap["switches_max_per_file"], flap["scenario_detail"].get("link_flips")
        met = worst <= GOAL_FLAP_SWITCHES_PER_FILE
        add("mode switches per file while a link flaps, adaptive",
            f"≤ {GOAL_FLAP_SWITCHES_PER_FILE}",
            f"{worst} at most ({flap['mode_switches']} over {flap['files_switched']} file(s); "
            f"the link flipped {flips} times)", met,
            "" if met else f"{worst - GOAL_FLAP_SWITCHES_PER_FILE} over",
            "" if met else _flap_evidence(flap))
    kills = [c for (s, _), c in cells.items() if s == "master-kill"]
    if not kills:
        add("master killed mid-partition: queue and modes recovered, every policy",
            "recovered", "not measured in this run", None)
    else:
        bad = [c for c in kills if not c["scenario_detail"].get("modes_recovered")]
        add("master killed mid-partition: queue and modes recovered, every policy",
            "recovered", "; ".join(_kill_summary(c) for c in kills), not bad,
            "" if not bad else f"{len(bad)} cell(s) not recovered",
            "" if not bad else "; ".join(
                f"{c['policy']}: after restart {c['scenario_detail'].get('after_restart')}"
                for c in bad))
    lost = [c for (s, _), c in cells.items() if s == "worker-lost"]
    if not lost:
        add("worker lost for good: RF restored, every policy", "restored",
            "not measured in this run", None)
    else:
        bad = [c for c in lost if not c["scenario_detail"].get("rf_restored")]
        add("worker lost for good: RF restored, every policy", "restored",
            "; ".join(_lost_summary(c) for c in lost), not bad,
            "" if not bad else f"{len(bad)} cell(s) short of RF",
            "" if not bad else "; ".join(
                f"{c['policy']}: {c['scenario_detail']['redundancy']['short_at_end']} lost "
                "chunk(s) still below RF at the end of the wait" for c in bad))
    slow = [c for (s, _), c in cells.items() if s == "slow-disk"]
    if slow:
        normal = {p: c for (s, p), c in cells.items() if s == "normal"}
        add("slow disk on one worker: availability, every policy", "100%",
            "; ".join(_slow_summary(c, normal.get(c["policy"])) for c in slow),
            all(c["in_window"]["availability_pct"] == 100 for c in slow))
    checked = [c for c in cells.values() if "linearizability" in c]
    files = sum(c["linearizability"]["files_checked"] for c in checked)
    wrong = [(c, name) for c in checked for name in c["linearizability"]["violations"]]
    undecided = sum(len(c["linearizability"]["undecided"]) for c in checked)
    add("files strong for the whole cell are linearizable, every cell", "all",
        f"{files - len(wrong) - undecided} of {files} file(s) linearizable"
        + (f", {undecided} undecided" if undecided else ""),
        not wrong and not undecided if files else None,
        "" if not wrong else f"{len(wrong)} not linearizable",
        "; ".join(f"{c['scenario']} x {c['policy']}: {name}" for c, name in wrong[:10]))
    return out


def _flap_evidence(cell: dict[str, Any]) -> str:
    moves = [t for t in cell["transitions"] if t["reason"] in ("policy", "emergency")]
    return ("the controller's moves: " + ", ".join(
        f"{t['at']:.1f} s {t['from']}→{t['to']}" for t in moves[:12]) + ".")


def _kill_summary(cell: dict[str, Any]) -> str:
    d = cell["scenario_detail"]
    before, after = d.get("before_kill", {}), d.get("after_restart", {})
    return (f"{cell['policy']}: down {seconds(d.get('master_down_s'))}, queue "
            f"{before.get('queue_depth')} at the kill and {after.get('queue_depth')} after the "
            f"restart, modes matched the controller after "
            f"{seconds(d.get('modes_recovered_after_s'))}")


def _lost_summary(cell: dict[str, Any]) -> str:
    r = cell["scenario_detail"].get("redundancy", {})
    return (f"{cell['policy']}: {r.get('chunks_lost')} copies lost, full redundancy after "
            f"{seconds(r.get('seconds_to_full_redundancy'))}")


def _slow_summary(cell: dict[str, Any], normal: dict[str, Any] | None) -> str:
    w = cell["in_window"]
    text = (f"{cell['policy']}: {w['availability_pct']:.2f}%, write p95 "
            f"{ms(w['write_latency_ms']['p95'])}")
    if normal is not None:
        text += f" (normal {ms(normal['in_window']['write_latency_ms']['p95'])})"
    return text
