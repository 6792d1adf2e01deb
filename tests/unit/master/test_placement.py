"""The master's placement: write targets and replicator homes, over a fake membership."""

from __future__ import annotations

from echofs.core.placement import place
from echofs.master.placement import Placement


class FakeMembership:
    """Liveness by hand: who is alive, who suspect; everyone else is dead."""

    def __init__(self, alive: list[str], suspect: tuple[str, ...] = (),
                 rtt: dict[str, float] | None = None, full: tuple[str, ...] = ()) -> None:
        self.alive, self.suspect, self.rtt = alive, list(suspect), rtt or {}
        self.full = list(full)

    def live_ids(self) -> list[str]:
        return sorted(self.alive)

    def full_ids(self) -> list[str]:
        return sorted(self.full)

    def placeable_ids(self) -> list[str]:
        return sorted([*self.alive, *self.suspect])

    def read_order(self, workers) -> list[str]:
        return sorted(workers, key=lambda w: (w not in self.alive, self.rtt.get(w, 0.0), w))


WORKERS = [f"w{i}" for i in range(1, 7)]


def test_write_targets_are_the_top_rf_live_workers():
    placement = Placement(FakeMembership(WORKERS), 3)
    where = placement.write_targets("c1")
    assert where.targets == place("c1", WORKERS, 3)
    assert where.live == frozenset(WORKERS)


def test_write_targets_skip_suspect_workers_while_enough_are_live():
    ranked = place("c1", WORKERS, 6)
    suspect = tuple(ranked[:2])  # the two best-ranked are away
    live = [w for w in WORKERS if w not in suspect]
    where = Placement(FakeMembership(live, suspect), 3).write_targets("c1")
    assert where.targets == ranked[2:5]
    assert not set(where.targets) & set(suspect)


def test_write_targets_top_up_from_suspect_workers():
    live, suspect = ["w1"], ["w2", "w3", "w4"]
    where = Placement(FakeMembership(live, tuple(suspect)), 3).write_targets("c1")
    # The live worker first, then the best-ranked suspects for the missing homes.
    assert where.targets == ["w1", *place("c1", suspect, 2)]
    assert where.live == frozenset(live)


def test_write_targets_never_include_dead_workers():
    where = Placement(FakeMembership(["w1"], ("w2",)), 3).write_targets("c1")
    assert sorted(where.targets) == ["w1", "w2"]


def test_homes_rank_alive_and_suspect_together():
    ranked = place("c1", WORKERS, 6)
    suspect = tuple(ranked[:1])
    live = [w for w in WORKERS if w not in suspect]
    placement = Placement(FakeMembership(live, suspect), 3)
    # A suspect worker still owns its placements: it stays a home...
    assert placement.homes("c1") == ranked[:3]
    # ...while a new write goes to live workers only.
    assert placement.write_targets("c1").targets == ranked[1:4]


def test_homes_leave_dead_workers_out():
    ranked = place("c1", WORKERS, 6)
    alive = ranked[1:]  # the best-ranked worker is dead
    assert Placement(FakeMembership(alive), 3).homes("c1") == ranked[1:4]


def test_fastest_first_is_the_membership_read_order():
    membership = FakeMembership(["w1", "w2", "w3"], rtt={"w1": 0.3, "w2": 0.1, "w3": 0.2})
    assert Placement(membership, 3).fastest_first({"w1", "w2", "w3"}) == ["w2", "w3", "w1"]


def test_write_targets_go_around_full_workers_that_stay_live():
    ranked = place("c1", WORKERS, 6)
    full = tuple(ranked[:2])  # the two best-ranked have no room left
    where = Placement(FakeMembership(WORKERS, full=full), 3).write_targets("c1")
    assert where.targets == ranked[2:5]
    # Still live: the copies they already hold count for deduplication.
    assert where.live == frozenset(WORKERS)
    assert where.full == frozenset(full)


def test_with_every_worker_full_there_is_no_target():
    where = Placement(FakeMembership(WORKERS, full=tuple(WORKERS)), 3).write_targets("c1")
    assert where.targets == []
