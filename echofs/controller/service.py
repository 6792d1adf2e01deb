"""The consistency controller: turns masters' measurements into per-file modes.

Every sample interval it merges the latest report of each master, estimates
each worker's unhealthiness (decaying, so a worker that just came back still
weighs a little for a few seconds), computes each file's partition risk over
the workers its writes go to, and asks the :class:`ModeDecider` for a
decision. Changes are persisted with their audit entry (time, file, from, to,
reason, score, signals) and streamed to every watching master.

Operators' levers (hints, critical keys, the global override) are persisted
and take effect at once.

Two rules keep modes from following a link that flaps:

- A file moved to ``available`` in an emergency stays there while the
  emergency lasts: the policy's score subtracts a recent-change penalty, so
  right after the move it asks for strong again whatever the risk, and
  without this rule the file would bounce strong → available at every
  cooldown for as long as the partition lasts.
- Route flap damping (after RFC 2439), per file: each time the file's
  partition risk rises into an emergency adds one to its flap penalty,
  which halves every ``_FILE_FLAP_HALF_LIFE`` seconds; from ``_SUPPRESS_AT`` on the file is
  suppressed — it is scored as if its targets were still cut off, so it
  stays available — until the penalty is back under ``_REUSE_BELOW`` and
  no worker flaps any more. A worker flaps from the moment its own penalty
  (one per turn to unhealthy, halving every ``_WORKER_FLAP_HALF_LIFE``
  seconds) reaches ``_SUPPRESS_AT`` until it is back under ``_REUSE_BELOW``
  (between two cuts of a flapping link it dips, but not that far); a file
  whose risk rises into an emergency while a worker flaps is suppressed at
  once. A single partition (penalty 1) is
  untouched; a second one soon after the first marks the link as flapping.
  (A file's own risk shows the flapping only now and then: while workers
  are cut off its writes go to live ones, so its targets look healthy the
  moment after each cut.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from echofs.controller.signals import MasterReport, ModeUpdate
from echofs.core.consistency import (
    Controls,
    Decision,
    Hint,
    Mode,
    ModeDecider,
    ModeReason,
    Sample,
    partition_risk,
    unhealthiness,
)
from echofs.core.vocabulary import Role
from echofs.daemon import Daemon
from echofs.metadata.consistency import ConsistencyRepository, Transition, signals_summary
from echofs.observability import metrics

log = logging.getLogger(__name__)

# A master's report counts for this many intervals; older ones are ignored.
_REPORT_TTL_INTERVALS = 3.0
# Half-life (seconds) of a worker's remembered unhealthiness.
_RISK_HALF_LIFE = 2.0
# Per-file flap damping (see the module docstring).
_FILE_FLAP_HALF_LIFE = 10.0
_SUPPRESS_AT = 1.5
_REUSE_BELOW = 1.0
_WORKER_FLAP_HALF_LIFE = 5.0
# Observed unhealthiness from which a worker counts as down (an unreachable
# one is 1.0; a slow one at most 0.5).
_DOWN_AT = 0.75
# Files the controller keeps scoring although no longer written: all it has
# decided on (so they can return to strong), capped for memory.
_MAX_TRACKED = 100_000


@dataclass(frozen=True, slots=True)
class ModeInfo:
    object_id: str
    mode: str
    reason: str
    score: float | None
    changed_at: float | None


class ControllerService(Daemon):
    name = "controller"

    def __init__(self, store: ConsistencyRepository, decider: ModeDecider, *,
                 sample_interval: float, replication_factor: int) -> None:
        super().__init__(sample_interval)
        self.store = store
        self.decider = decider
        self.replication_factor = replication_factor
        self.controls = Controls()
        self._reports: dict[str, tuple[float, MasterReport]] = {}
        self._worker_risk: dict[str, tuple[float, float]] = {}  # id -> (value, at)
        # worker id -> (flap penalty, at, down at the last sample, flapping)
        self._worker_flaps: dict[str, tuple[float, float, bool, bool]] = {}
        self._flapping: list[str] = []  # as of the last sample
        # file id -> (flap penalty, at, suppressed, in an emergency at the last sample)
        self._file_flaps: dict[str, tuple[float, float, bool, bool]] = {}
        self._info: dict[str, ModeInfo] = {}
        # Table entries changed since the last broadcast.
        self._pending: dict[str, tuple[str, str]] = {}
        self._watchers: set[asyncio.Queue[ModeUpdate]] = set()
        self._lock = asyncio.Lock()
        self.last_signals: dict[str, float] = {}
        self.started_at = time.time()

    # -- lifecycle -------------------------------------------------------------

    async def load(self) -> None:
        """Restore everything persisted: modes, hints, critical keys, override."""
        stored = await self.store.modes()
        self.decider.restore({m.object_id: (Mode(m.mode), m.changed_at) for m in stored})
        self._info = {m.object_id: ModeInfo(m.object_id, m.mode, m.reason, m.score,
                                            m.changed_at) for m in stored}
        self.controls.hints = {k: Hint(v) for k, v in (await self.store.hints()).items()}
        self.controls.critical = await self.store.critical_keys()
        override = await self.store.override()
        self.controls.override = Mode(override) if override else None
        # Levers apply to their files from the start (their entries may not be
        # in the persisted modes if they never changed a mode).
        await self._force([*self.controls.critical, *self.controls.hints])
        log.info("controller loaded %d modes, %d hints, %d critical keys, override %s",
                 len(stored), len(self.controls.hints), len(self.controls.critical),
                 override or "none")

    # -- signals in --------------------------------------------------------------

    async def report(self, report: MasterReport) -> None:
        self._reports[report.master_id] = (time.monotonic(), report)

    def _current_reports(self) -> list[MasterReport]:
        now = time.monotonic()
        fresh = []
        for master_id, (at, report) in list(self._reports.items()):
            if now - at <= _REPORT_TTL_INTERVALS * max(report.interval, self.interval):
                fresh.append(report)
            else:
                del self._reports[master_id]
        return fresh

    def _worker_unhealthiness(self, reports: list[MasterReport], now: float) -> dict[str, float]:
        observed: dict[str, float] = {}
        for report in reports:
            for health in report.workers:
                value = unhealthiness(health)
                observed[health.worker_id] = max(observed.get(health.worker_id, 0.0), value)
        self._count_worker_flaps(observed, now)
        current: dict[str, float] = {}
        for worker_id in observed.keys() | self._worker_risk.keys():
            previous, at = self._worker_risk.get(worker_id, (0.0, now))
            decayed = previous * math.pow(0.5, (now - at) / _RISK_HALF_LIFE)
            value = max(observed.get(worker_id, 0.0), decayed)
            if worker_id in observed or value > 0.01:
                current[worker_id] = value
                self._worker_risk[worker_id] = (value, now)
            else:
                self._worker_risk.pop(worker_id, None)
        return current

    def _count_worker_flaps(self, observed: dict[str, float], now: float) -> None:
        for worker_id in observed.keys() | self._worker_flaps.keys():
            penalty, at, was_down, flapping = self._worker_flaps.get(
                worker_id, (0.0, now, False, False))
            penalty *= math.pow(0.5, (now - at) / _WORKER_FLAP_HALF_LIFE)
            down = observed.get(worker_id, 0.0) >= _DOWN_AT
            if down and not was_down:
                penalty += 1.0
            flapping = penalty >= _SUPPRESS_AT or (flapping and penalty >= _REUSE_BELOW)
            if penalty < 0.05 and not down:
                self._worker_flaps.pop(worker_id, None)
            else:
                self._worker_flaps[worker_id] = (penalty, now, down, flapping)
        self._flapping = sorted(w for w, flap in self._worker_flaps.items() if flap[3])

    def _suppressed(self, object_id: str, risk: float, now: float) -> bool:
        """Count the file's rises into an emergency and say whether its
        return to stricter modes is held back (it flapped)."""
        emergency = risk > self.decider.config.emergency_risk
        known = self._file_flaps.get(object_id)
        if known is None and not emergency:
            return False
        penalty, at, suppressed, was = known or (0.0, now, False, False)
        penalty *= math.pow(0.5, (now - at) / _FILE_FLAP_HALF_LIFE)
        flapping = bool(self._flapping)
        if emergency and not was:
            penalty += 1.0
            suppressed = suppressed or penalty >= _SUPPRESS_AT or flapping
        elif suppressed and penalty < _REUSE_BELOW and not flapping:
            suppressed = False
        if penalty < 0.05 and not suppressed and not emergency:
            del self._file_flaps[object_id]
        else:
            self._file_flaps[object_id] = (penalty, now, suppressed, emergency)
        return suppressed

    def _decide(self, object_id: str, sample: Sample, now: float) -> Decision:
        """The decider's decision, except that a file already moved to
        available stays there while the emergency lasts, and a file that
        flapped is scored as still at risk (see the module docstring); a
        lever still wins."""
        if self._suppressed(object_id, sample.partition_risk, now):
            sample = dataclasses.replace(sample, partition_risk=1.0)
        return self._decide_held(object_id, sample, now)

    def _decide_held(self, object_id: str, sample: Sample, now: float) -> Decision:
        current = self.decider.current(object_id)
        if (sample.partition_risk > self.decider.config.emergency_risk
                and current is Mode.AVAILABLE
                and self.decider.forced_lever(object_id, self.controls) is None):
            state = self.decider.files.get(object_id)
            if state is not None:
                state.candidate, state.streak = None, 0
            return Decision(current, ModeReason.HOLD, math.nan, False, current)
        return self.decider.decide(object_id, sample, self.controls, now)

    # -- decisions -----------------------------------------------------------------

    async def run_once(self) -> list[Decision]:
        now = time.time()
        reports = self._current_reports()
        risk_by_worker = self._worker_unhealthiness(reports, now)
        lag = max((r.oldest_age for r in reports if r.queue_depth), default=0.0)
        rf = max((r.replication_factor for r in reports), default=self.replication_factor)
        rates: dict[str, float] = {}
        workers_of: dict[str, set[str]] = {}
        for report in reports:
            for activity in report.files:
                rates[activity.object_id] = rates.get(activity.object_id, 0.0) + \
                    activity.write_rate
                workers_of.setdefault(activity.object_id, set()).update(activity.workers)
        everyone = list(risk_by_worker)
        cluster_risk = partition_risk(risk_by_worker.values(), rf) if everyone else 0.0
        self.last_signals = {"cluster_partition_risk": cluster_risk, "replication_lag": lag,
                             "masters": float(len(reports))}
        files = list(dict.fromkeys([*rates, *list(self.decider.files)[:_MAX_TRACKED]]))
        # Every file no one wrote this round sees the same sample (its writes
        # would go to any worker); most of them are at rest in the mode that
        # sample keeps them in, and are held without being scored one by one.
        resting = (None if self.controls.override is not None else
                   self.decider.resting(Sample(cluster_risk, lag, 0.0)))
        changes: list[tuple[Decision, Transition]] = []
        async with self._lock:
            for object_id in files:
                if resting is not None and object_id not in rates and \
                        self._at_rest(object_id, resting, now):
                    continue
                targets = workers_of.get(object_id) or everyone
                risk = partition_risk((risk_by_worker.get(w, 0.0) for w in targets), rf)
                hint = self.controls.hints.get(object_id, Hint.AUTO)
                sample = Sample(risk, lag, rates.get(object_id, 0.0), hint)
                decision = self._decide(object_id, sample, now)
                self._note(object_id, decision, now)
                if decision.changed:
                    signals = signals_summary({
                        "partition_risk": risk, "replication_lag": lag,
                        "write_rate": sample.write_rate, "hint": hint.value,
                        "unhealthy_workers": {w: round(v, 3) for w, v in
                                              risk_by_worker.items() if v > 0},
                    })
                    changes.append((decision, self._transition(object_id, decision, now,
                                                               signals)))
            await self._publish(changes)
        return [d for d, _ in changes]

    _FORCED = ("critical", "override", "hint")

    def _at_rest(self, object_id: str, resting: Mode, now: float) -> bool:
        if object_id in self.controls.critical or object_id in self.controls.hints:
            return False
        known = self._info.get(object_id)
        # A file whose recorded reason is a lever just lifted is re-noted once.
        if known is None or known.reason in self._FORCED:
            return False
        return self.decider.at_rest(object_id, resting, now)

    def _note(self, object_id: str, decision: Decision, now: float) -> None:
        """Keep the table masters mirror: every tracked file's mode and why,
        including forced modes that did not change (a critical file while an
        override stands must still read 'strong' on every master)."""
        known = self._info.get(object_id)
        if decision.changed or decision.reason in self._FORCED:
            reason = decision.reason
        elif known is None or known.reason in self._FORCED:
            reason = "policy"  # no lever holds it any more
        else:
            reason = known.reason
        entry = (decision.mode.value, reason)
        if known is not None and (known.mode, known.reason) == entry:
            return
        score = None if math.isnan(decision.score) else round(decision.score, 4)
        changed_at = now if decision.changed or known is None else known.changed_at
        self._info[object_id] = ModeInfo(object_id, entry[0], entry[1], score, changed_at)
        self._pending[object_id] = entry

    def _transition(self, object_id: str, decision: Decision, now: float,
                    signals: dict[str, object]) -> Transition:
        score = None if math.isnan(decision.score) else round(decision.score, 4)
        return Transition(0, now, object_id, decision.previous.value, decision.mode.value,
                          decision.reason, score, signals)

    async def _publish(self, changes: list[tuple[Decision, Transition]]) -> None:
        transitions = [t for _, t in changes]
        if transitions:
            await self.store.record_transitions(transitions)
        for t in transitions:
            log.info("mode of %s: %s -> %s (%s, score %s)", t.object_id, t.from_mode,
                     t.to_mode, t.reason, t.score)
            metrics.MODE_TRANSITIONS.labels(t.from_mode, t.to_mode, t.reason).inc()
        if self._pending:
            update, self._pending = dict(self._pending), {}
            self._broadcast(ModeUpdate(False, update, self.default_mode))

    def _broadcast(self, update: ModeUpdate) -> None:
        for queue in list(self._watchers):
            queue.put_nowait(update)

    @property
    def default_mode(self) -> str:
        """Mode for files with no decision yet: the override, or DEFAULT_MODE."""
        return (self.controls.override or self.decider.default_mode).value

    # -- modes out -------------------------------------------------------------------

    def snapshot(self) -> ModeUpdate:
        return ModeUpdate(True, {k: (v.mode, v.reason) for k, v in self._info.items()},
                          self.default_mode)

    async def watch(self) -> AsyncIterator[ModeUpdate]:
        """The snapshot, then every change, for as long as the caller listens."""
        queue: asyncio.Queue[ModeUpdate] = asyncio.Queue()
        self._watchers.add(queue)
        try:
            yield self.snapshot()
            while True:
                yield await queue.get()
        finally:
            self._watchers.discard(queue)

    def mode_of(self, object_id: str) -> ModeInfo:
        known = self._info.get(object_id)
        if known is not None:
            return known
        return ModeInfo(object_id, self.default_mode, "default", None, None)

    # -- operators' levers -----------------------------------------------------------

    async def _force(self, object_ids: list[str]) -> None:
        now = time.time()
        changes = []
        for object_id in object_ids:
            decision = self.decider.force(object_id, self.controls, now)
            if decision is None:
                continue
            # force() reports 'hold' for an unchanged mode; keep the lever's name.
            forced = self.decider.forced_lever(object_id, self.controls)
            if forced is not None and not decision.changed:
                decision = Decision(decision.mode, forced[1], decision.score, False,
                                    decision.previous)
            self._note(object_id, decision, now)
            if decision.changed:
                changes.append((decision, self._transition(
                    object_id, decision, now, {"lever": decision.reason})))
        await self._publish(changes)

    async def set_hint(self, object_id: str, hint: Hint) -> None:
        async with self._lock:
            await self.store.set_hint(object_id, hint.value)
            if hint is Hint.AUTO:
                self.controls.hints.pop(object_id, None)
            else:
                self.controls.hints[object_id] = hint
            await self._force([object_id])

    async def set_override(self, mode: Mode | None) -> None:
        async with self._lock:
            await self.store.set_override(mode.value if mode else None)
            self.controls.override = mode
            await self._force(list(self.decider.files))
            # Files without a decision follow the new default right away.
            self._broadcast(ModeUpdate(False, {}, self.default_mode))

    async def add_critical(self, keys: list[str]) -> None:
        async with self._lock:
            await self.store.add_critical_keys(keys)
            self.controls.critical.update(keys)
            await self._force(keys)

    async def remove_critical(self, keys: list[str]) -> None:
        async with self._lock:
            await self.store.remove_critical_keys(keys)
            self.controls.critical.difference_update(keys)

    def status(self) -> dict[str, object]:
        counts = {m.value: 0 for m in Mode}
        for info in self._info.values():
            counts[info.mode] = counts.get(info.mode, 0) + 1
        return {
            "status": "ok", "role": Role.CONTROLLER, "uptime_seconds": round(time.time() -
                                                                          self.started_at, 1),
            "files_tracked": len(self.decider.files), "modes": counts,
            "override": self.controls.override.value if self.controls.override else None,
            "critical_keys": len(self.controls.critical), "hints": len(self.controls.hints),
            "signals": {k: round(v, 4) for k, v in self.last_signals.items()},
            "flapping_workers": self._flapping,
            "files_suppressed": sum(1 for f in self._file_flaps.values() if f[2]),
            "worker_unhealthiness": {w: round(v, 4) for w, (v, _) in self._worker_risk.items()},
            "masters_reporting": len(self._reports), "watchers": len(self._watchers),
            "sample_interval": self.interval,
            "confirm_samples": self.decider.config.confirm_samples,
            "cooldown": self.decider.config.cooldown,
        }

