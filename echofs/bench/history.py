"""Checks a recorded history of writes and reads against what each mode
promises — pure logic, no I/O.

Every operation carries its real-time interval (``started``, ``ended``, one
clock) and what the server said: the version it assigned or returned, the
mode it used, whether it flagged the read stale, and the digest of the bytes.
Per file name:

- a read that began after a write of version ``v`` was acknowledged must
  return a version ≥ ``v`` — always in ``strong`` and ``hybrid`` (a stale read
  there is a violation); in ``available`` it may be older only if the server
  flagged it (``X-EchoFS-Stale``); an unflagged stale read is a violation in
  every mode;
- a read may not return a version no write had even begun to create;
- a read's bytes must be those of the write that made its version (or, for
  a version whose write was never acknowledged to us, those of some write of
  that name);
- acknowledged writes get distinct versions, in real-time order: a write
  that began after another was acknowledged gets a higher version (two
  acknowledged writes with one version is a lost update).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

STRICT_MODES = frozenset({"strong", "hybrid"})


@dataclass(frozen=True, slots=True)
class Write:
    name: str
    started: float
    ended: float
    digest: str  # of the bytes sent
    acked: bool  # the server answered 201 with this digest
    version: int | None = None  # assigned by the server; known when acked


@dataclass(frozen=True, slots=True)
class Read:
    name: str
    started: float
    ended: float
    version: int
    mode: str
    digest: str  # of the bytes received
    stale_flag: bool = False


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str
    name: str
    detail: str


@dataclass
class CheckResult:
    reads: int = 0
    writes_acked: int = 0
    # Reads older than the newest version acknowledged before they began, or
    # flagged stale by the server: each counts once.
    stale: list[Read] = field(default_factory=list)
    flagged: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def stale_share(self) -> float:
        return len(self.stale) / self.reads if self.reads else 0.0

    def count(self, kind: str) -> int:
        return sum(1 for v in self.violations if v.kind == kind)


class _Acked:
    """A name's acknowledged writes, searchable by time: the highest version
    acknowledged before a given instant."""

    def __init__(self, writes: Sequence[Write]) -> None:
        ordered = sorted(writes, key=lambda w: w.ended)
        self.ends = [w.ended for w in ordered]
        self.best: list[int] = []
        best = 0
        for w in ordered:
            best = max(best, w.version or 0)
            self.best.append(best)

    def newest_before(self, instant: float) -> int:
        index = bisect.bisect_left(self.ends, instant)
        return self.best[index - 1] if index else 0


def check(writes: Iterable[Write], reads: Iterable[Read]) -> CheckResult:
    result = CheckResult()
    writes_by_name: dict[str, list[Write]] = defaultdict(list)
    for w in writes:
        writes_by_name[w.name].append(w)
    reads_by_name: dict[str, list[Read]] = defaultdict(list)
    for r in reads:
        reads_by_name[r.name].append(r)
    for name in sorted(writes_by_name.keys() | reads_by_name.keys()):
        _check_name(name, writes_by_name.get(name, []), reads_by_name.get(name, []), result)
    return result


def _check_name(name: str, writes: list[Write], reads: list[Read], result: CheckResult) -> None:
    acked = [w for w in writes if w.acked]
    for w in acked:
        if w.version is None or w.version < 1:
            result.violations.append(Violation("acked_without_version", name,
                                               f"write acknowledged at {w.ended:.3f} "
                                               f"without a version"))
    acked = [w for w in acked if w.version is not None and w.version >= 1]
    result.writes_acked += len(acked)
    by_version: dict[int, Write] = {}
    for w in sorted(acked, key=lambda w: w.started):
        other = by_version.get(w.version)  # type: ignore[arg-type]
        if other is not None:
            result.violations.append(Violation(
                "lost_update", name, f"two acknowledged writes got version {w.version}"))
        else:
            by_version[w.version] = w  # type: ignore[index]
    index = _Acked(acked)
    for w in acked:
        before = index.newest_before(w.started)
        if before >= w.version:  # type: ignore[operator]
            result.violations.append(Violation(
                "write_order", name, f"write began at {w.started:.3f} after version {before} "
                f"was acknowledged, yet got version {w.version}"))
    starts = sorted(w.started for w in writes)
    digests = {w.digest for w in writes}
    for r in sorted(reads, key=lambda r: r.started):
        result.reads += 1
        _check_read(name, r, index, starts, by_version, digests, result)


def _check_read(name: str, r: Read, index: _Acked, starts: list[float],
                by_version: dict[int, Write], digests: set[str], result: CheckResult) -> None:
    required = index.newest_before(r.started)
    stale = r.version < required
    if r.stale_flag:
        result.flagged += 1
    if stale or r.stale_flag:
        result.stale.append(r)
    where = f"read [{r.started:.3f}, {r.ended:.3f}] in {r.mode}"
    if stale and r.mode in STRICT_MODES:
        result.violations.append(Violation(
            "stale_read_strict", name,
            f"{where} returned version {r.version}; version {required} was acknowledged "
            f"before it began"))
    elif stale and not r.stale_flag:
        result.violations.append(Violation(
            "unflagged_stale_read", name,
            f"{where} returned version {r.version} without X-EchoFS-Stale; version "
            f"{required} was acknowledged before it began"))
    if r.stale_flag and r.mode in STRICT_MODES:
        result.violations.append(Violation(
            "stale_flag_in_strict_mode", name, f"{where} was flagged stale"))
    begun = bisect.bisect_left(starts, r.ended)
    if r.version > begun:
        result.violations.append(Violation(
            "read_of_unwritten_version", name,
            f"{where} returned version {r.version}; only {begun} write(s) had begun"))
    known = by_version.get(r.version)
    if known is not None:
        if known.digest != r.digest:
            result.violations.append(Violation(
                "corrupt_read", name,
                f"{where} returned version {r.version} with bytes that differ from its write"))
    elif r.digest not in digests:
        result.violations.append(Violation(
            "corrupt_read", name,
            f"{where} returned version {r.version} with bytes no write of this name sent"))
