"""The malloc arena cap applied by ``echofs serve``."""

from __future__ import annotations

import subprocess
import sys


def test_arena_cap_applies_on_glibc_and_defers_to_the_environment():
    code = "from echofs.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    applied = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={"PATH": ""}, check=True)
    assert applied.stdout.strip() == "True"  # this machine runs glibc
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"MALLOC_ARENA_MAX": "4"}, check=True)
    assert chosen.stdout.strip() == "False"
