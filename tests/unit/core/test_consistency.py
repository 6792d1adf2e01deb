"""The consistency policy: the original's formula, hysteresis, emergency,
and the precedence of critical keys, override and hints."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

from echofs.core.consistency import (
    Controls,
    DefaultPolicy,
    FileState,
    Hint,
    HysteresisConfig,
    Mode,
    ModeDecider,
    ModeReason,
    Sample,
    WorkerHealth,
    parse_hint,
    parse_mode,
    partition_risk,
    unhealthiness,
)
from echofs.core.vocabulary import Liveness


def test_score_is_the_original_formula():
    policy = DefaultPolicy()
    sample = Sample(partition_risk=0.5, replication_lag=0.5, write_rate=50, hint=Hint.AVAILABLE)
    expected = 0.4 * 0.5 + 0.3 * 0.5 + 0.2 * 0.5 + 0.1 * 1
    assert math.isclose(policy.score(sample, None), expected)
    # Inputs saturate at 1, and a change right now costs the full 0.2 penalty.
    big = Sample(partition_risk=1.0, replication_lag=30, write_rate=10_000)
    assert math.isclose(policy.score(big, 0.0), 0.4 + 0.3 + 0.2 - 0.2)
    # The penalty fades over the window.
    assert math.isclose(policy.score(big, 15.0), 0.9 - 0.1)
    assert math.isclose(policy.score(Sample(0, 0, 0, Hint.STRONG), None), -0.1)


@pytest.mark.parametrize(("score", "mode"), [(0.61, Mode.AVAILABLE), (0.6, Mode.HYBRID),
                                             (0.3, Mode.HYBRID), (0.29, Mode.STRONG)])
def test_thresholds(score, mode):
    assert DefaultPolicy().mode_for(score) is mode


def test_partition_risk_spends_the_failure_budget():
    assert partition_risk([0, 0, 0], 3) == 0
    assert partition_risk([1, 0, 0], 3) == 1.0  # no margin left for strong writes
    assert partition_risk([0.2, 0, 0], 3) == pytest.approx(0.2)
    assert partition_risk([1, 0, 0, 0, 0], 5) == 0.5
    assert partition_risk([1, 1, 0, 0, 0], 5) == 1.0


def test_unhealthiness():
    assert unhealthiness(WorkerHealth("w", Liveness.DEAD)) == 1.0
    assert unhealthiness(WorkerHealth("w", Liveness.SUSPECT)) == 1.0
    assert unhealthiness(WorkerHealth("w", Liveness.ALIVE, rtt_ms=1, error_rate=0.25)) == 0.25
    assert unhealthiness(WorkerHealth("w", Liveness.ALIVE, rtt_ms=400)) == 0.5
    assert unhealthiness(WorkerHealth("w", Liveness.ALIVE, rtt_ms=5)) == 0.0
    # Over gRPC the liveness arrives as its plain string: the same answer.
    assert unhealthiness(WorkerHealth("w", "alive", rtt_ms=5)) == 0.0  # type: ignore[arg-type]


def _decider(**kw) -> ModeDecider:
    return ModeDecider(DefaultPolicy(), HysteresisConfig(confirm_samples=3, cooldown=5, **kw))


HIGH = Sample(partition_risk=0.7, replication_lag=2, write_rate=100)  # score 0.78
LOW = Sample(partition_risk=0, replication_lag=0, write_rate=0)  # score 0


def test_change_needs_confirm_samples():
    decider, controls = _decider(), Controls()
    decisions = [decider.decide("f", HIGH, controls, now=100 + i) for i in range(3)]
    assert [d.changed for d in decisions] == [False, False, True]
    assert decisions[-1].mode is Mode.AVAILABLE and decisions[-1].reason is ModeReason.POLICY


def test_oscillating_signal_causes_no_flapping():
    decider, controls = _decider(), Controls()
    changes = 0
    for i in range(200):
        sample = HIGH if i % 2 else LOW
        changes += decider.decide("f", sample, controls, now=float(i)).changed
    assert changes == 0
    assert decider.current("f") is Mode.STRONG


def test_cooldown_delays_a_second_change():
    decider, controls = _decider(), Controls()
    for i in range(3):
        decider.decide("f", HIGH, controls, now=float(i))
    assert decider.current("f") is Mode.AVAILABLE  # changed at t=2
    # Strong signals right away: confirmed after 3 samples, but cooldown (5 s
    # since the change) and the change penalty hold it until later.
    times = [d for d in range(3, 40) if decider.decide("f", LOW, controls, now=float(d)).changed]
    assert times and times[0] >= 2 + 5
    assert decider.current("f") is Mode.STRONG


def test_emergency_bypasses_hysteresis_one_way_only():
    decider, controls = _decider(), Controls()
    storm = Sample(partition_risk=0.9, replication_lag=0, write_rate=0)
    first = decider.decide("f", storm, controls, now=0.0)
    assert first.changed and first.mode is Mode.AVAILABLE and first.reason is ModeReason.EMERGENCY
    # Recovery goes through hysteresis: not on the first calm sample.
    back = [decider.decide("f", LOW, controls, now=10.0 + i) for i in range(5)]
    assert [d.changed for d in back].index(True) >= 2
    assert back[-1].mode is Mode.STRONG or decider.current("f") is Mode.STRONG


def test_critical_keys_win_over_override_emergency_and_hints():
    decider = _decider()
    controls = Controls(hints={"f": Hint.AVAILABLE}, critical={"f"}, override=Mode.AVAILABLE)
    storm = Sample(partition_risk=1.0, replication_lag=10, write_rate=1000)
    decision = decider.decide("f", storm, controls, now=0.0)
    assert decision.mode is Mode.STRONG and not decision.changed  # strong is the default
    assert decider.decide("g", storm, controls, now=0.0).reason is ModeReason.OVERRIDE


def test_override_forces_and_clearing_returns_to_policy():
    decider = _decider()
    controls = Controls(override=Mode.AVAILABLE)
    assert decider.decide("f", LOW, controls, now=0.0).reason is ModeReason.OVERRIDE
    assert decider.current("f") is Mode.AVAILABLE
    controls.override = None
    modes = [decider.decide("f", LOW, controls, now=10.0 + i).mode for i in range(4)]
    assert modes[-1] is Mode.STRONG


def test_hint_pins_a_mode_even_in_an_emergency():
    decider = _decider()
    controls = Controls(hints={"f": Hint.STRONG})
    storm = Sample(partition_risk=1.0, replication_lag=10, write_rate=1000)
    assert decider.decide("f", storm, controls, now=0.0).mode is Mode.STRONG
    assert decider.decide("auto-file", storm, controls, now=0.0).mode is Mode.AVAILABLE


def test_force_applies_levers_at_once():
    decider = _decider()
    decision = decider.force("f", Controls(override=Mode.HYBRID), now=1.0)
    assert decision is not None and decision.changed and decision.mode is Mode.HYBRID
    assert decider.force("f", Controls(), now=2.0) is None


def test_restore_continues_from_persisted_modes():
    decider = _decider()
    decider.restore({"f": (Mode.AVAILABLE, 50.0)})
    assert decider.current("f") is Mode.AVAILABLE
    assert decider.current("unknown") is Mode.STRONG


def test_parsing():
    assert parse_mode(" Strong ") is Mode.STRONG
    assert parse_hint("auto") is Hint.AUTO
    with pytest.raises(ValueError):
        parse_mode("eventual")
    with pytest.raises(ValueError):
        parse_hint("")


def test_a_file_at_rest_is_exactly_one_decide_would_hold() -> None:
    # The controller skips scoring files "at rest"; that is only sound if
    # decide() would have held them and changed nothing. Checked over many
    # random histories and samples.
    rng = random.Random(7)
    modes = list(Mode)
    for _ in range(3000):
        decider = ModeDecider(DefaultPolicy(), HysteresisConfig(confirm_samples=2, cooldown=2.0))
        now = 1000.0
        for _ in range(rng.randrange(0, 6)):  # some history
            now += rng.choice([0.5, 1.0, 10.0, 40.0])
            decider.decide("f", Sample(rng.random(), rng.random() * 2, rng.random() * 200),
                           Controls(), now)
        if rng.random() < 0.3:
            decider.files["f"] = FileState(rng.choice(modes), rng.choice([None, now - 5.0]))
        now += rng.choice([0.0, 1.0, 29.0, 31.0, 100.0])
        sample = Sample(rng.random(), rng.random() * 2, 0.0)
        resting = decider.resting(sample)
        if resting is None or not decider.at_rest("f", resting, now):
            continue
        before = dataclasses.replace(decider.files["f"])
        decision = decider.decide("f", sample, Controls(), now)
        assert not decision.changed and decision.mode == resting
        assert decider.files["f"] == before
