"""The layering contracts in pyproject.toml ([tool.importlinter]) hold.

Which package may import which is part of the design (core below everything,
workers and the controller independent of the master, the client speaking
HTTP only, domain layers below the roles); this runs import-linter's own
command over the installed tree so a change that breaks a contract fails
here, with import-linter's report of the offending import chain.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_layering_contract_is_kept():
    # The command beside this interpreter: the one the test extras installed.
    command = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(command), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in report, report
