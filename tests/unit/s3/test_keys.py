"""The map between S3 keys and file names (echofs.s3.keys)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echofs.core.names import MAX_NAME_CHARS, MAX_SEGMENT_BYTES, normalize_name
from echofs.s3.errors import S3Error
from echofs.s3.keys import RESERVED, escaped_ranges, file_path, key_of

BUCKET = "photos"
LONG_BUCKET = "b" * 63
NFD = unicodedata.normalize("NFD", "café")

ODD_KEYS = ["dir/", "a//b", "./x", "a/../b", "/lead", "/", "//", ".", "..", NFD, "a\\b",
            "tab\there", "\x01", "foo/", "foo//bar", "x" * 1024, "é" * 512, "a/" * 512,
            "s" * 300, "s" * 254 + "..", "s" * 300 + "%", RESERVED, RESERVED + "/x",
            RESERVED + "//", "%/", "% /%25/", "\U0001f600/", " /", "a\u2028b"]


@pytest.mark.parametrize("key", ["a", "_", "dir/file.txt", "日本語/ファイル", "émoji-😀",
                                 "%", "%2F", "..x", "a..b", RESERVED + "x", "x/" + RESERVED])
def test_keys_that_are_names_are_their_own_file(key):
    assert file_path(BUCKET, key) == f"{BUCKET}/{key}"
    assert key_of(BUCKET, f"{BUCKET}/{key}") == key


@pytest.mark.parametrize("key", ODD_KEYS)
@pytest.mark.parametrize("bucket", [BUCKET, LONG_BUCKET])
def test_other_keys_are_escaped_to_valid_names_and_back(bucket, key):
    path = file_path(bucket, key)
    assert path.startswith(f"{bucket}/{RESERVED}/")
    assert normalize_name(path) == path  # the REST API and the CLI can name it
    assert len(path) <= MAX_NAME_CHARS
    assert key_of(bucket, path) == key


def test_readable_escapes_for_the_common_cases():
    assert file_path(BUCKET, "dir/") == "photos/.echofs-s3/dir/%"
    assert file_path(BUCKET, "a//b") == "photos/.echofs-s3/a/%/b"
    assert file_path(BUCKET, "./x") == "photos/.echofs-s3/%2E/x"
    assert file_path(BUCKET, "a/../b") == "photos/.echofs-s3/a/%2E%2E/b"
    assert file_path(BUCKET, "/lead") == "photos/.echofs-s3/%/lead"
    assert file_path(BUCKET, NFD) == "photos/.echofs-s3/cafe%CC%81"
    assert file_path(BUCKET, RESERVED + "/x") == f"photos/{RESERVED}/{RESERVED}/x"


def test_a_long_segment_is_cut_into_continued_pieces():
    path = file_path(BUCKET, "s" * 600 + "/")
    pieces = path.split("/")[2:]
    assert all(len(p.encode()) <= MAX_SEGMENT_BYTES for p in pieces)
    assert [p.endswith("%") for p in pieces] == [True, True, False, True]
    assert pieces[-1] == "%"  # the empty segment after the trailing '/'


def test_a_key_too_long_for_its_readable_form_is_packed():
    key = "a//" * 341 + "z"  # 1024 bytes
    path = file_path(LONG_BUCKET, key)
    packed = path.split("/", 2)[2]
    assert all("\u4e00" <= c <= "\u8dff" for c in packed.replace("/", ""))
    assert len(path) <= MAX_NAME_CHARS
    assert key_of(LONG_BUCKET, path) == key


def test_names_that_no_key_maps_to_are_not_objects():
    for path in (f"{BUCKET}/{RESERVED}/plain",         # a plain key's escape: not canonical
                 f"{BUCKET}/{RESERVED}/a%",            # continued, never ended
                 f"{BUCKET}/{RESERVED}/%zz",           # not an escape
                 f"{BUCKET}/{RESERVED}/%FF",           # not UTF-8
                 f"{BUCKET}/{RESERVED}/a%2Fb",         # '/' escaped: not the canonical form
                 f"{BUCKET}/{RESERVED}",               # the reserved folder's own name
                 f"{BUCKET}/{RESERVED}/\u4e00",        # packed, no end bit
                 "other/dir/%"):
        assert key_of(BUCKET, path) is None, path


def test_refused_keys():
    for key, code in (("", "InvalidArgument"), ("a\x00b", "InvalidArgument"),
                      ("k" * 1025, "KeyTooLongError"), ("é" * 513, "KeyTooLongError")):
        with pytest.raises(S3Error) as refused:
            file_path(BUCKET, key)
        assert refused.value.code == code


def test_escaped_ranges_cover_the_readable_folder_of_the_prefix():
    path = file_path(BUCKET, "photos/2024/")
    ranges = escaped_ranges(BUCKET, "photos/20")
    assert any(path.startswith(prefix) for prefix, _ in ranges)
    packed = file_path(BUCKET, "photos/2024/" + "/" * 1000)
    assert any(packed.startswith(prefix) and (after is None or packed > after)
               for prefix, after in ranges)


_KEYS = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                min_size=1).filter(lambda k: len(k.encode()) <= 1024)
_SLASHY = st.lists(st.sampled_from(["", ".", "..", "a", "é", NFD, "%", RESERVED, "\\"]),
                   min_size=1, max_size=12).map("/".join).filter(lambda k: k != "")


@settings(max_examples=400, deadline=None)
@given(st.one_of(_KEYS, _SLASHY), st.sampled_from([BUCKET, LONG_BUCKET]))
def test_every_key_round_trips_to_a_valid_name(key, bucket):
    path = file_path(bucket, key)
    assert normalize_name(path) == path
    assert len(path) <= MAX_NAME_CHARS
    assert key_of(bucket, path) == key


@settings(max_examples=400, deadline=None)
@given(st.one_of(_KEYS, _SLASHY), st.one_of(_KEYS, _SLASHY))
def test_different_keys_never_share_a_file(one, other):
    if one != other:
        assert file_path(BUCKET, one) != file_path(BUCKET, other)
