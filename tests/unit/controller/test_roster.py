"""The controller's roster of workers that registered themselves: refreshes,
liveness by silence, forgetting the long dead, a bounded size."""

from __future__ import annotations

import pytest

from echofs.controller import roster as roster_module
from echofs.controller.roster import WorkerRoster
from echofs.core.vocabulary import Liveness


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(roster_module.time, "monotonic", lambda: now[0])
    return now


def test_register_refresh_and_liveness_by_silence(clock):
    roster = WorkerRoster(suspect_after=3.0, dead_after=30.0)
    entry, new = roster.register("w1", "h:1", None)
    assert new and roster.state(entry) is Liveness.ALIVE
    clock[0] += 5
    assert roster.state(entry) is Liveness.SUSPECT
    again, new = roster.register("w1", "h:2", "h:3")
    assert not new and again is entry and entry.registrations == 2
    assert (entry.address, entry.http_address) == ("h:2", "h:3")
    assert roster.state(entry) is Liveness.ALIVE
    clock[0] += 31
    assert roster.state(entry) is Liveness.DEAD
    assert [e.worker_id for e in roster.entries()] == ["w1"]
    clock[0] += 30  # dead twice as long as DEAD_AFTER: forgotten
    assert roster.entries() == []
    _, new = roster.register("w1", "h:1", None)
    assert new


def test_the_roster_is_bounded(clock):
    roster = WorkerRoster(suspect_after=3.0, dead_after=30.0, max_workers=2)
    roster.register("w1", "h:1", None)
    roster.register("w2", "h:1", None)
    with pytest.raises(OverflowError):
        roster.register("w3", "h:1", None)
    roster.register("w2", "h:9", None)  # a known worker still refreshes
