"""Progress as a person sees it at any terminal width, and as a log sees it
without a terminal; errors of a download name the path the caller gave."""

from __future__ import annotations

import io
import os
import re
from types import SimpleNamespace

import pytest

from echofs.client import terminal
from echofs.client.terminal import (
    FALLBACK_COLUMNS,
    LINE_INTERVAL,
    Progress,
    TransferProgress,
    human_rate,
    terminal_columns,
    wants_progress,
)
from echofs.client.transfers import save

MIB = 1024 * 1024


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_style_follows_the_terminal():
    assert wants_progress(Tty()) is Progress.BAR
    assert wants_progress(io.StringIO()) is Progress.LINES
    assert wants_progress(Tty(), disabled=True) is Progress.OFF


def test_zero_reported_columns_fall_back_to_a_usable_width(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(terminal.os, "get_terminal_size", lambda fd: os.terminal_size((0, 0)))
    stream = Tty()
    stream.fileno = lambda: 2  # type: ignore[method-assign]
    assert terminal_columns(stream) == FALLBACK_COLUMNS
    monkeypatch.setenv("COLUMNS", "132")
    assert terminal_columns(stream) == 132
    monkeypatch.delenv("COLUMNS")

    with TransferProgress("big.bin", enabled=Progress.BAR, stream=stream) as progress:
        progress(0, 24 * MIB)
        progress(24 * MIB, 24 * MIB)
    last = stream.getvalue().split("\r")[-1].strip()
    # A real bar, not an empty line: the label, the blocks, the counts.
    assert last.startswith("big.bin: 100%|"), last
    assert progress._bar is not None and progress._bar.nrows == terminal.FALLBACK_LINES
    assert re.search(r"\|[#█]{20,}\|", last), last
    assert "24.0M/24.0M" in last and len(last) <= FALLBACK_COLUMNS


def test_rates_are_binary_when_counting_binary():
    assert human_rate(3 * MIB) == "3.0 MiB/s"
    stream = Tty()
    with TransferProgress("f", enabled=Progress.BAR, stream=stream) as progress:
        progress(0, 64 * MIB)
        progress(64 * MIB, 64 * MIB)
    text = stream.getvalue()
    assert re.search(r"[\d.]+[KMGT]iB/s\]", text), text
    assert "MB/s" not in text and "kB/s" not in text


def test_without_a_terminal_a_long_transfer_prints_an_occasional_line():
    clock, stream = FakeClock(), io.StringIO()
    with TransferProgress("big.bin", enabled=Progress.LINES, stream=stream,
                          clock=clock) as progress:
        progress(0, 100 * MIB)
        clock.now += 1
        progress(10 * MIB, 100 * MIB)
        assert stream.getvalue() == ""  # short so far: nothing to say
        clock.now += LINE_INTERVAL
        progress(60 * MIB, 100 * MIB)
        clock.now += 1
        progress(70 * MIB, 100 * MIB)  # within the interval: no new line
        clock.now += 1
        progress(100 * MIB, 100 * MIB)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "big.bin: 60.0 MiB of 100.0 MiB (60%), 10.0 MiB/s, 6s"
    assert lines[1].startswith("big.bin: 100.0 MiB of 100.0 MiB (100%)")
    assert len(lines) == 2 and "\r" not in stream.getvalue()


def test_without_a_terminal_a_quick_transfer_prints_nothing():
    clock, stream = FakeClock(), io.StringIO()
    with TransferProgress("f", enabled=Progress.LINES, stream=stream, clock=clock) as progress:
        progress(0, None)
        clock.now += LINE_INTERVAL - 1
        progress(5 * MIB, None)
    assert stream.getvalue() == ""


async def test_a_download_into_a_missing_folder_names_the_callers_path(tmp_path):
    download = SimpleNamespace(partial=False, blake3=None, name="x", file_id="f" * 32)
    dest = tmp_path / "absent" / "x"
    with pytest.raises(FileNotFoundError) as raised:
        await save(download, dest, None, verify=True)  # type: ignore[arg-type]
    assert raised.value.filename == str(dest)
    assert ".part" not in str(raised.value)
