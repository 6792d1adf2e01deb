"""What the CLI shows a person: progress bars, tables, sizes.

Progress bars (tqdm, on stderr, with rate and ETA) appear only when stderr is
a terminal, so scripts that pipe or redirect the output see nothing but the
result.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import TracebackType
from typing import IO

from tqdm import tqdm


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def wants_progress(stream: IO[str] | None = None, disabled: bool = False) -> bool:
    stream = stream or sys.stderr
    return not disabled and stream.isatty()


class TransferProgress:
    """A progress callback for the client, drawn as a tqdm bar when enabled."""

    def __init__(self, label: str, *, enabled: bool, stream: IO[str] | None = None) -> None:
        self._bar: tqdm[None] | None = None
        self._label = label
        self._enabled = enabled
        self._stream = stream or sys.stderr
        self._done = 0

    def __call__(self, done: int, total: int | None) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._label, unit="B", unit_scale=True,
                             unit_divisor=1024, file=self._stream, dynamic_ncols=True,
                             leave=True, mininterval=0.1)
        elif total is not None and self._bar.total != total:
            self._bar.total = total
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          right: Sequence[int] = ()) -> str:
    """Plain aligned columns; ``right`` lists the columns to right-align (numbers)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
