"""Benchmarks that start real EchoFS processes and write their own reports.

``echofs bench chaos`` (:mod:`echofs.bench.chaos`): scenarios x consistency
policies on a multi-process cluster behind fault proxies. Its scenarios and
profiles are in :mod:`echofs.bench.scenarios`, one cell in
:mod:`echofs.bench.cell` (calling the master through :mod:`echofs.bench.probes`,
summed up by :mod:`echofs.bench.summary`), the workload in
:mod:`echofs.bench.workload`, the history checker in :mod:`echofs.bench.history`,
the goals and verdict in :mod:`echofs.bench.goals`, and the report in
:mod:`echofs.bench.report` (with :mod:`echofs.bench.figures` and
:mod:`echofs.bench.machine`).

``echofs bench throughput`` (:mod:`echofs.bench.throughput`): EchoFS beside
nginx (:mod:`echofs.bench.nginx_peer`), OpenStack Swift
(:mod:`echofs.bench.swift_peer`) and the raw disk, reported by
:mod:`echofs.bench.throughput_report`.

Only argument definitions live here, so ``echofs --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_MARKDOWN = Path("docs/benchmarks/chaos.md")
DEFAULT_JSON = Path("docs/benchmarks/chaos.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    throughput = sub.add_parser(
        "throughput", help="EchoFS beside nginx (WebDAV), OpenStack Swift and the raw disk, "
        "same client, same run; writes a Markdown and a JSON report")
    from echofs.bench.throughput_args import add_throughput_arguments

    add_throughput_arguments(throughput)
    chaos = sub.add_parser(
        "chaos", help="scenarios x consistency policies on a process cluster behind fault "
        "proxies; writes a Markdown and a JSON report")
    chaos.add_argument("--quick", action="store_true",
                       help="smoke profile: the original four scenarios under every "
                       "policy, short phases, one cluster for the whole run (under 2 minutes)")
    chaos.add_argument("--scenarios", help="comma list of normal, latency, partition, heavy, "
                       "flapping, slow-disk, master-kill, worker-lost (default: all; with "
                       "--quick the first four)")
    chaos.add_argument("--policies", help="comma list of fixed-strong, fixed-available, "
                       "adaptive (default: all)")
    durations = chaos.add_argument_group("durations (seconds; default: the profile's)")
    durations.add_argument("--normal", type=float, help="workload of the normal scenario")
    durations.add_argument("--heavy", type=float, help="workload of the heavy-writes scenario")
    durations.add_argument("--warmup", type=float, help="fault-free workload before the "
                           "first fault (latency, partition)")
    durations.add_argument("--fault", type=float, help="each fault, before it is healed")
    durations.add_argument("--recovery", type=float, help="workload after each heal")
    durations.add_argument("--flapping", type=float, help="flapping: how long the link is "
                           "cut and healed in turn")
    durations.add_argument("--flap-period", type=float, help="flapping: seconds per cut and "
                           "per heal")
    durations.add_argument("--slow-disk", type=float, help="workload of the slow-disk scenario")
    durations.add_argument("--worker-lost", type=float, help="workload after the worker is "
                           "lost (worker-lost)")
    durations.add_argument("--cycles", type=int, help="fault/heal cycles per latency and "
                           "partition cell")
    load = chaos.add_argument_group("load (default: the profile's)")
    load.add_argument("--rate", type=float, help="operations/s, all clients together")
    load.add_argument("--clients", type=int, help="concurrent clients")
    load.add_argument("--heavy-rate", type=float, help="operations/s in heavy writes")
    load.add_argument("--heavy-clients", type=int, help="concurrent clients in heavy writes")
    chaos.add_argument("--cluster-per", choices=("cell", "run"),
                       help="a fresh cluster for every cell (full default) or one for the "
                       "whole run, reset between cells (--quick default)")
    chaos.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN,
                       help=f"Markdown report (default {DEFAULT_MARKDOWN})")
    chaos.add_argument("--json", type=Path, default=DEFAULT_JSON,
                       help=f"JSON report (default {DEFAULT_JSON})")
    chaos.add_argument("--work-dir", type=Path, help="cluster data and logs (default: a "
                       "temporary folder, removed afterwards)")
    chaos.add_argument("--seed", type=int, default=1, help="workload random seed")


def run(args: argparse.Namespace) -> int:
    if args.bench_command == "throughput":
        from echofs.bench.throughput import run_from_args as run_throughput

        return run_throughput(args)
    from echofs.bench.chaos import run_from_args

    return run_from_args(args)
