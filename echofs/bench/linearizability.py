"""A linearizability check of one file's history, as a single register.

A file written by whole-object PUTs and read by GETs is a read/write
register whose values are the written bytes (their digests: every write in
the benchmark sends fresh random bytes, so values are unique). Its history
is linearizable if the operations can be put in one sequential order that
respects real time (an operation that ended before another began comes
first) in which every read returns the value of the latest write before it
(Herlihy & Wing, "Linearizability: a correctness condition for concurrent
objects", TOPLAS 12(3), 1990). Linearizability is *local* (same paper,
Theorem 1): a history is linearizable iff each object's sub-history is, so
files are checked one at a time.

The search is Wing & Gong's (Wing & Gong, "Testing and verifying concurrent
objects", J. Parallel Distrib. Comput. 17(1-2), 1993) with Lowe's memo of
configurations already explored (Lowe, "Testing for linearizability",
Concurrency and Computation: Practice and Experience 29(4), 2017; the WGL
algorithm, as Knossos and Porcupine implement it): depth first, it picks as
next linearized operation any pending one that no other pending operation
must precede, applies it to the register, and backtracks when a read does
not return the register's value; a (set linearized, register value) pair
seen before is not explored again.

A write whose answer never reached the client (it failed or timed out) may
or may not have taken effect: it is an operation without a return, which
may be linearized anywhere after its call, or never (as Knossos treats
``:info`` operations). Failed reads say nothing and are left out. The search
is bounded (``budget`` configurations); a history it cannot decide within
that is reported as undecided, never as passed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from echofs.bench.history import Read, Write

DEFAULT_BUDGET = 200_000


class Verdict(StrEnum):
    LINEARIZABLE = "linearizable"
    VIOLATION = "not_linearizable"
    UNDECIDED = "undecided"  # the search budget ran out


@dataclass(frozen=True, slots=True)
class RegisterOp:
    """One operation on the register: a write of ``value``, or a read that
    returned it. ``ended`` is ``inf`` for a write whose outcome is unknown."""

    kind: str  # write | read
    started: float
    ended: float
    value: str


@dataclass(frozen=True, slots=True)
class RegisterResult:
    name: str
    verdict: Verdict
    operations: int
    explored: int  # configurations the search visited

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.LINEARIZABLE


def register_ops(writes: Iterable[Write], reads: Iterable[Read]) -> list[RegisterOp]:
    """The register history of one file from the benchmark's records."""
    ops = [RegisterOp("write", w.started, w.ended if w.acked else math.inf, w.digest)
           for w in writes]
    ops += [RegisterOp("read", r.started, r.ended, r.digest) for r in reads]
    return ops


def check_register(name: str, ops: Sequence[RegisterOp], *, initial: str | None = None,
                   budget: int = DEFAULT_BUDGET) -> RegisterResult:
    """Is this history of one register linearizable (from ``initial``)?"""
    ordered = sorted(ops, key=lambda o: (o.started, o.ended))
    n = len(ordered)
    completed = 0
    for i, op in enumerate(ordered):
        if not math.isinf(op.ended):
            completed |= 1 << i
    # Completed operations by return time: the earliest pending return bounds
    # which calls may be linearized next.
    by_end = sorted((i for i in range(n) if completed >> i & 1), key=lambda i: ordered[i].ended)
    seen: set[tuple[int, str | None]] = set()
    # Depth-first over (linearized set, register value); each frame holds the
    # candidates still to try from that configuration.
    stack: list[tuple[int, str | None, list[int]]] = []
    explored = 0

    def candidates(done: int, value: str | None) -> list[int]:
        bound = next((ordered[i].ended for i in by_end if not done >> i & 1), math.inf)
        found = []
        for i in range(n):
            op = ordered[i]
            if op.started > bound:
                break  # sorted by call: no later call may go before that return
            if done >> i & 1:
                continue
            if op.kind == "read" and op.value != value:
                continue
            found.append(i)
        # Operations that must end soonest first: a good order finds a
        # linearization of a correct history with little backtracking.
        found.sort(key=lambda i: ordered[i].ended)
        return found

    stack.append((0, initial, candidates(0, initial)))
    seen.add((0, initial))
    while stack:
        done, value, todo = stack[-1]
        if done & completed == completed:
            return RegisterResult(name, Verdict.LINEARIZABLE, n, explored)
        if not todo:
            stack.pop()
            continue
        i = todo.pop(0)
        op = ordered[i]
        after = op.value if op.kind == "write" else value
        config = (done | 1 << i, after)
        if config in seen:
            continue
        seen.add(config)
        explored += 1
        if explored > budget:
            return RegisterResult(name, Verdict.UNDECIDED, n, explored)
        stack.append((config[0], after, candidates(config[0], after)))
    return RegisterResult(name, Verdict.VIOLATION, n, explored)


@dataclass
class LinearizabilityReport:
    files: list[RegisterResult]

    @property
    def violations(self) -> list[str]:
        return [r.name for r in self.files if r.verdict is Verdict.VIOLATION]

    @property
    def undecided(self) -> list[str]:
        return [r.name for r in self.files if r.verdict is Verdict.UNDECIDED]

    def to_json(self) -> dict[str, object]:
        return {"files_checked": len(self.files),
                "linearizable": sum(1 for r in self.files if r.ok),
                "violations": self.violations, "undecided": self.undecided,
                "operations": sum(r.operations for r in self.files),
                "configurations_explored": sum(r.explored for r in self.files)}


def check_files(writes: Iterable[Write], reads: Iterable[Read], names: Iterable[str], *,
                budget: int = DEFAULT_BUDGET) -> LinearizabilityReport:
    """Check each named file's history as a register (empty at the start:
    the benchmark's first write of every name is part of its history)."""
    wanted = set(names)
    writes_of: dict[str, list[Write]] = {n: [] for n in wanted}
    reads_of: dict[str, list[Read]] = {n: [] for n in wanted}
    for w in writes:
        if w.name in wanted:
            writes_of[w.name].append(w)
    for r in reads:
        if r.name in wanted:
            reads_of[r.name].append(r)
    return LinearizabilityReport([
        check_register(n, register_ops(writes_of[n], reads_of[n]), budget=budget)
        for n in sorted(wanted)])
