"""HTTP Range header parsing (RFC 9110 §14)."""

from __future__ import annotations

import pytest

from echofs.core.errors import RangeNotSatisfiable
from echofs.core.ranges import ByteRange, parse_range


@pytest.mark.parametrize("header", [None, ""])
def test_no_header_means_whole_file(header: str | None) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize(
    ("header", "size", "start", "end"),
    [
        ("bytes=0-9", 100, 0, 9),
        ("bytes=0-0", 100, 0, 0),
        ("bytes=90-", 100, 90, 99),
        ("bytes=0-", 100, 0, 99),
        ("bytes=99-99", 100, 99, 99),
        ("bytes=-10", 100, 90, 99),
        ("bytes=-1", 100, 99, 99),
        ("bytes=-100", 100, 0, 99),
        ("bytes=-500", 100, 0, 99),  # suffix longer than the file: whole file
        ("bytes=95-200", 100, 95, 99),  # end clamped
        ("bytes=0-0", 1, 0, 0),
        ("Bytes=0-9", 100, 0, 9),  # unit is case-insensitive
        (" bytes = 10 - 19 ", 100, 10, 19),
    ],
)
def test_satisfiable(header: str, size: int, start: int, end: int) -> None:
    r = parse_range(header, size)
    assert r == ByteRange(start, end)
    assert r.length == end - start + 1


def test_first_ten_bytes() -> None:
    r = parse_range("bytes=0-9", 100)
    assert r is not None
    assert (r.start, r.end, r.length) == (0, 9, 10)
    assert r.content_range(100) == "bytes 0-9/100"


def test_content_range_format() -> None:
    assert ByteRange(0, 9).content_range(100) == "bytes 0-9/100"
    assert ByteRange(90, 99).content_range(100) == "bytes 90-99/100"
    assert parse_range("bytes=-10", 100).content_range(100) == "bytes 90-99/100"


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=100-", 100),
        ("bytes=100-200", 100),
        ("bytes=1000-", 100),
        ("bytes=-0", 100),
        ("bytes=0-0", 0),
        ("bytes=0-", 0),
        ("bytes=-10", 0),
        ("bytes=-0", 0),
    ],
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, size)
    assert info.value.size == size
    assert info.value.status == 416
    assert info.value.code == "range_not_satisfiable"


def test_unsatisfiable_carries_size_for_content_range() -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range("bytes=100-", 100)
    assert info.value.size == 100
    assert info.value.status == 416


@pytest.mark.parametrize(
    "header",
    [
        "bytes=abc",
        "bytes=a-b",
        "bytes=1-b",
        "bytes=-x",
        "bytes=",
        "bytes=-",
        "bytes",
        "items=0-1",
        "bytes=5-2",
        "bytes=0-1,3-4",
        "bytes=-5,10-",
        "bytes=+1-2",
        "bytes=-+5",
        "bytes=1.5-2",
        "bytes=0x1-2",
        "bytes=--1",
    ],
)
def test_invalid_syntax_is_ignored(header: str) -> None:
    assert parse_range(header, 100) is None


def test_non_ascii_digits_are_ignored() -> None:
    # str.isdigit() accepts e.g. superscripts, which int() cannot parse.
    assert parse_range("bytes=\u00b2-5", 100) is None
    assert parse_range("bytes=-\u00b2", 100) is None
