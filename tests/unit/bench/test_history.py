"""The history checker over hand-made histories: valid ones pass, each kind
of invalid one is caught and named."""

from __future__ import annotations

from echofs.bench.history import Read, Write, check


def w(version: int | None, started: float, ended: float, digest: str | None = None, *,
      acked: bool = True, name: str = "f") -> Write:
    return Write(name, started, ended, digest or f"d{version}", acked, version)


def r(version: int, started: float, ended: float, mode: str = "strong", *,
      digest: str | None = None, stale: bool = False, name: str = "f") -> Read:
    return Read(name, started, ended, version, mode, digest or f"d{version}", stale)


def kinds(result) -> list[str]:
    return sorted(v.kind for v in result.violations)


def test_sequential_history_is_valid():
    writes = [w(1, 0, 1), w(2, 2, 3), w(3, 4, 5)]
    reads = [r(1, 1.5, 1.8), r(2, 3.5, 3.6), r(3, 6, 7)]
    result = check(writes, reads)
    assert result.ok, result.violations
    assert (result.reads, result.writes_acked, len(result.stale)) == (3, 3, 0)


def test_concurrent_read_may_return_either_version():
    # The read overlaps the write of version 2: 1 and 2 are both fine.
    writes = [w(1, 0, 1), w(2, 2, 4)]
    assert check(writes, [r(1, 3, 5)]).ok
    assert check(writes, [r(2, 3, 5)]).ok
    # ... and even a version whose write is still in flight when the read ends.
    assert check(writes, [r(2, 2.5, 3)]).ok


def test_unacknowledged_write_may_or_may_not_be_visible():
    writes = [w(1, 0, 1), w(None, 2, 3, "lost-ack", acked=False)]
    assert check(writes, [r(1, 4, 5)]).ok
    assert check(writes, [r(2, 4, 5, digest="lost-ack")]).ok


def test_stale_read_in_strong_mode_is_a_violation():
    result = check([w(1, 0, 1), w(2, 2, 3)], [r(1, 4, 5)])
    assert kinds(result) == ["stale_read_strict"]
    assert len(result.stale) == 1
    hybrid = check([w(1, 0, 1), w(2, 2, 3)], [r(1, 4, 5, "hybrid")])
    assert kinds(hybrid) == ["stale_read_strict"]


def test_flagged_stale_read_is_allowed_only_in_available_mode():
    writes = [w(1, 0, 1), w(2, 2, 3)]
    flagged = check(writes, [r(1, 4, 5, "available", stale=True)])
    assert flagged.ok
    assert (len(flagged.stale), flagged.flagged) == (1, 1)
    unflagged = check(writes, [r(1, 4, 5, "available")])
    assert kinds(unflagged) == ["unflagged_stale_read"]
    strong_flagged = check(writes, [r(1, 4, 5, "strong", stale=True)])
    assert kinds(strong_flagged) == ["stale_flag_in_strict_mode", "stale_read_strict"]


def test_flag_on_an_up_to_date_read_counts_as_stale_but_is_no_violation():
    # The server knows of a newer (unacknowledged-to-us) version it cannot assemble.
    writes = [w(1, 0, 1), w(None, 2, 9, "x", acked=False)]
    result = check(writes, [r(1, 3, 4, "available", stale=True)])
    assert result.ok and len(result.stale) == 1


def test_read_of_a_version_nobody_began_to_write():
    result = check([w(1, 0, 1)], [r(2, 2, 3, digest="d1")])
    assert "read_of_unwritten_version" in kinds(result)


def test_corrupt_reads():
    writes = [w(1, 0, 1), w(None, 2, 3, "maybe", acked=False)]
    assert kinds(check(writes, [r(1, 4, 5, digest="garbage")])) == ["corrupt_read"]
    assert kinds(check(writes, [r(2, 4, 5, digest="garbage")])) == ["corrupt_read"]


def test_lost_update_and_write_order():
    assert kinds(check([w(1, 0, 1, "a"), w(1, 2, 3, "b")], [])) == [
        "lost_update", "write_order"]
    # Overlapping writes may commit in either order.
    assert check([w(2, 0, 3), w(1, 1, 2)], []).ok
    # A write begun after version 2 was acknowledged cannot get version 1.
    assert kinds(check([w(2, 0, 1), w(1, 2, 3)], [])) == ["write_order"]
    assert kinds(check([w(None, 0, 1)], [])) == ["acked_without_version"]


def test_names_are_independent_and_stale_share():
    writes = [w(1, 0, 1, name="a"), w(2, 2, 3, name="a"), w(1, 0, 1, name="b")]
    reads = [r(1, 4, 5, "available", stale=True, name="a"), r(1, 4, 5, name="b"),
             r(2, 4, 5, name="a"), r(1, 6, 7, name="b")]
    result = check(writes, reads)
    assert result.ok
    assert result.stale_share == 0.25
    assert check([], []).stale_share == 0.0
