"""The words the roles share, as types rather than free strings.

Each is a :class:`enum.StrEnum`: a member *is* its string, so it crosses
JSON, gRPC and the database unchanged, while code that names one gets a
typo caught at import instead of a branch that silently never matches.
(:class:`~echofs.core.consistency.Mode` and ``Hint`` live with the policy
that decides them.)
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """What ``echofs serve --role`` can start (comma-separated, or ``all``)."""

    ALL = "all"
    MASTER = "master"
    WORKER = "worker"
    CONTROLLER = "controller"


class Liveness(enum.StrEnum):
    """A worker as a master's membership sees it."""

    ALIVE = "alive"  # heartbeats arrive and recent calls succeed
    SUSPECT = "suspect"  # heartbeats late or recent calls failing: likely back soon
    DEAD = "dead"  # silent past DEAD_AFTER: its copies are re-homed
    UNKNOWN = "unknown"  # named by the metadata, never heard from


class ChunkState(enum.StrEnum):
    """A chunk's row in the metadata store."""

    LIVE = "live"
    DELETING = "deleting"  # claimed by the collector; never referenced again


class Verdict(enum.StrEnum):
    """A worker's answer when asked to verify one copy against its id."""

    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"


class ReplicationReason(enum.StrEnum):
    """Why a copy was queued for a worker (kept with the task, shown in logs)."""

    UNDER_REPLICATED = "under_replicated"  # a strong write's late or failed copy
    DEFERRED_COPY = "deferred_copy"  # hybrid: one copy now, the others owed
    HINTED_HANDOFF = "hinted_handoff"  # available: stored off its targets
    REHOME = "rehome"  # its holder is dead
    SCRUB_MISSING = "scrub_missing"
    SCRUB_CORRUPT = "scrub_corrupt"
    READ_REPAIR_MISSING = "read_repair_missing"
    READ_REPAIR_CORRUPT = "read_repair_corrupt"

    @classmethod
    def scrub(cls, verdict: Verdict) -> ReplicationReason:
        return cls(f"scrub_{verdict.value}")

    @classmethod
    def read_repair(cls, verdict: Verdict) -> ReplicationReason:
        return cls(f"read_repair_{verdict.value}")
