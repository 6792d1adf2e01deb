"""echofs/rpc/generated/ is exactly what proto/generate.py makes of proto/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "echofs" / "rpc" / "generated"


def _normalised(path: Path) -> str:
    # Compare syntax trees, not text: the compiler's formatter version must
    # not make the check flaky, but any change of meaning must fail it.
    return ast.dump(ast.parse(path.read_text()))


def test_generated_code_matches_the_proto_files(tmp_path):
    out = tmp_path / "generated"
    subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(out)],
                   check=True, capture_output=True)
    fresh = {p.relative_to(out): p for p in out.rglob("*.py")}
    committed = {p.relative_to(GENERATED): p for p in GENERATED.rglob("*.py")}
    assert fresh.keys() == committed.keys(), "run: python proto/generate.py"
    stale = [str(rel) for rel in fresh if _normalised(fresh[rel]) != _normalised(committed[rel])]
    assert not stale, f"stale generated files {stale}; run: python proto/generate.py"


def test_messages_round_trip():
    from echofs.rpc.generated.echofs.v1 import PutChunkRequest, WorkerStatus

    msg = PutChunkRequest(chunk_id="ab" * 32, frame=b"\x00\x01" * 1000)
    assert PutChunkRequest.parse(bytes(msg)) == msg
    status = WorkerStatus(worker_id="w1", chunk_count=7, capacity_bytes=2**40)
    assert WorkerStatus.parse(bytes(status)).capacity_bytes == 2**40
