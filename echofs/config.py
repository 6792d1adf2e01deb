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

from echofs.auth.jwt_secret import check_secret
from echofs.core.chunking import validate_chunk_size
from echofs.core.space import SpaceReserve
from echofs.core.vocabulary import Role

MIB = 1024 * 1024
DEFAULT_S3_PORT = 9000
ROLES = frozenset(Role)


@dataclass(frozen=True)
class Settings:
    """Every knob EchoFS has. ``env`` names the variable that sets a field."""

    # Roles this process runs: all (embedded), or a comma list of master,
    # worker and controller. Code asks the predicates below (runs_master,
    # ...), never the string.
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
    # ...and at most this many bytes of them, so memory per download stays
    # flat whatever the chunk size (see master/read_ahead).
    read_ahead_bytes: int = field(default=8 * MIB, metadata={"env": "READ_AHEAD_BYTES"})
    # Memory for small chunks' bytes, so reads of small files just written or
    # read skip the worker (0 = off; see master/chunk_cache).
    chunk_cache_bytes: int = field(default=32 * MIB, metadata={"env": "CHUNK_CACHE_BYTES"})
    write_timeout: float = field(default=30.0, metadata={"env": "WRITE_TIMEOUT"})
    read_timeout: float = field(default=10.0, metadata={"env": "READ_TIMEOUT"})
    # Write pipeline (large chunks of strong writes in a process cluster): each
    # hop of a chain gets this long, times the hops left below it, before the
    # worker (or master) above cuts it out and the master sends directly.
    chain_hop_timeout: float = field(default=2.0, metadata={"env": "CHAIN_HOP_TIMEOUT"})
    # Hedged reads: a chunk read slower than its replica's recent p99 latency,
    # clamped to these bounds, asks the next replica too (first good answer
    # wins), so a frozen worker costs at most the upper bound, not READ_TIMEOUT.
    read_hedge_min_delay: float = field(default=0.02, metadata={"env": "READ_HEDGE_MIN_DELAY"})
    read_hedge_max_delay: float = field(default=1.0, metadata={"env": "READ_HEDGE_MAX_DELAY"})
    heartbeat_interval: float = field(default=1.0, metadata={"env": "HEARTBEAT_INTERVAL"})
    suspect_after: float = field(default=3.0, metadata={"env": "SUSPECT_AFTER"})
    dead_after: float = field(default=30.0, metadata={"env": "DEAD_AFTER"})
    # An unreferenced chunk is collected only once nobody touched it for this
    # long: it must exceed the longest upload we want to protect.
    gc_grace: float = field(default=3600.0, metadata={"env": "GC_GRACE_SECONDS"})
    gc_interval: float = field(default=60.0, metadata={"env": "GC_INTERVAL_SECONDS"})
    # The grace period while a worker's disk or the metadata disk is low on
    # space (within one reserve of full), so deleted data is given back
    # soon (never longer than GC_GRACE_SECONDS). Uploads touch their chunks
    # four times within it, so it still protects every upload in flight;
    # every master must use the same.
    gc_pressure_grace: float = field(default=120.0,
                                     metadata={"env": "GC_PRESSURE_GRACE_SECONDS"})
    # Free space every local chunk store keeps back (the larger of the two):
    # uploads that would eat into it answer 507, so deletes, tombstones and
    # compaction always have room. METADATA_RESERVE_BYTES: the same for the
    # disk of the SQLite metadata file (not used with PostgreSQL).
    store_reserve: int = field(default=64 * MIB, metadata={"env": "STORE_RESERVE_BYTES"})
    store_reserve_percent: float = field(default=1.0,
                                         metadata={"env": "STORE_RESERVE_PERCENT"})
    metadata_reserve: int = field(default=64 * MIB, metadata={"env": "METADATA_RESERVE_BYTES"})
    replication_interval: float = field(default=1.0, metadata={"env": "REPLICATION_INTERVAL"})
    # A copy owed to a chunk no version uses is dropped once no upload has
    # touched the chunk for this long: its upload died with a master or was
    # abandoned, and with no recorded source the copy could only retry until
    # the collector's grace period ends. Safe at any value (a commit that
    # still comes is restored to full copies by the under-replication scan).
    replication_orphan_after: float = field(default=300.0,
                                            metadata={"env": "REPLICATION_ORPHAN_AFTER"})
    # Pause between scrub batches, and stored bytes per second it may verify.
    scrub_interval: float = field(default=5.0, metadata={"env": "SCRUB_INTERVAL"})
    scrub_rate: float = field(default=32.0 * MIB, metadata={"env": "SCRUB_RATE"})
    # How often workers' holdings are checked for copies with no metadata.
    sweep_interval: float = field(default=600.0, metadata={"env": "SWEEP_INTERVAL"})

    # -- HTTP connections (every role's HTTP port) --
    # Seconds a client has to send a request's line and headers, counted from
    # its first byte (or from connecting); then the connection is closed.
    http_header_timeout: float = field(default=15.0, metadata={"env": "HTTP_HEADER_TIMEOUT"})
    # Seconds an unfinished request body may go without a byte arriving: then
    # the request is answered 408 and its upload abandoned (nothing stored).
    http_body_idle_timeout: float = field(default=60.0,
                                          metadata={"env": "HTTP_BODY_IDLE_TIMEOUT"})
    # Seconds an idle keep-alive connection stays open between requests.
    http_keepalive_timeout: float = field(default=75.0,
                                          metadata={"env": "HTTP_KEEPALIVE_TIMEOUT"})
    # Connections one HTTP server holds open at once; more are answered 503
    # and closed. Unset: half the process's open-file limit.
    http_max_connections: int | None = field(default=None,
                                             metadata={"env": "HTTP_MAX_CONNECTIONS"})

    # -- production backends (S3 chunk stores, Redis) --
    # S3 stores (--store s3://BUCKET/PREFIX): bucket when the spec names none,
    # endpoint (unset = AWS; set for MinIO, moto, ...) and region. Credentials
    # come from the usual AWS chain (AWS_ACCESS_KEY_ID, ~/.aws, instance role).
    s3_bucket: str | None = field(default=None, metadata={"env": "S3_BUCKET_NAME"})
    s3_endpoint_url: str | None = field(default=None, metadata={"env": "S3_ENDPOINT_URL"})
    aws_region: str = field(default="us-east-1", metadata={"env": "AWS_REGION"})
    # Redis for the manifest cache shared by masters and per-user rate
    # limits: REDIS_URL, or the original's REDIS_ADDR (host:port); unset =
    # in-process cache and limits. REDIS_PREFIX keeps clusters sharing one
    # Redis apart (keys and the invalidation channel).
    redis_url: str | None = field(default=None, metadata={"env": "REDIS_URL"})
    redis_addr: str | None = field(default=None, metadata={"env": "REDIS_ADDR"})
    redis_prefix: str = field(default="echofs", metadata={"env": "REDIS_PREFIX"})
    # Requests per user per minute (0 = unlimited).
    rate_limit_per_minute: int = field(default=0, metadata={"env": "RATE_LIMIT_PER_MINUTE"})

    # -- accounts and cluster security --
    # Unset: single-user open mode, loopback only. Set (≥ 32 bytes): accounts
    # with JWT bearer tokens (HS256) valid for TOKEN_TTL seconds.
    jwt_secret: str | None = field(default=None, metadata={"env": "JWT_SECRET"})
    token_ttl: float = field(default=86400.0, metadata={"env": "TOKEN_TTL"})
    # Seconds a master keeps an account it looked up for a token: a delete,
    # role change or logout made through another master shows here within it.
    auth_cache_seconds: float = field(default=5.0, metadata={"env": "AUTH_CACHE_SECONDS"})
    # Sign-in attempts a minute: login and register per client address, login
    # per account name (0 = no limit); counted in Redis when it is configured.
    login_limit_per_address: int = field(default=60,
                                         metadata={"env": "LOGIN_LIMIT_PER_ADDRESS"})
    login_limit_per_account: int = field(default=10,
                                         metadata={"env": "LOGIN_LIMIT_PER_ACCOUNT"})
    # Password hashes computed at once (threads of their own), and sign-ins
    # that may wait for one; beyond that: 429 auth_busy.
    password_hash_concurrency: int = field(default=2,
                                           metadata={"env": "PASSWORD_HASH_CONCURRENCY"})
    password_hash_queue: int = field(default=32, metadata={"env": "PASSWORD_HASH_QUEUE"})
    # Shared secret every gRPC call between roles must carry (unset: none).
    cluster_token: str | None = field(default=None, metadata={"env": "CLUSTER_TOKEN"})

    # -- consistency controller --
    # Where masters find the controller (gRPC HOST:PORT); unset = none, so
    # every file uses DEFAULT_MODE. Role all runs its own controller.
    controller: str | None = field(default=None, metadata={"env": "CONTROLLER_ADDRESS"})
    # The controller's REST API, proxied by masters under /api/v1/consistency
    # (default: http://HOST:8082 of CONTROLLER_ADDRESS).
    controller_url: str | None = field(default=None, metadata={"env": "CONTROLLER_URL"})
    controller_http_port: int = field(default=8082, metadata={"env": "CONTROLLER_PORT"})
    controller_grpc_port: int = field(default=9082, metadata={"env": "CONTROLLER_GRPC_PORT"})
    default_mode: str = field(default="strong", metadata={"env": "DEFAULT_MODE"})
    sample_interval: float = field(default=1.0, metadata={"env": "SAMPLE_INTERVAL"})
    confirm_samples: int = field(default=3, metadata={"env": "CONFIRM_SAMPLES"})
    mode_cooldown: float = field(default=5.0, metadata={"env": "MODE_COOLDOWN"})
    emergency_risk: float = field(default=0.8, metadata={"env": "EMERGENCY_RISK"})
    # JSON object overriding weights/thresholds of the policy (PolicyConfig
    # fields, e.g. {"available_above": 0.7}), and the policy class to use.
    policy_config: str | None = field(default=None, metadata={"env": "POLICY_CONFIG"})
    policy_class: str = field(default="echofs.core.consistency:DefaultPolicy",
                              metadata={"env": "POLICY_CLASS"})

    # -- S3 endpoint (every master; echofs.s3) --
    # Port of the S3 endpoint: a number (0: any free port), or "off". Unset:
    # 9000 (any free port when the REST port is 0, as in tests); a default
    # port already taken is logged and skipped, a port given is required.
    s3_port: str | None = field(default=None, metadata={"env": "S3_PORT"})
    # Domains of virtual-host-style addressing: bucket.<domain>; comma list.
    s3_domain: str = field(default="s3.localhost,localhost", metadata={"env": "S3_DOMAIN"})
    # The region the endpoint reports and accepts in CreateBucket.
    s3_region: str = field(default="us-east-1", metadata={"env": "S3_REGION"})
    # HTTPS for the S3 endpoint: PEM certificate (chain) and key. Unset: HTTP.
    # Clients send their default trailing checksums over HTTPS only.
    s3_tls_cert: Path | None = field(default=None, metadata={"env": "S3_TLS_CERT"})
    s3_tls_key: Path | None = field(default=None, metadata={"env": "S3_TLS_KEY"})

    # -- chaos benchmark (fault proxies) --
    # gRPC port other processes use to reach this worker, when it differs
    # from the bound one: a fault proxy in front of it (default: GRPC_PORT).
    advertise_grpc_port: int | None = field(default=None,
                                            metadata={"env": "ADVERTISE_GRPC_PORT"})
    # Fault injection: every chunk this worker's store writes takes this
    # much longer (a slow disk). 0, the default, is off; only the chaos
    # benchmark's slow-disk scenario sets it (echofs.worker.stores.delayed).
    fault_store_put_delay_ms: float = field(default=0.0,
                                            metadata={"env": "FAULT_STORE_PUT_DELAY_MS"})

    # -- resumable upload sessions --
    # How long a session stays open; past it, its parts are dropped and their
    # chunks collected.
    upload_session_ttl: float = field(default=24 * 3600.0,
                                      metadata={"env": "UPLOAD_SESSION_TTL_SECONDS"})
    # Open sessions one user may have at once (0 = no limit).
    upload_sessions_per_user: int = field(default=100,
                                          metadata={"env": "UPLOAD_SESSIONS_PER_USER"})
    # Part size when the client names none, and the largest it may name.
    upload_part_size: int = field(default=16 * MIB, metadata={"env": "UPLOAD_PART_SIZE"})
    max_upload_part_size: int = field(default=256 * MIB,
                                      metadata={"env": "MAX_UPLOAD_PART_SIZE"})
    # How often each master looks for expired sessions.
    upload_session_sweep_interval: float = field(
        default=60.0, metadata={"env": "UPLOAD_SESSION_SWEEP_SECONDS"})

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
        if "database_url" not in values and env.get("DYNAMODB_FILES_TABLE"):
            # The original's way to choose DynamoDB: its table variables
            # alone (the URL's defaults and those variables fill the rest).
            values["database_url"] = "dynamodb://"
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def _role_names(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.role.split(",") if r.strip())

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(name) for name in self._role_names())

    # What this process runs. Role ``all`` is the embedded node: master,
    # controller and in-process workers, so it answers yes to the first two.

    @property
    def embedded(self) -> bool:
        return Role.ALL in self.roles

    @property
    def runs_master(self) -> bool:
        return bool(self.roles & {Role.ALL, Role.MASTER})

    @property
    def runs_controller(self) -> bool:
        return bool(self.roles & {Role.ALL, Role.CONTROLLER})

    @property
    def serves_controller(self) -> bool:
        """The controller with network faces of its own (gRPC, REST), not
        the one an embedded node calls in-process."""
        return Role.CONTROLLER in self.roles

    @property
    def serves_worker(self) -> bool:
        """A worker process serving one store over gRPC (not role ``all``'s
        in-process workers)."""
        return Role.WORKER in self.roles

    @property
    def opens_metadata(self) -> bool:
        return self.runs_master or self.runs_controller

    def validate(self) -> None:
        names = self._role_names()
        unknown = names - ROLES
        if not names or unknown:
            raise ValueError(f"unknown role(s) {', '.join(sorted(unknown)) or '(none)'}; "
                             f"choose from {', '.join(sorted(ROLES))}")
        if self.embedded and len(names) > 1:
            raise ValueError("role 'all' already includes master and workers; use it alone")
        validate_chunk_size(self.chunk_size)
        if self.workers < 1:
            raise ValueError("at least one worker is needed")
        if self.embedded and not 1 <= self.replication_factor <= self.workers:
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
        if not 0 < self.read_hedge_min_delay <= self.read_hedge_max_delay:
            raise ValueError("READ_HEDGE_MIN_DELAY must be > 0 and ≤ READ_HEDGE_MAX_DELAY")
        if self.chain_hop_timeout <= 0:
            raise ValueError("CHAIN_HOP_TIMEOUT must be > 0")
        if self.replication_orphan_after < 0:
            raise ValueError("REPLICATION_ORPHAN_AFTER must not be negative")
        if self.default_mode not in ("strong", "hybrid", "available"):
            raise ValueError("DEFAULT_MODE must be strong, hybrid or available")
        if self.confirm_samples < 1 or self.sample_interval <= 0:
            raise ValueError("CONFIRM_SAMPLES must be ≥ 1 and SAMPLE_INTERVAL > 0")
        if self.gc_pressure_grace <= 0:
            raise ValueError("GC_PRESSURE_GRACE_SECONDS must be positive")
        if self.store_reserve < 0 or self.metadata_reserve < 0:
            raise ValueError("STORE_RESERVE_BYTES and METADATA_RESERVE_BYTES must not be "
                             "negative")
        if not 0 <= self.store_reserve_percent < 100:
            raise ValueError("STORE_RESERVE_PERCENT must be in [0, 100)")
        if self.rate_limit_per_minute < 0:
            raise ValueError("RATE_LIMIT_PER_MINUTE must not be negative (0 = unlimited)")
        if min(self.http_header_timeout, self.http_body_idle_timeout,
               self.http_keepalive_timeout) <= 0:
            raise ValueError("HTTP_HEADER_TIMEOUT, HTTP_BODY_IDLE_TIMEOUT and "
                             "HTTP_KEEPALIVE_TIMEOUT must be positive")
        if self.http_max_connections is not None and self.http_max_connections < 1:
            raise ValueError("HTTP_MAX_CONNECTIONS must be at least 1 (unset: automatic)")
        if self.jwt_secret is not None:
            check_secret(self.jwt_secret)
        if self.auth_cache_seconds < 0:
            raise ValueError("AUTH_CACHE_SECONDS must not be negative")
        if self.login_limit_per_address < 0 or self.login_limit_per_account < 0:
            raise ValueError("LOGIN_LIMIT_PER_ADDRESS and LOGIN_LIMIT_PER_ACCOUNT must not be "
                             "negative (0 = no limit)")
        if self.password_hash_concurrency < 1 or self.password_hash_queue < 0:
            raise ValueError("PASSWORD_HASH_CONCURRENCY must be at least 1 and "
                             "PASSWORD_HASH_QUEUE not negative")
        if (self.s3_tls_cert is None) != (self.s3_tls_key is None):
            raise ValueError("S3_TLS_CERT and S3_TLS_KEY go together")
        raw_s3 = (self.s3_port or "").strip().lower()
        if raw_s3 and raw_s3 not in ("off", "none", "no", "false") and not (
                raw_s3.isdigit() and 0 <= int(raw_s3) <= 65535):
            raise ValueError("S3_PORT must be a port number (0: any free port) or 'off'")
        if self.serves_worker and not self.master_addresses:
            raise ValueError("the worker role needs a master to report to (--master HOST:PORT)")
        if self.serves_worker and not self.worker_id:
            raise ValueError("the worker role needs an id (--id or WORKER_ID)")
        if self.upload_session_ttl <= 0 or self.upload_session_sweep_interval <= 0:
            raise ValueError("UPLOAD_SESSION_TTL_SECONDS and UPLOAD_SESSION_SWEEP_SECONDS must "
                             "be positive")
        if self.upload_sessions_per_user < 0:
            raise ValueError("UPLOAD_SESSIONS_PER_USER must not be negative (0 = no limit)")
        if not 1 <= self.upload_part_size <= self.max_upload_part_size:
            raise ValueError("UPLOAD_PART_SIZE must be between 1 byte and "
                             "MAX_UPLOAD_PART_SIZE")

    @property
    def s3_listen_port(self) -> int | None:
        """The S3 port to bind: None when off (see ``s3_port``)."""
        raw = (self.s3_port or "").strip().lower()
        if raw in ("off", "none", "no", "false"):
            return None
        if not raw:
            return 0 if self.port == 0 else DEFAULT_S3_PORT
        return int(raw)

    @property
    def s3_port_required(self) -> bool:
        """A port the operator chose must bind; the default may be taken."""
        return bool((self.s3_port or "").strip()) or self.port == 0

    @property
    def s3_domains(self) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in self.s3_domain.split(",") if d.strip())

    @property
    def gc_grace_under_pressure(self) -> float:
        return min(self.gc_pressure_grace, self.gc_grace)

    @property
    def store_space_reserve(self) -> SpaceReserve:
        return SpaceReserve(self.store_reserve, self.store_reserve_percent)

    @property
    def metadata_space_reserve(self) -> SpaceReserve:
        return SpaceReserve(self.metadata_reserve)

    @property
    def metadata_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'metadata.db'}"

    @property
    def cache_url(self) -> str | None:
        """Redis URL of the shared cache, if one is configured."""
        if self.redis_url:
            return self.redis_url
        return f"redis://{self.redis_addr}/0" if self.redis_addr else None

    @property
    def master_addresses(self) -> list[str]:
        """The masters a worker reports to (``--master a:9080,b:9080``)."""
        return [a.strip() for a in self.master.split(",") if a.strip()]

    @property
    def master_grpc_port(self) -> int:
        return self.grpc_port or 9080

    @property
    def worker_grpc_port(self) -> int:
        return self.grpc_port or 9091

    @property
    def controller_rest_url(self) -> str | None:
        if self.controller_url:
            return self.controller_url
        if self.controller:
            host = self.controller.rpartition(":")[0] or "127.0.0.1"
            return f"http://{host}:{self.controller_http_port}"
        return None

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
