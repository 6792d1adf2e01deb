"""What masters report to the controller, and what it sends back — as plain
values shared by the in-process and gRPC transports."""

from __future__ import annotations

from dataclasses import dataclass, field

from echofs.core.consistency import WorkerHealth


@dataclass(frozen=True, slots=True)
class FileActivity:
    object_id: str
    write_rate: float
    workers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MasterReport:
    master_id: str
    interval: float
    replication_factor: int
    workers: tuple[WorkerHealth, ...] = ()
    queue_depth: int = 0
    oldest_age: float = 0.0
    files: tuple[FileActivity, ...] = ()


@dataclass(frozen=True, slots=True)
class ModeUpdate:
    """``snapshot`` replaces the receiver's table; otherwise entries are changes."""

    snapshot: bool
    modes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (mode, reason)
    default_mode: str = "strong"
