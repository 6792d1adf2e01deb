"""What a fault proxy can do to a link (:class:`Faults`), and the error for a
description that makes no sense. The faults themselves are applied by
:class:`~echofs.testing.fault_forwarding.FaultProxy`; their meaning is listed
in :mod:`echofs.testing.faultproxy`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

_MAX_LATENCY_MS = 60_000.0


class FaultError(ValueError):
    """A fault description that makes no sense (a 400 on the control endpoint)."""


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    stall_share: float = 0.0
    stall_ms: float = 0.0
    reset_share: float = 0.0
    bandwidth: float | None = None  # bytes per second per direction; None = unlimited
    blackhole: bool = False

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms", "stall_ms"):
            value = getattr(self, name)
            if not 0.0 <= value <= _MAX_LATENCY_MS:
                raise FaultError(f"{name} must be between 0 and {_MAX_LATENCY_MS:.0f}")
        if self.jitter_ms > self.latency_ms:
            raise FaultError("jitter_ms must not exceed latency_ms (no negative delays)")
        for name in ("stall_share", "reset_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FaultError(f"{name} must be between 0 and 1")
        if self.bandwidth is not None and self.bandwidth < 1024:
            raise FaultError("bandwidth must be at least 1024 bytes per second (or null)")

    @classmethod
    def from_json(cls, body: Any) -> Faults:
        if not isinstance(body, dict):
            raise FaultError("faults must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = set(body) - set(known)
        if unknown:
            raise FaultError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name == "blackhole":
                if not isinstance(value, bool):
                    raise FaultError("blackhole must be true or false")
            elif name == "bandwidth" and value is None:
                pass
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultError(f"{name} must be a number")
            else:
                value = float(value)
            values[name] = value
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self != Faults()
