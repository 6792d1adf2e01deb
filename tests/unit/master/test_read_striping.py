"""Which replica each chunk of a download asks first: the rotation over the
healthy replicas, and the unhealthy ones kept at the back in their order."""

from __future__ import annotations

from echofs.master.read_striping import stripe_base, striped_order

ALL = ("w1", "w2", "w3")


def _healthy(*ids: str):  # type: ignore[no-untyped-def]
    return lambda worker_id: worker_id in ids


def test_consecutive_chunks_start_at_consecutive_replicas():
    # The read order (by RTT) is w2, w3, w1; the rotation is by id, so it
    # does not move when an RTT estimate does.
    firsts = [striped_order(["w2", "w3", "w1"], seq, _healthy(*ALL))[0] for seq in range(6)]
    assert firsts == ["w1", "w2", "w3", "w1", "w2", "w3"]


def test_every_replica_stays_in_the_order_for_failover():
    for seq in range(5):
        order = striped_order(["w3", "w1", "w2"], seq, _healthy(*ALL))
        assert sorted(order) == list(ALL)


def test_unhealthy_replicas_stay_at_the_back_in_their_order():
    # w2 is suspect (or lagging): never asked first, still tried last.
    orders = [striped_order(["w1", "w3", "w2"], seq, _healthy("w1", "w3")) for seq in range(4)]
    assert orders == [["w1", "w3", "w2"], ["w3", "w1", "w2"],
                      ["w1", "w3", "w2"], ["w3", "w1", "w2"]]


def test_a_single_healthy_replica_keeps_the_read_order():
    assert striped_order(["w2", "w1", "w3"], 7, _healthy("w1")) == ["w2", "w1", "w3"]
    assert striped_order(["w2"], 3, _healthy("w2")) == ["w2"]
    assert striped_order([], 3, _healthy()) == []


def test_the_stripe_base_is_stable_per_version_and_spreads_files():
    assert stripe_base("f1", 1) == stripe_base("f1", 1)
    # One-chunk files start at different replicas, not all at the first.
    firsts = {striped_order(list(ALL), stripe_base(f"file-{i}", 1), _healthy(*ALL))[0]
              for i in range(30)}
    assert firsts == set(ALL)
