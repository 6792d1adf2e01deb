"""A worker whose S3 store cannot work refuses to start, saying why."""

from __future__ import annotations

import os
import subprocess
import sys

from echofs.testing.process import free_port
from echofs.testing.services import MotoServer


def test_worker_on_a_missing_bucket_refuses_to_start(tmp_path, moto_server: MotoServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "echofs", "serve", "--role=worker", "--id", "w1",
         "--store", "s3://no-such-bucket/w1", "--data-dir", str(tmp_path),
         "--grpc-port", str(free_port()), "--http-port", str(free_port()),
         "--master", f"127.0.0.1:{free_port()}"],
        env={**os.environ, **moto_server.env}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "no bucket named 'no-such-bucket'" in result.stderr
    assert "Traceback" not in result.stderr
