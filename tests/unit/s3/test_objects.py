"""What GetObject/HeadObject send: content headers kept with the version,
user metadata, overrides, the REST API's stale marker; and the conditions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from echofs.core.consistency import Mode
from echofs.core.manifest import VersionRecord
from echofs.master.files import FileRead
from echofs.metadata.buckets import ObjectMeta
from echofs.s3.errors import S3Error
from echofs.s3.objects import Found, _check_conditions, _object_headers, fallback_etag
from echofs.s3.routing import Call, Target


def _found(stale: bool) -> Found:
    version = VersionRecord("f" * 32, 2, 10, "ab" * 32, 1, Mode.AVAILABLE, 1, 1_700_000_000.0)
    meta = ObjectMeta('"0123"', {"Content-Type": "text/plain"}, {"colour": "blue"})
    return Found(SimpleNamespace(), FileRead(version, Mode.AVAILABLE, stale), meta)  # type: ignore[arg-type]


def _call(query: dict[str, str] | None = None) -> Call:
    return Call("GetObject", Target("b", "k"), query or {}, "local", None)  # type: ignore[arg-type]


def test_headers_carry_metadata_and_the_stale_marker():
    headers = _object_headers(_found(stale=True), _call())
    assert headers["ETag"] == '"0123"'
    assert headers["Content-Type"] == "text/plain"
    assert headers["x-amz-meta-colour"] == "blue"
    assert headers["x-echofs-stale"] == "true"
    assert headers["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert "x-echofs-stale" not in _object_headers(_found(stale=False), _call())


def test_response_overrides_win():
    headers = _object_headers(_found(False), _call({"response-content-type": "image/png",
                                                    "response-cache-control": "no-store"}))
    assert (headers["Content-Type"], headers["Cache-Control"]) == ("image/png", "no-store")


def test_rest_written_versions_get_an_etag_no_client_takes_for_an_md5():
    version = _found(False).version
    assert fallback_etag(version) == f'"{"ab" * 16}-1"'


class _Request(SimpleNamespace):
    pass


def _request(method: str = "GET", **headers: str) -> _Request:
    return _Request(method=method, headers=headers)


def test_conditions():
    etag, modified = '"abc"', 1_700_000_000.5
    assert _check_conditions(_request(**{"If-None-Match": '"abc"'}), etag, modified)
    assert not _check_conditions(_request(**{"If-None-Match": '"other"'}), etag, modified)
    assert _check_conditions(_request(**{"If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"}),
                             etag, modified)
    with pytest.raises(S3Error) as failed:
        _check_conditions(_request(**{"If-Match": '"other"'}), etag, modified)
    assert (failed.value.code, failed.value.status) == ("PreconditionFailed", 412)
    with pytest.raises(S3Error):
        _check_conditions(_request(**{"If-Unmodified-Since": "Tue, 14 Nov 2023 22:00:00 GMT"}),
                          etag, modified)
    # If-Match that holds outranks If-Unmodified-Since (RFC 7232 as S3 applies it).
    assert not _check_conditions(_request(**{
        "If-Match": '"abc"', "If-Unmodified-Since": "Tue, 14 Nov 2023 22:00:00 GMT"}),
        etag, modified)
