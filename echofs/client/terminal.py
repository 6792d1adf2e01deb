"""What the CLI shows a person: progress, tables, sizes.

Progress is a tqdm bar (rate and ETA) when stderr is a terminal, at whatever
width it reports — a terminal that reports 0 columns (``script``, some CI
consoles) gets :data:`FALLBACK_COLUMNS`. Without a terminal, a transfer that
runs longer than :data:`LINE_INTERVAL` seconds prints one plain line to
stderr every :data:`LINE_INTERVAL` seconds, so a log shows it is alive;
stdout carries nothing but the result either way. Sizes and rates are binary
(KiB, MiB, MiB/s) everywhere.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from enum import Enum
from types import TracebackType
from typing import IO, Any

from tqdm import tqdm

FALLBACK_COLUMNS = 80
FALLBACK_LINES = 24
LINE_INTERVAL = 5.0
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(n: int | float | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{int(n)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_rate(per_second: float | None) -> str:
    return "? B/s" if per_second is None else f"{human_size(per_second)}/s"


class Progress(Enum):
    BAR = "bar"  # stderr is a terminal
    LINES = "lines"  # no terminal: an occasional plain line
    OFF = "off"


def wants_progress(stream: IO[str] | None = None, disabled: bool = False) -> Progress:
    stream = stream or sys.stderr
    if disabled:
        return Progress.OFF
    return Progress.BAR if stream.isatty() else Progress.LINES


def terminal_size(stream: IO[str]) -> tuple[int, int]:
    """The terminal's (columns, lines), with :data:`FALLBACK_COLUMNS` and
    :data:`FALLBACK_LINES` for what it reports as 0: tqdm draws a bar in 0
    columns as an empty line, and none at all in 0 lines."""
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        columns, lines = 0, 0
    if columns <= 0:
        env = os.environ.get("COLUMNS", "")
        columns = int(env) if env.isdigit() and int(env) > 0 else FALLBACK_COLUMNS
    return columns, lines if lines > 0 else FALLBACK_LINES


def terminal_columns(stream: IO[str]) -> int:
    return terminal_size(stream)[0]


class _BinaryBar(tqdm):  # type: ignore[type-arg]
    """tqdm counts in KiB/MiB (unit_divisor 1024) but formats its rate with
    decimal prefixes ("MB/s"); this bar offers ``{rate_bin}`` in MiB/s."""

    @property
    def format_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = super().format_dict
        elapsed = values.get("elapsed") or 0
        done = values.get("n", 0) - values.get("initial", 0)
        values["rate_bin"] = human_rate(done / elapsed if elapsed else None).replace(" ", "")
        return values


_BAR = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_bin}]"
_NO_TOTAL = "{desc}: {n_fmt} [{elapsed}, {rate_bin}]"


class TransferProgress:
    """A progress callback for the client: a bar, occasional lines, or nothing."""

    def __init__(self, label: str, *, enabled: Progress | bool,
                 stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(enabled, bool):
            enabled = Progress.BAR if enabled else Progress.OFF
        self._style = enabled
        self._bar: _BinaryBar | None = None
        self._label = label
        self._stream = stream or sys.stderr
        self._clock = clock
        self._started = clock()
        self._next_line = self._started + LINE_INTERVAL
        self._lines = 0
        self._done = 0
        self._total: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._style is Progress.OFF:
            return
        self._total = total if total is not None else self._total
        if self._style is Progress.LINES:
            self._done = max(self._done, done)
            if self._clock() >= self._next_line:
                self._line()
            return
        if self._bar is None:
            columns, lines = terminal_size(self._stream)
            self._bar = _BinaryBar(
                total=total, desc=self._label, unit="B", unit_scale=True, unit_divisor=1024,
                file=self._stream, ncols=columns, nrows=lines, leave=True,
                mininterval=0.1, bar_format=_BAR if total is not None else _NO_TOTAL)
        elif total is not None and self._bar.total != total:
            self._bar.total = total
        if done > self._done:
            # Follows a resized terminal; the ioctl is cheap next to a piece of I/O.
            self._bar.ncols = terminal_columns(self._stream)
            self._bar.update(done - self._done)
            self._done = done

    def _line(self) -> None:
        now = self._clock()
        elapsed = max(now - self._started, 1e-9)
        of = "" if self._total is None else f" of {human_size(self._total)}"
        share = (f" ({100 * self._done / self._total:.0f}%)"
                 if self._total else "")
        self._stream.write(f"{self._label}: {human_size(self._done)}{of}{share}, "
                           f"{human_rate(self._done / elapsed)}, {elapsed:.0f}s\n")
        self._stream.flush()
        self._lines += 1
        self._next_line = now + LINE_INTERVAL

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._lines and exc_type is None:
            # A log that showed the transfer running also shows it finished.
            self._line()


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
