"""The chaos benchmark's report: the Markdown and the JSON written.

The goals and the verdict are judged in :mod:`echofs.bench.goals`, the facts
about the machine gathered in :mod:`echofs.bench.machine`, and every figure is
formatted by :mod:`echofs.bench.figures`; this module puts them on the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from echofs.bench.figures import convergence, measured_cells, ms, pct, seconds
from echofs.bench.goals import ORIGINAL, goals, verdict
from echofs.core.vocabulary import Liveness


def progress_line(cell: dict[str, Any]) -> str:
    label = f"{cell['scenario']} x {cell['policy']}"
    if "error" in cell:
        return f"{label}: FAILED TO RUN: {cell['error']} ({cell.get('cell_seconds', 0):.0f} s)"
    w = cell["in_window"]
    return (f"{label}: {w['ops']} ops ({w['ops_per_second']}/s), availability "
            f"{pct(w['availability_pct'])}, write p95 {ms(w['write_latency_ms']['p95'])}, "
            f"read p95 {ms(w['read_latency_ms']['p95'])}, stale {pct(w['stale_read_pct'])}, "
            f"switches {cell['mode_switches']}, convergence "
            f"{convergence(cell, cell['convergence_median_s'])}, lost {cell['acked_writes_lost']}/"
            f"{cell['loss']['acknowledged']}, violations {cell['history']['violations']} "
            f"({cell['cell_seconds']:.0f} s)")


def build(results: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {"benchmark": "chaos", **params, "goals": goals(results, params.get("env")),
            "verdict": verdict(results), "cells": results}


def write(data: dict[str, Any], markdown: Path, json_path: Path) -> None:
    markdown.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    markdown.write_text(render(data, json_path.name))


def _cell_ms(summary: dict[str, Any]) -> str:
    return " / ".join(ms(summary[k]).removesuffix(" ms") for k in ("p50", "p95", "p99"))


def render(data: dict[str, Any], json_name: str) -> str:
    results = data["cells"]
    cells = measured_cells(results)
    m = data["machine"]
    lines = [
        "# Chaos benchmark",
        "",
        f"Produced by `{data['command']}` on {m['date']}; every number below comes from "
        f"that run (the raw results are in [`{json_name}`]({json_name})), none is typed by "
        "hand. The original project's published numbers (SPEC §9), which no code of its "
        "produced, are quoted for comparison.",
        "",
        f"**Verdict: {'pass' if data['verdict']['ok'] else 'FAIL'}** — "
        + ("no acknowledged write lost, no history violation, no stale read in fixed-strong, "
           "every cell measured." if data["verdict"]["ok"] else
           "; ".join(data["verdict"]["problems"][:10])),
        "",
        "## The original's table, measured",
        "",
        "Latency is over all operations (writes and reads) that succeeded; the partition "
        "columns cover the operations begun while two of the five workers were cut off.",
        "",
        "| metric | normal | partition, fixed strong | partition, adaptive |",
        "|---|---|---|---|",
    ]
    columns = [("normal", cells.get(("normal", "adaptive"))),
               ("partition-fixed-strong", cells.get(("partition", "fixed-strong"))),
               ("partition-adaptive", cells.get(("partition", "adaptive")))]

    def row(metric: str, key: str, ours: Any) -> str:
        out = [metric]
        for name, cell in columns:
            original = ORIGINAL[name].get(key, "—")
            value = "not run" if cell is None else ours(cell, name)
            out.append(f"{value} (original {original})")
        return "| " + " | ".join(out) + " |"

    lines += [
        row("p50 latency", "p50", lambda c, _: ms(c["in_window"]["latency_ms"]["p50"])),
        row("p95 latency", "p95", lambda c, _: ms(c["in_window"]["latency_ms"]["p95"])),
        row("availability", "availability",
            lambda c, _: pct(c["in_window"]["availability_pct"])),
        row("stale reads", "stale", lambda c, _: pct(c["in_window"]["stale_read_pct"])),
        row("convergence after heal", "convergence",
            lambda c, name: "— (no fault to heal)" if name == "normal" else
            f"{convergence(c, c['convergence_median_s'])} median, "
            f"{convergence(c, c['convergence_max_s'])} max"),
        "",
        "The original's last row (10 MB upload / download) belongs to the throughput "
        "benchmark, not to this one.",
        "",
        "## Goals",
        "",
        "| goal | target | original | measured | met |",
        "|---|---|---|---|---|",
    ]
    for g in data["goals"]:
        met = "not measured" if g["met"] is None else "yes" if g["met"] else f"**no** ({g['gap']})"
        lines.append(f"| {g['goal']} | {g['target']} | {g['original']} | {g['measured']} "
                     f"| {met} |")
    missed = [g for g in data["goals"] if g["met"] is False]
    if missed:
        lines += ["", "### Goals not met: by how much, and the run's evidence of why", ""]
        for g in missed:
            lines.append(f"- **{g['goal']}**: {g['measured']}, {g['gap']}. {g['why']}")
    lines += [
        "",
        "## Every cell",
        "",
        "Latency, availability and stale reads cover the fault phases of the latency and "
        "partition scenarios and the whole load of the others. Convergence: after each heal, "
        "until the cut workers are alive again and every replication task queued before the "
        "heal is done (median / max over the heals); for normal, heavy writes and slow disk "
        "(†), until the load's replication backlog is drained after the load stops; for "
        "worker lost (†), from the loss until every copy the worker held is on RF workers "
        "again. Master killed: the window includes the seconds the only master was down.",
        "",
        "| scenario | policy | ops (offered/s; succeeded/s) | availability "
        "| write p50 / p95 / p99 ms | read p50 / p95 / p99 ms | stale reads | mode switches "
        "| convergence "
        "| acked writes lost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in results:
        if "error" in cell:
            lines.append(f"| {cell['scenario']} | {cell['policy']} | did not run: "
                         f"{cell['error']} | | | | | | | |")
            continue
        w = cell["in_window"]
        dagger = "" if cell["window"] == "fault" else " †"
        conv = (f"{convergence(cell, cell['convergence_median_s'])} / "
                f"{convergence(cell, cell['convergence_max_s'])}"
                if cell["window"] == "fault" else convergence(cell, cell["convergence_median_s"]))
        lines.append(
            f"| {cell['scenario']} | {cell['policy']} | {w['ops']} ({w['ops_per_second']}; "
            f"{w['succeeded_per_second']} ok) "
            f"| {pct(w['availability_pct'])} | {_cell_ms(w['write_latency_ms'])} "
            f"| {_cell_ms(w['read_latency_ms'])} | {pct(w['stale_read_pct'])} "
            f"({w['stale_reads']}) | {cell['mode_switches']} | {conv}{dagger} "
            f"| {cell['acked_writes_lost']} of {cell['loss']['acknowledged']} |")
    lines += ["", "## Failures and mode changes, per cell", ""]
    for cell in results:
        if "error" in cell:
            continue
        failures = cell["in_window"]["failures"]
        listing = ", ".join(f"{n} x {e}" for e, n in sorted(failures.items(),
                                                             key=lambda x: -x[1])) or "none"
        lines.append(
            f"- **{cell['scenario']} x {cell['policy']}**: failed in the window: {listing}. "
            f"Files moved out of strong during a fault: "
            f"{cell['files_left_strong_during_fault']}; the first of them after each fault "
            f"began: {_offsets(cell['first_leave_strong_after_fault_s'])}. "
            f"{_convergence_note(cell)}Loss check: "
            f"{cell['loss']['verified']} acknowledged versions read back byte-exact, "
            f"{cell['loss']['superseded']} superseded (pruned by VERSIONS_KEPT), "
            f"{cell['loss']['unacknowledged_verified']} more listed versions (writes whose "
            "acknowledgement the client never got) hold bytes it sent. History: "
            f"{cell['history']['reads_checked']} reads checked, "
            f"{cell['history']['violations']} violations. {_linear_note(cell)}"
            f"{_detail_note(cell)}Whole run (incl. warm-up and "
            f"recovery): availability {pct(cell['whole_run']['availability_pct'])}, "
            f"stale {pct(cell['whole_run']['stale_read_pct'])}.")
    lines += _setup(data)
    return "\n".join(lines) + "\n"


def _linear_note(cell: dict[str, Any]) -> str:
    linear = cell.get("linearizability")
    if not linear:
        return ""
    text = (f"Linearizability (files strong throughout): {linear['linearizable']} of "
            f"{linear['files_checked']} linearizable over {linear['operations']} operations")
    if linear["violations"]:
        text += f", NOT: {', '.join(linear['violations'][:5])}"
    if linear["undecided"]:
        text += f", undecided: {', '.join(linear['undecided'][:5])}"
    return text + ". "


def _detail_note(cell: dict[str, Any]) -> str:
    """What the newer scenarios measured beyond the common figures."""
    d = cell.get("scenario_detail") or {}
    if cell["scenario"] == "flapping":
        return (f"Flapping: the link flipped {d.get('link_flips')} times; the controller made "
                f"{cell['mode_switches']} switch(es) over {cell.get('files_switched', 0)} "
                f"file(s), at most {cell.get('switches_max_per_file', 0)} per file. ")
    if cell["scenario"] == "master-kill":
        before, after = d.get("before_kill", {}), d.get("after_restart", {})
        up = d.get("in_window_master_up") or {}
        return (f"Master killed {seconds(d.get('killed_after_fault_start_s'))} into the "
                f"partition, down {seconds(d.get('master_down_s'))} (availability of the "
                f"operations begun while it was up: {pct(up.get('availability_pct'))}); "
                "replication queue "
                f"{before.get('queue_depth')} at the kill, {after.get('queue_depth')} after the "
                f"restart; its mode table ({after.get('modes')}) matched the controller's after "
                f"{seconds(d.get('modes_recovered_after_s'))}. ")
    if cell["scenario"] == "worker-lost":
        r = d.get("redundancy", {})
        return (f"Worker {d.get('lost_worker')} killed and wiped, back empty after "
                f"{seconds(d.get('restarted_empty_after_s'))}: {r.get('chunks_lost')} copies "
                f"lost, all back at RF after {seconds(r.get('seconds_to_full_redundancy'))} "
                f"({r.get('collected')} collected meanwhile, {r.get('short_at_end')} short at "
                "the end). ")
    return ""


def _convergence_note(cell: dict[str, Any]) -> str:
    stuck = [h for h in cell["convergence"] if h["seconds"] is None]
    if not stuck:
        return ""
    notes = []
    for h in stuck:
        unwell = [f"{w} {d['state']} ({d['failures']} failed calls, heartbeat "
                  f"{d['seconds_since_heartbeat']} s ago)"
                  for w, d in h.get("workers_at_end", {}).items()
                  if d.get("state") != Liveness.ALIVE]
        notes.append(f"queue depth {h.get('queue_depth_at_end')}, "
                     + (", ".join(unwell) or "every worker alive"))
    return (f"{len(stuck)} heal(s) did not converge within {cell['convergence_wait_s']:g} s; "
            f"at the end of the wait: {'; '.join(notes)}. ")


def _offsets(values: list[float | None]) -> str:
    if not values:
        return "no fault"
    return ", ".join("none" if v is None else f"{v:.2f} s" for v in values)


def _setup(data: dict[str, Any]) -> list[str]:
    m, p = data["machine"], data["profile"]
    env = ", ".join(f"{k}={v}" for k, v in sorted(data["env"].items()))
    lat, part = data["faults"]["latency"], data["faults"]["partition"]
    return [
        "",
        "## Set-up",
        "",
        f"- Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['os']}, Python {m['python']}; load average {m['load_average_start']} at the start "
        f"and {m.get('load_average_end')} at the end (the benchmark, the cluster and the fault "
        "proxies share these cores).",
        f"- Commit: `{m['commit']}`.",
        f"- Command: `{data['command']}` (profile `{p['name']}`; the run took "
        f"{data['seconds']:.0f} s).",
        f"- Cluster: one master, one controller and {data['workers']} workers, "
        f"RF={data['replication_factor']}, each its own `echofs serve` process on loopback, "
        "SQLite metadata, local chunk stores; a fault-proxy process holds two proxies per "
        "worker (master → worker gRPC, worker → master heartbeats), so a fault cuts or slows "
        f"both directions. A fresh cluster per {p['cluster_per']}. Settings: {env}.",
        f"- Workload: {p['clients']} clients at {p['rate']:g} ops/s together, half writes, half "
        f"reads, over {p['small_names']} names of {data['sizes']['small'] // 1024} KiB and "
        f"{p['large_names']} of {data['sizes']['large'] // 2**20} MiB (every write overwrites "
        "its name: a new version, fresh random bytes); heavy writes: "
        f"{p['heavy_clients']} clients at {p['heavy_rate']:g} ops/s, 90% writes, over "
        f"{p['heavy_small_names']} small names and {p['heavy_large_names']} large. Each name "
        "is written once before the measured load. An operation taking over 15 s counts as "
        "failed; no client retries.",
        f"- Scenarios: normal ({p['normal']:g} s); latency and partition: {p['warmup']:g} s "
        f"warm-up, then {p['cycles']} x ({p['fault']:g} s fault on workers "
        f"{', '.join(data['faulted_workers'])}, heal, {p['recovery']:g} s recovery); heavy "
        f"writes ({p['heavy']:g} s). Latency fault: +{2 * lat['latency_ms']:g} ms round trip "
        f"({lat['latency_ms']:g} ms each way) ± {2 * lat['jitter_ms']:g} ms, "
        f"{lat['stall_share'] * 100:g}% of segments held {lat['stall_ms']:g} ms (loss, as a "
        f"retransmission costs it), {lat['reset_share'] * 100:g}% of new connections reset. "
        f"Partition: blackhole={part['blackhole']} (nothing forwarded either way, new "
        "connections never answered).",
        f"- Newer scenarios: flapping ({p.get('warmup', 0):g} s warm-up, then the link to "
        f"{', '.join(data['faulted_workers'])} cut and healed in turn every "
        f"{p.get('flap_period', 0):g} s for {p.get('flapping', 0):g} s, then "
        f"{p.get('recovery', 0):g} s recovery); slow disk ({p.get('slow_disk', 0):g} s of load; "
        f"one worker's store adds {data.get('slow_disk', {}).get('delay_ms')} ms to every write, "
        f"injected inside the store on {data.get('slow_disk', {}).get('worker')} only); master "
        "killed (the partition scenario's single fault, the master killed with SIGKILL half-way "
        "through it and started again on its data); worker lost "
        f"({p.get('warmup', 0):g} s of load, then {data.get('lost_worker')} killed with SIGKILL, "
        f"its store and data folder deleted and the worker started again empty, "
        f"{p.get('worker_lost', 0):g} s more load; full redundancy: every chunk it held "
        "is on RF workers again, as the workers' own stores list them, or collected).",
        "- Linearizability: for each file that stayed strong for the whole cell (every "
        "answer said strong, the controller never moved it), the history of its writes and "
        "reads is checked as a single register by the Wing & Gong / Lowe search "
        "(`echofs/bench/linearizability.py`); a write whose answer never came may or may "
        "not have taken effect.",
        "- Policies: fixed-strong and fixed-available set the controller's global override; "
        "adaptive sets none (the controller decides per file).",
        "- Availability: operations that succeeded / operations begun in the window. Stale "
        "read: a successful read returning a version older than one whose write was "
        "acknowledged before the read began, or one the master flagged `X-EchoFS-Stale`. "
        "Mode switches: the controller's audit log (`/api/v1/consistency/transitions`) for "
        "the cell's files. Loss check: after the heal and once the cluster is whole, every "
        "acknowledged write (name, version, BLAKE3) is read back by version and compared; "
        "versions pruned by VERSIONS_KEPT are counted as superseded, not lost. History "
        "check: every read against every acknowledged write (`echofs/bench/history.py`).",
    ]
