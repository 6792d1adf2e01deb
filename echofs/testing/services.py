"""The real servers behind the production backends, for tests and benchmarks.

- PostgreSQL: the server named by ``ECHOFS_TEST_POSTGRES_URL`` (default: the
  local one, user ``postgres``). Tests never use its databases directly: each
  gets a throwaway database (``echofs_test_<random>``), dropped afterwards.
- Redis: the server named by ``ECHOFS_TEST_REDIS_URL`` (default: the local
  one), or a private ``redis-server`` on a free port that a test may stop and
  start again (:class:`RedisServer`).
- S3: ``moto`` in server mode on loopback (:class:`MotoServer`), each test in
  a bucket of its own.

Nothing here skips: a server that does not answer raises
:class:`ServiceMissing`, whose message says how to start it, and the test
using it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from echofs.testing.process import free_port

if TYPE_CHECKING:
    from echofs.worker.stores.s3 import S3ChunkStore

POSTGRES_URL_ENV = "ECHOFS_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL_ENV = "ECHOFS_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# moto accepts any credentials; botocore needs some to sign requests.
S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


class ServiceMissing(RuntimeError):
    """A server the tests need is not there. Never a reason to skip."""


# -- PostgreSQL ---------------------------------------------------------------------


def postgres_server_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def _connect_admin(server_url: str):  # type: ignore[no-untyped-def]
    import psycopg
    from sqlalchemy.engine import make_url

    from echofs.metadata.database import async_url

    url = make_url(async_url(server_url))
    try:
        return psycopg.connect(
            host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username,
            password=url.password, dbname=url.database or "postgres", autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        raise ServiceMissing(
            f"PostgreSQL at {url.render_as_string()} does not answer ({exc}). Start it "
            "(`pg_ctlcluster --skip-systemctl-redirect 15 main start`) or point "
            f"{POSTGRES_URL_ENV} at one; .ci/run does both."
        ) from exc


def require_postgres(server_url: str | None = None) -> str:
    server_url = server_url or postgres_server_url()
    _connect_admin(server_url).close()
    return server_url


def database_url(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    from echofs.metadata.database import async_url

    return make_url(async_url(server_url)).set(database=name).render_as_string(
        hide_password=False)


def create_database(server_url: str | None = None, prefix: str = "echofs_test") -> str:
    """A new empty database on the test server; returns its URL."""
    server_url = server_url or postgres_server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _connect_admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(server_url, name)


def drop_database(url: str, server_url: str | None = None) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with _connect_admin(server_url or postgres_server_url()) as conn:
        # FORCE: a process the test killed may still hold a connection.
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_database(server_url: str | None = None) -> Iterator[str]:
    url = create_database(server_url)
    try:
        yield url
    finally:
        drop_database(url, server_url)


def empty_tables(url: str) -> None:
    """Remove every row of every table but Alembic's: a migrated database as
    good as new, much faster than migrating a new one."""
    with _connect_admin(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename != 'alembic_version'")]
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


# -- Redis --------------------------------------------------------------------------


def redis_server_url() -> str:
    return os.environ.get(REDIS_URL_ENV) or DEFAULT_REDIS_URL


def require_redis(url: str | None = None) -> str:
    import redis

    url = url or redis_server_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServiceMissing(
            f"Redis at {url} does not answer ({exc}). Start it (`redis-server --daemonize yes "
            f"--bind 127.0.0.1 --port 6379 --save ''`) or point {REDIS_URL_ENV} at one; "
            ".ci/run does both."
        ) from exc
    finally:
        client.close()
    return url


class RedisServer:
    """A private ``redis-server`` on a free loopback port, for tests that stop
    Redis under a running cluster (the shared one must stay up)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceMissing("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                require_redis(self.url)
                return self
            except ServiceMissing:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- S3 (moto) ----------------------------------------------------------------------


class MotoServer:
    """moto's S3 in server mode, as a child process on a free loopback port.

    A process rather than moto's in-process thread: the workers of a process
    cluster reach it too, and its request handling does not compete with the
    test for the GIL."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> MotoServer:
        self.proc = subprocess.Popen(
            # moto's server, its DynamoDB requests one at a time (see moto_server).
            [sys.executable, "-m", "echofs.testing.moto_server", "-H", "127.0.0.1",
             "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceMissing(f"moto server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServiceMissing(f"moto server not answering on {self.endpoint_url}")

    def client(self):  # type: ignore[no-untyped-def]
        """A synchronous boto3 S3 client for test set-up and inspection."""
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=S3_TEST_ENV["AWS_REGION"],
            aws_access_key_id=S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self, prefix: str = "echofs-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def store(self, bucket: str, prefix: str = "", **options: Any) -> S3ChunkStore:
        """An (unopened) S3 chunk store on this endpoint."""
        import aioboto3

        from echofs.worker.stores.s3 import S3ChunkStore

        session = aioboto3.Session(
            aws_access_key_id=S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        return S3ChunkStore(bucket, prefix, endpoint_url=self.endpoint_url,
                            region=S3_TEST_ENV["AWS_REGION"], session=session, **options)

    @property
    def env(self) -> dict[str, str]:
        """What a worker process needs to use this endpoint."""
        return {**S3_TEST_ENV, "S3_ENDPOINT_URL": self.endpoint_url}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
