"""One settings object for every role: defaults < environment < command-line flags.

Environment variable names follow the original project (``MASTER_HOST``,
``CHUNK_SIZE``, ...) so its deployment scripts keep working; flags use the
same names in lower case with dashes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from echofs.core.chunking import validate_chunk_size

MIB = 1024 * 1024
# Controller arrives with the consistency controller; no placeholder role.
ROLES = frozenset({"all", "master", "worker"})


@dataclass(frozen=True)
class Settings:
    """Every knob EchoFS has. ``env`` names the variable that sets a field."""

    # Roles this process runs: all (embedded), or master and/or worker.
    role: str = field(default="all", metadata={"env": "ECHOFS_ROLE"})
    data_dir: Path = field(default=Path("echofs-data"), metadata={"env": "ECHOFS_DATA_DIR"})
    host: str = field(default="127.0.0.1", metadata={"env": "MASTER_HOST"})
    port: int = field(default=8080, metadata={"env": "MASTER_PORT"})
    # gRPC port: the master's membership service (default 9080) or a
    # worker's chunk service (default 9091).
    grpc_port: int | None = field(default=None, metadata={"env": "GRPC_PORT"})
    # Worker role: identity, chunk store, HTTP port (health), master to join.
    worker_id: str | None = field(default=None, metadata={"env": "WORKER_ID"})
    store: str | None = field(default=None, metadata={"env": "ECHOFS_STORE"})
    http_port: int = field(default=8091, metadata={"env": "WORKER_PORT"})
    master: str = field(default="127.0.0.1:9080", metadata={"env": "MASTER_ADDRESS"})
    # Host other processes use to reach this one (default: the bound host).
    advertise_host: str | None = field(default=None, metadata={"env": "ADVERTISE_HOST"})
    workers: int = field(default=3, metadata={"env": "ECHOFS_WORKERS"})
    replication_factor: int = field(default=3, metadata={"env": "REPLICATION_FACTOR"})
    chunk_size: int = field(default=MIB, metadata={"env": "CHUNK_SIZE"})
    max_upload_size: int = field(default=64 * 1024 * MIB, metadata={"env": "MAX_UPLOAD_SIZE"})
    versions_kept: int = field(default=5, metadata={"env": "VERSIONS_KEPT"})
    database_url: str | None = field(default=None, metadata={"env": "DATABASE_URL"})
    log_level: str = field(default="info", metadata={"env": "LOG_LEVEL"})
    log_format: str = field(default="console", metadata={"env": "LOG_FORMAT"})
    # How many chunks of one upload may be in flight to workers at once.
    pipeline_depth: int = field(default=8, metadata={"env": "PIPELINE_DEPTH"})
    # Chunks read ahead of the one being sent to a downloading client.
    read_ahead: int = field(default=4, metadata={"env": "READ_AHEAD"})
    write_timeout: float = field(default=30.0, metadata={"env": "WRITE_TIMEOUT"})
    read_timeout: float = field(default=10.0, metadata={"env": "READ_TIMEOUT"})
    heartbeat_interval: float = field(default=1.0, metadata={"env": "HEARTBEAT_INTERVAL"})
    suspect_after: float = field(default=3.0, metadata={"env": "SUSPECT_AFTER"})
    dead_after: float = field(default=30.0, metadata={"env": "DEAD_AFTER"})
    # An unreferenced chunk is collected only once nobody touched it for this
    # long: it must exceed the longest upload we want to protect.
    gc_grace: float = field(default=3600.0, metadata={"env": "GC_GRACE_SECONDS"})
    gc_interval: float = field(default=60.0, metadata={"env": "GC_INTERVAL_SECONDS"})
    replication_interval: float = field(default=1.0, metadata={"env": "REPLICATION_INTERVAL"})
    # Pause between scrub batches, and stored bytes per second it may verify.
    scrub_interval: float = field(default=5.0, metadata={"env": "SCRUB_INTERVAL"})
    scrub_rate: float = field(default=32.0 * MIB, metadata={"env": "SCRUB_RATE"})

    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            if name and env.get(name) not in (None, ""):
                values[f.name] = _convert(f, env[name])
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = value
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.role.split(",") if r.strip())

    def validate(self) -> None:
        unknown = self.roles - ROLES
        if not self.roles or unknown:
            raise ValueError(f"unknown role(s) {', '.join(sorted(unknown)) or '(none)'}; "
                             f"choose from {', '.join(sorted(ROLES))}")
        if "all" in self.roles and len(self.roles) > 1:
            raise ValueError("role 'all' already includes master and workers; use it alone")
        validate_chunk_size(self.chunk_size)
        if self.workers < 1:
            raise ValueError("at least one worker is needed")
        if "all" in self.roles and not 1 <= self.replication_factor <= self.workers:
            raise ValueError(
                f"replication factor {self.replication_factor} needs between 1 and "
                f"{self.workers} workers"
            )
        if self.versions_kept < 1:
            raise ValueError("VERSIONS_KEPT must be at least 1")
        if self.max_upload_size < 0:
            raise ValueError("MAX_UPLOAD_SIZE must not be negative")
        if self.replication_factor < 1:
            raise ValueError("REPLICATION_FACTOR must be at least 1")
        if "worker" in self.roles and not self.worker_id:
            raise ValueError("the worker role needs an id (--id or WORKER_ID)")

    @property
    def metadata_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'metadata.db'}"

    @property
    def master_grpc_port(self) -> int:
        return self.grpc_port or 9080

    @property
    def worker_grpc_port(self) -> int:
        return self.grpc_port or 9091

    @property
    def public_host(self) -> str:
        return self.advertise_host or self.host

    @property
    def binds_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = str(f.type).split("|")[0].strip()
    if kind == "int":
        return parse_size(raw)
    if kind == "float":
        return float(raw)
    if kind == "Path":
        return Path(raw)
    return raw


_UNITS = {"k": 1024, "m": MIB, "g": 1024 * MIB, "t": 1024 * 1024 * MIB}


def parse_size(raw: str | int) -> int:
    """``1048576``, ``1MB``, ``1MiB``, ``64k`` → bytes."""
    if isinstance(raw, int):
        return raw
    text = raw.strip().lower().removesuffix("b").removesuffix("i")
    if text and text[-1] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(text)
