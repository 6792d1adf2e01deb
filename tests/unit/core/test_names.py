"""File name validation and normalisation."""

from __future__ import annotations

import unicodedata

import pytest

from echofs.core.errors import BadRequest, InvalidName
from echofs.core.names import (
    MAX_NAME_BYTES,
    MAX_NAME_CHARS,
    MAX_SEGMENT_BYTES,
    basename,
    normalize_name,
    require_utf8_escapes,
)


@pytest.mark.parametrize(
    "name",
    [
        "a.txt",
        "a",
        "dir/sub/file",
        "résumé.pdf",
        "日本語.txt",
        "emoji-😀.png",
        "👩\u200d💻/notes.md",  # ZWJ sequence is allowed
        "..hidden",
        "a..b",
        ".config/x",
        "with space/and-dash_underscore.tar.gz",
    ],
)
def test_accepts_and_keeps_valid_names(name: str) -> None:
    assert normalize_name(name) == name


def test_nfc_normalisation_composes_accents() -> None:
    decomposed = "re\u0301sume\u0301.pdf"
    assert len(decomposed) == 12
    result = normalize_name(decomposed)
    assert result == "r\u00e9sum\u00e9.pdf"
    assert result == "résumé.pdf"
    assert unicodedata.is_normalized("NFC", result)
    assert len(result) == 10


def test_nfc_and_nfd_forms_normalise_to_the_same_name() -> None:
    nfc = "dir/Ångström/café.txt"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert normalize_name(nfd) == normalize_name(nfc) == nfc


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/abs",
        "/",
        "..",
        ".",
        "../x",
        "a/../b",
        "a/..",
        "a//b",
        "a/",
        "./a",
        "a/.",
        "a/./b",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\x7fb",
        "a\\b",
        "..\\x",
        "a\u2028b",  # line separator
        "a\u202eb",  # right-to-left override (format character)
        "x" * 10_000,
        "a" * (MAX_SEGMENT_BYTES + 1),
        "dir/" + "b" * 256,
        "é" * 128,  # 128 characters but 256 UTF-8 bytes in one segment
        "bad\ud800surrogate",
    ],
    ids=repr,
)
def test_rejects(name: str) -> None:
    with pytest.raises(InvalidName) as info:
        normalize_name(name)
    assert info.value.status == 400
    assert info.value.code == "invalid_name"
    assert isinstance(info.value, BadRequest)


@pytest.mark.parametrize("value", [None, 42, b"a.txt"])
def test_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidName):
        normalize_name(value)  # type: ignore[arg-type]


def test_segment_of_exactly_255_bytes_is_accepted() -> None:
    assert normalize_name("a" * MAX_SEGMENT_BYTES) == "a" * MAX_SEGMENT_BYTES
    two_byte = "é" * 127 + "a"  # 255 bytes
    assert len(two_byte.encode()) == MAX_SEGMENT_BYTES
    assert normalize_name(two_byte) == two_byte


def test_total_length_limit_in_bytes() -> None:
    segment = "s" * 200
    ok = "/".join([segment] * 5)  # 1004 bytes
    assert len(ok.encode()) <= MAX_NAME_BYTES
    assert normalize_name(ok) == ok
    too_long = "/".join([segment] * 6)  # 1205 bytes, every segment legal
    with pytest.raises(InvalidName):
        normalize_name(too_long)


def test_names_hold_1024_characters_of_up_to_2048_bytes() -> None:
    # What the store's path column holds (characters), and room for escaped S3 keys.
    wide = "/".join(["日本語" * 28] * 12)  # 1019 characters, 3035 bytes: too many bytes
    with pytest.raises(InvalidName):
        normalize_name(wide)
    fits = "/".join(["日本" * 42] * 8)  # 679 characters, 2016 bytes
    assert len(fits) <= MAX_NAME_CHARS and len(fits.encode()) <= MAX_NAME_BYTES
    assert normalize_name(fits) == fits
    many = "/".join(["a" * 100] * 10) + "/abcd"  # 1014 characters
    assert normalize_name(many) == many
    with pytest.raises(InvalidName) as refused:
        normalize_name(many + "/x" * 6)  # 1026 characters, well under 2048 bytes
    assert "characters" in refused.value.message


def test_segment_limit_applies_after_normalisation() -> None:
    nfd = unicodedata.normalize("NFD", "é") * 100  # 300 bytes NFD, 200 bytes NFC
    assert len(nfd.encode()) > MAX_SEGMENT_BYTES
    assert normalize_name(nfd) == "é" * 100


def test_basename() -> None:
    assert basename("a.txt") == "a.txt"
    assert basename("dir/sub/file.bin") == "file.bin"


@pytest.mark.parametrize("raw", ["%ff%fe", "ok%ff", "%c3", "%c3%28", "%ed%a0%80", "a/%80/b",
                                 "%f8%88%80%80%80", "%C0%AF"])
def test_percent_escapes_that_are_not_utf8_name_nothing(raw):
    with pytest.raises(InvalidName, match="not UTF-8"):
        require_utf8_escapes(raw)


@pytest.mark.parametrize("raw", ["plain", "caf%c3%a9", "caf%C3%A9", "%25ff%25fe", "a%2Fb",
                                 "%f0%9f%98%80", "100%", "%zz"])
def test_utf8_escapes_and_text_without_escapes_pass(raw):
    require_utf8_escapes(raw)
