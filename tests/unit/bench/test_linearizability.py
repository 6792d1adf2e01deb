"""The single-register linearizability check (WGL search) on small histories
whose answer is known by hand."""

from __future__ import annotations

import math
import random

from echofs.bench.history import Read, Write
from echofs.bench.linearizability import (
    RegisterOp,
    Verdict,
    check_files,
    check_register,
)

INF = math.inf


def w(start: float, end: float, value: str) -> RegisterOp:
    return RegisterOp("write", start, end, value)


def r(start: float, end: float, value: str | None) -> RegisterOp:
    return RegisterOp("read", start, end, value or "")


def verdict(*ops: RegisterOp) -> Verdict:
    return check_register("f", list(ops)).verdict


def test_a_sequential_history_is_linearizable():
    assert verdict(w(0, 1, "a"), r(2, 3, "a"), w(4, 5, "b"), r(6, 7, "b")) \
        is Verdict.LINEARIZABLE


def test_a_read_of_an_overwritten_value_after_the_overwrite_ended_is_not():
    # b was acknowledged before the read began: returning a is stale.
    assert verdict(w(0, 1, "a"), w(2, 3, "b"), r(4, 5, "a")) is Verdict.VIOLATION


def test_a_read_concurrent_with_a_write_may_return_either_value():
    assert verdict(w(0, 1, "a"), w(2, 5, "b"), r(3, 4, "a")) is Verdict.LINEARIZABLE
    assert verdict(w(0, 1, "a"), w(2, 5, "b"), r(3, 4, "b")) is Verdict.LINEARIZABLE


def test_reads_may_not_see_values_go_back_and_forth():
    # Once one read saw b (after a), a later read may not see a again.
    assert verdict(w(0, 1, "a"), w(2, 10, "b"), r(3, 4, "b"), r(5, 6, "a")) \
        is Verdict.VIOLATION


def test_a_write_with_no_answer_may_have_taken_effect_or_not():
    assert verdict(w(0, 1, "a"), w(2, INF, "b"), r(3, 4, "b")) is Verdict.LINEARIZABLE
    assert verdict(w(0, 1, "a"), w(2, INF, "b"), r(3, 4, "a")) is Verdict.LINEARIZABLE
    # ...but not before it was sent.
    assert verdict(w(0, 1, "a"), r(2, 3, "b"), w(4, INF, "b")) is Verdict.VIOLATION


def test_a_read_of_a_value_never_written_is_not_linearizable():
    assert verdict(w(0, 1, "a"), r(2, 3, "zzz")) is Verdict.VIOLATION


def test_an_exhausted_budget_is_undecided_never_passed():
    rng = random.Random(7)
    # Many overlapping writes and reads: more configurations than the budget.
    ops = [w(0, 100, f"v{i}") for i in range(12)]
    ops += [r(1 + i, 100, f"v{rng.randrange(12)}") for i in range(12)]
    result = check_register("f", ops, budget=10)
    assert result.verdict is Verdict.UNDECIDED
    assert not result.ok


def test_a_long_correct_history_is_decided_quickly():
    ops, t = [], 0.0
    for i in range(300):
        ops.append(w(t, t + 0.5, f"v{i}"))
        ops.append(r(t + 0.2, t + 0.7, f"v{i - 1}" if i else ""))  # overlaps the write
        t += 1
    ops.append(r(0.1, 0.15, ""))
    result = check_register("f", ops, initial="")
    assert result.verdict is Verdict.LINEARIZABLE
    assert result.explored < 5000


def test_files_are_checked_one_by_one_from_the_records():
    writes = [Write("x", 0, 1, "a", True, 1), Write("x", 2, 3, "b", True, 2),
              Write("y", 0, 1, "c", True, 1)]
    reads = [Read("x", 4, 5, 1, "strong", "a"), Read("y", 2, 3, 1, "strong", "c")]
    report = check_files(writes, reads, ["x", "y"])
    assert report.violations == ["x"]
    assert report.to_json()["files_checked"] == 2
