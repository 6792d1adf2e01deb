"""A process cluster on the production backends: PostgreSQL metadata (a
throwaway database) or DynamoDB metadata (moto on loopback, tables of a
prefix per test), S3 chunk stores (moto on loopback, a bucket per test, a
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


def dynamodb_url(moto_server: MotoServer) -> str:
    """Tables of their own on moto's DynamoDB (not created: ``echofs db
    upgrade`` does that, as an operator would)."""
    return (f"dynamodb://?endpoint={moto_server.endpoint_url}&region=us-east-1"
            f"&prefix=t{uuid.uuid4().hex[:12]}-")


@pytest.fixture(params=["postgresql", "dynamodb"])
def shared_metadata(request: pytest.FixtureRequest, moto_server: MotoServer,
                    s3_bucket: str, redis_url: str) -> Backends:
    """The production backends with each engine several masters can share."""
    if request.param == "postgresql":
        return request.getfixturevalue("production")  # type: ignore[no-any-return]
    env = {
        "DATABASE_URL": dynamodb_url(moto_server),
        # One moto process answers the whole cluster's DynamoDB and S3
        # requests, so an upload here can outlast the 2 s grace test
        # clusters give the collector (the grace must exceed an upload).
        "GC_GRACE_SECONDS": "60",
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
