"""Arguments of ``echofs bench throughput`` (kept apart so ``--help`` stays fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_MARKDOWN = Path("docs/benchmarks/throughput.md")
DEFAULT_JSON = Path("docs/benchmarks/throughput.json")


def add_throughput_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--no-swift", action="store_true",
                        help="leave OpenStack Swift out (otherwise the bench stops if it is "
                        "not installed)")
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN,
                        help=f"Markdown report (default {DEFAULT_MARKDOWN})")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"JSON report (default {DEFAULT_JSON})")
    parser.add_argument("--work-dir", type=Path,
                        help="where data goes (default: a temporary folder)")
