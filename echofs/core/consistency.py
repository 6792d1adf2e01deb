"""Consistency modes and how they are decided — pure logic, no I/O.

Three modes (SPEC §3): ``strong`` (a write waits for a strict majority of its
placement targets), ``hybrid`` (one durable copy + durable repair queue, strict
reads) and ``available`` (one durable copy on any live worker, stale reads
allowed and flagged).

The controller feeds :class:`ModeDecider` one :class:`Sample` per file per
sample interval. The decider computes the policy's score, then applies, in
order of precedence:

1. critical keys — always ``strong``;
2. the global override — forces a mode on every non-critical file;
3. per-file hints ``strong``/``available`` — pin the file's mode;
4. emergency — partition risk above ``emergency_risk`` switches to
   ``available`` at once, without hysteresis (one way only);
5. the policy with hysteresis — a change needs ``confirm_samples``
   consecutive samples agreeing on the new mode, and ``cooldown`` seconds
   since the file's last change.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from echofs.core.vocabulary import Liveness


class Mode(enum.StrEnum):
    STRONG = "strong"
    HYBRID = "hybrid"
    AVAILABLE = "available"


class Hint(enum.StrEnum):
    AUTO = "auto"
    STRONG = "strong"
    AVAILABLE = "available"


class ModeReason(enum.StrEnum):
    """Why a file has its mode: which rule above decided it (a closed set; it
    travels to the masters with the mode and is shown in the controller's API)."""

    CRITICAL = "critical"
    OVERRIDE = "override"
    HINT = "hint"
    EMERGENCY = "emergency"
    POLICY = "policy"
    HOLD = "hold"  # no change this sample
    DEFAULT = "default"  # no decision for the file: the table's default applies


def parse_mode(value: str) -> Mode:
    try:
        return Mode(value.strip().lower())
    except ValueError:
        raise ValueError(f"mode must be one of strong, hybrid, available; got {value!r}") from None


def parse_hint(value: str) -> Hint:
    try:
        return Hint(value.strip().lower())
    except ValueError:
        raise ValueError(f"hint must be one of auto, strong, available; got {value!r}") from None


# -- partition risk ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    """What masters observed of one worker during the last interval."""

    worker_id: str
    liveness: Liveness
    rtt_ms: float = 0.0
    error_rate: float = 0.0  # failed / attempted calls, 0..1


def unhealthiness(health: WorkerHealth, *, slow_rtt_ms: float = 200.0) -> float:
    """0 (fine) .. 1 (unreachable) for one worker.

    A worker that is not alive counts fully; otherwise its error rate, and a
    latency beyond ``slow_rtt_ms`` (what makes quorum writes stall) counts up
    to a half.
    """
    if health.liveness != Liveness.ALIVE:
        return 1.0
    slowness = min(max(health.rtt_ms - slow_rtt_ms, 0.0) / slow_rtt_ms, 1.0) * 0.5
    return min(1.0, max(health.error_rate, slowness))


def failure_budget(replication_factor: int) -> int:
    """How many placement targets a strong write can lose and still reach its
    quorum (at least 1, so that RF 1 and 2 have a scale too)."""
    return max(1, replication_factor - (replication_factor // 2 + 1))


def partition_risk(unhealthy: Iterable[float], replication_factor: int) -> float:
    """Share of the file's failure budget its placement targets have spent.

    RF=3 tolerates one lost target: one unreachable target spends it all
    (risk 1.0: the next fault stops strong writes), a worker failing a fifth
    of its calls spends 0.2. RF=5 tolerates two: one lost target is 0.5.
    """
    spent = sum(sorted(unhealthy, reverse=True)[:replication_factor])
    return min(1.0, spent / failure_budget(replication_factor))


# -- policy ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """The inputs of one decision for one file."""

    partition_risk: float
    replication_lag: float  # seconds: age of the oldest queued repair
    write_rate: float  # writes per second to this file
    hint: Hint = Hint.AUTO


@dataclass(frozen=True)
class PolicyConfig:
    w_risk: float = 0.4
    w_lag: float = 0.3
    w_write_rate: float = 0.2
    w_hint: float = 0.1
    w_change_penalty: float = 0.2
    lag_scale: float = 1.0  # seconds of lag that count fully
    write_rate_scale: float = 100.0  # writes/s that count fully
    available_above: float = 0.6
    strong_below: float = 0.3
    penalty_window: float = 30.0  # seconds a recent change weighs against another


class Policy(abc.ABC):
    """Turns a sample into a score and a mode. Pluggable: the controller takes
    any implementation."""

    @abc.abstractmethod
    def score(self, sample: Sample, seconds_since_change: float | None) -> float: ...

    @abc.abstractmethod
    def mode_for(self, score: float) -> Mode: ...

    @property
    def settles_after(self) -> float | None:
        """Seconds after a file's last change from which its score no longer
        depends on that change (the score equals that of ``seconds_since_change
        = None``); None when the policy cannot promise that. Lets the decider
        hold the many files nobody writes without scoring each of them."""
        return None


class DefaultPolicy(Policy):
    """The original project's formula, with real inputs:

    score = 0.4·risk + 0.3·min(lag/1 s, 1) + 0.2·min(rate/100, 1) + 0.1·hint
            - 0.2·recent_change_penalty
    > 0.6 ⇒ available, < 0.3 ⇒ strong, else hybrid.
    """

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()

    def score(self, sample: Sample, seconds_since_change: float | None) -> float:
        c = self.config
        hint = {Hint.AVAILABLE: 1.0, Hint.STRONG: -1.0}.get(sample.hint, 0.0)
        penalty = 0.0
        if seconds_since_change is not None and c.penalty_window > 0:
            penalty = max(0.0, 1.0 - seconds_since_change / c.penalty_window)
        return (
            c.w_risk * sample.partition_risk
            + c.w_lag * min(sample.replication_lag / c.lag_scale, 1.0)
            + c.w_write_rate * min(sample.write_rate / c.write_rate_scale, 1.0)
            + c.w_hint * hint
            - c.w_change_penalty * penalty
        )

    @property
    def settles_after(self) -> float | None:
        return max(self.config.penalty_window, 0.0)

    def mode_for(self, score: float) -> Mode:
        if score > self.config.available_above:
            return Mode.AVAILABLE
        if score < self.config.strong_below:
            return Mode.STRONG
        return Mode.HYBRID


# -- decisions with hysteresis -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    mode: Mode
    reason: ModeReason
    score: float
    changed: bool
    previous: Mode


@dataclass
class FileState:
    mode: Mode
    changed_at: float | None = None
    candidate: Mode | None = None
    streak: int = 0


@dataclass(frozen=True)
class HysteresisConfig:
    confirm_samples: int = 3
    cooldown: float = 5.0
    emergency_risk: float = 0.8


@dataclass
class Controls:
    """The operator's levers: hints, critical keys, the global override."""

    hints: dict[str, Hint] = field(default_factory=dict)
    critical: set[str] = field(default_factory=set)
    override: Mode | None = None


class ModeDecider:
    def __init__(self, policy: Policy, config: HysteresisConfig | None = None,
                 default_mode: Mode = Mode.STRONG) -> None:
        self.policy = policy
        self.config = config or HysteresisConfig()
        self.default_mode = default_mode
        self.files: dict[str, FileState] = {}

    def restore(self, modes: Mapping[str, tuple[Mode, float | None]]) -> None:
        """Start from persisted modes (a controller restart)."""
        for object_id, (mode, changed_at) in modes.items():
            self.files[object_id] = FileState(mode, changed_at)

    def current(self, object_id: str) -> Mode:
        state = self.files.get(object_id)
        return state.mode if state else self.default_mode

    def decide(self, object_id: str, sample: Sample, controls: Controls, now: float) -> Decision:
        state = self.files.setdefault(object_id, FileState(self.default_mode))
        since = None if state.changed_at is None else now - state.changed_at
        score = self.policy.score(sample, since)
        forced = self.forced_lever(object_id, controls)
        if forced is not None:
            mode, reason = forced
            state.candidate, state.streak = None, 0
            return self._apply(state, mode, reason, score, now)
        if sample.partition_risk > self.config.emergency_risk and state.mode != Mode.AVAILABLE:
            state.candidate, state.streak = None, 0
            return self._apply(state, Mode.AVAILABLE, ModeReason.EMERGENCY, score, now)
        wanted = self.policy.mode_for(score)
        if wanted == state.mode:
            state.candidate, state.streak = None, 0
            return Decision(state.mode, ModeReason.HOLD, score, False, state.mode)
        if wanted == state.candidate:
            state.streak += 1
        else:
            state.candidate, state.streak = wanted, 1
        cooled = since is None or since >= self.config.cooldown
        if state.streak >= self.config.confirm_samples and cooled:
            state.candidate, state.streak = None, 0
            return self._apply(state, wanted, ModeReason.POLICY, score, now)
        return Decision(state.mode, ModeReason.HOLD, score, False, state.mode)

    def resting(self, sample: Sample) -> Mode | None:
        """The mode in which a settled file (see :meth:`at_rest`) stays under
        ``sample`` with no lever on it; None when that cannot be told without
        deciding file by file (the policy does not settle, or the sample is
        an emergency, which moves every file not already available)."""
        if self.policy.settles_after is None:
            return None
        if sample.partition_risk > self.config.emergency_risk:
            return None
        return self.policy.mode_for(self.policy.score(sample, None))

    def at_rest(self, object_id: str, resting: Mode, now: float) -> bool:
        """Whether :meth:`decide`, given the sample :meth:`resting` answered
        ``resting`` for and no lever on this file, would hold its mode and
        change none of its state: it is in that mode, wants no other, and its
        last change no longer weighs on its score. The controller asks this
        of the files no one wrote this round instead of scoring each."""
        state = self.files.get(object_id)
        if state is None or state.mode != resting or state.candidate is not None:
            return False
        settles_after = self.policy.settles_after
        return settles_after is not None and (
            state.changed_at is None or now - state.changed_at >= settles_after)

    def forced_lever(self, object_id: str,
                     controls: Controls) -> tuple[Mode, ModeReason] | None:
        if object_id in controls.critical:
            return Mode.STRONG, ModeReason.CRITICAL
        if controls.override is not None:
            return controls.override, ModeReason.OVERRIDE
        hint = controls.hints.get(object_id, Hint.AUTO)
        if hint is not Hint.AUTO:
            return Mode(hint.value), ModeReason.HINT
        return None

    def force(self, object_id: str, controls: Controls, now: float) -> Decision | None:
        """Apply an operator's lever to a file at once (no sample needed)."""
        forced = self.forced_lever(object_id, controls)
        if forced is None:
            return None
        state = self.files.setdefault(object_id, FileState(self.default_mode))
        return self._apply(state, forced[0], forced[1], float("nan"), now)

    @staticmethod
    def _apply(state: FileState, mode: Mode, reason: ModeReason, score: float,
               now: float) -> Decision:
        previous = state.mode
        if mode == previous:
            return Decision(mode, ModeReason.HOLD, score, False, previous)
        state.mode = mode
        state.changed_at = now
        return Decision(mode, reason, score, True, previous)
