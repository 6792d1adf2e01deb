"""A process cluster on the production backends: PostgreSQL metadata (a
throwaway database), S3 chunk stores (moto on loopback, a bucket per test, a
prefix per worker) and the Redis cache (a key prefix per test)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from echofs.testing.cluster import ProcessCluster
from echofs.testing.services import MotoServer


@dataclass(frozen=True)
class Backends:
    env: dict[str, str]
    stores: Callable[[str], str] | None

    def cluster(self, root, **options) -> ProcessCluster:  # type: ignore[no-untyped-def]
        return ProcessCluster(root, env={**self.env, **options.pop("env", {})},
                              stores=self.stores, **options)


@pytest.fixture
def production(postgres_url: str, moto_server: MotoServer, s3_bucket: str,
               redis_url: str) -> Backends:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"echofs-test-{uuid.uuid4().hex[:8]}",
        **moto_server.env,
    }
    return Backends(env, lambda worker_id: f"s3://{s3_bucket}/{worker_id}")


@pytest.fixture
def embedded() -> Backends:
    """The embedded defaults: SQLite, local folders, in-process cache."""
    return Backends({}, None)


def assert_no_errors_logged(cluster: ProcessCluster) -> None:
    """No request failed inside a member: no 500, no unhandled error.
    (Background passes that meet a killed worker may log and retry.)"""
    for member in [*cluster.masters, *cluster.workers.values()]:
        text = member.log_path.read_text(errors="replace")
        bad = [line for line in text.splitlines()
               if "status=500" in line or "unhandled error" in line
               or "Error handling request" in line]
        assert not bad, f"{member.name} logged:\n" + "\n".join(bad[:20])
