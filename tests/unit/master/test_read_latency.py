"""The hedging delay: a worker's recent p99 read latency, clamped; and the
lagging replicas reads try last."""

from __future__ import annotations

from echofs.master.read_latency import ReadLatencies


def test_the_delay_is_the_recent_p99_within_the_clamp():
    latencies = ReadLatencies(min_delay=0.02, max_delay=1.0)
    # Too little known: the upper bound.
    assert latencies.hedge_delay("w1") == 1.0
    for ms in range(1, 101):  # 1 .. 100 ms
        latencies.observe("w1", ms / 1000)
    assert latencies.hedge_delay("w1") == 0.1  # p99 of the 64 most recent
    for _ in range(64):
        latencies.observe("w2", 0.001)
        latencies.observe("w3", 5.0)
    assert latencies.hedge_delay("w2") == 0.02
    assert latencies.hedge_delay("w3") == 1.0


def test_a_hedged_around_worker_is_read_last_until_it_answers():
    latencies = ReadLatencies(min_delay=0.02, max_delay=1.0)
    assert latencies.order(["w1", "w2", "w3"]) == ["w1", "w2", "w3"]
    latencies.note_lagging("w1")
    assert latencies.order(["w1", "w2", "w3"]) == ["w2", "w3", "w1"]
    latencies.observe("w1", 0.004)
    assert latencies.order(["w1", "w2", "w3"]) == ["w1", "w2", "w3"]


def test_typical_latency_is_the_recent_median_once_there_are_enough_reads():
    latencies = ReadLatencies(min_delay=0.02, max_delay=1.0)
    assert latencies.typical("w1") is None
    for seconds in (0.001, 0.002, 0.003, 0.5):
        latencies.observe("w1", seconds)
    assert latencies.typical("w1") is None  # too few to say
    latencies.observe("w1", 0.004)
    assert latencies.typical("w1") == 0.003  # one slow read does not move it
