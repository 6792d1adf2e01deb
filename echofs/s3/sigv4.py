"""AWS Signature Version 4, as S3 uses it: in the ``Authorization`` header
and in presigned URLs.

A request is read in two steps: :func:`parse_request` takes what the client
claims (access key, scope, signed headers, signature, date) and refuses what
is malformed, expired or too far from our clock; then, once the caller has
found the access key's secret, :meth:`SignedRequest.verify` recomputes the
signature. The signing key and the seed signature stay on the request: the
``aws-chunked`` body reader (``chunked``) needs them to check each chunk.

Everything here is pure (no I/O): the clock is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from echofs.s3.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING = frozenset({STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})
# AWS allows 15 minutes between the client's clock and the server's.
MAX_SKEW_SECONDS = 15 * 60
# Presigned URLs live at most 7 days.
MAX_EXPIRES_SECONDS = 7 * 24 * 3600

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_AUTH_PARTS = re.compile(r"(Credential|SignedHeaders|Signature)\s*=\s*([^,\s]*)")


@dataclass(frozen=True, slots=True)
class Scope:
    """``date/region/service/aws4_request`` of a credential."""

    date: str
    region: str
    service: str

    def __str__(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a request claims about its signature, before it is checked."""

    access_key: str
    scope: Scope
    amz_date: str
    signed_headers: tuple[str, ...]
    signature: str
    canonical_request: str
    # The body's hash as signed: hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-* mode.
    payload: str
    presigned: bool

    def string_to_sign(self) -> str:
        digest = hashlib.sha256(self.canonical_request.encode()).hexdigest()
        return f"{ALGORITHM}\n{self.amz_date}\n{self.scope}\n{digest}"

    def verify(self, secret: str) -> bytes:
        """Check the signature with ``secret``; return the signing key (the
        chunk signatures of an ``aws-chunked`` body are made with it)."""
        key = signing_key(secret, self.scope)
        expected = hmac.new(key, self.string_to_sign().encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.signature):
            raise S3Error("SignatureDoesNotMatch", extra={
                "AWSAccessKeyId": self.access_key, "StringToSign": self.string_to_sign()})
        return key


def signing_key(secret: str, scope: Scope) -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), scope.date)
    for part in (scope.region, scope.service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def is_signed(query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
    return "Authorization" in headers or "X-Amz-Signature" in query


def parse_request(method: str, raw_path: str, raw_query: str, headers: _Headers,
                  now: datetime) -> SignedRequest:
    """The signature a request claims, with its canonical request rebuilt.

    ``raw_path`` and ``raw_query`` are the URL exactly as sent; ``headers``
    gives every value of a header (``getall``)."""
    query = parse_query(raw_query)
    names = {k for k, _ in query}
    if "X-Amz-Signature" in names or "X-Amz-Credential" in names:
        return _parse_presigned(method, raw_path, query, headers, now)
    authorization = headers.get("Authorization")
    if not authorization:
        raise S3Error("AccessDenied", "Anonymous access is not allowed: sign the request")
    return _parse_header(method, raw_path, query, headers, authorization, now)


class _Headers:
    """The part of a multi-dict request headers object this module uses."""

    def get(self, name: str, default: str | None = None) -> str | None: ...  # pragma: no cover

    def getall(self, name: str, default: Iterable[str] = ()) -> list[str]: ...  # pragma: no cover

    def keys(self) -> Iterable[str]: ...  # pragma: no cover


def _parse_header(method: str, raw_path: str, query: list[tuple[str, str]], headers: _Headers,
                  authorization: str, now: datetime) -> SignedRequest:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise S3Error("AuthorizationHeaderMalformed",
                      f"unsupported authorization algorithm {algorithm!r}")
    parts = dict(_AUTH_PARTS.findall(rest))
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        raise S3Error("AuthorizationHeaderMalformed",
                      "the Authorization header needs Credential, SignedHeaders and Signature")
    access_key, scope = _credential(parts["Credential"], "AuthorizationHeaderMalformed")
    amz_date = headers.get("X-Amz-Date") or _from_http_date(headers.get("Date"))
    when = _amz_time(amz_date, "AuthorizationHeaderMalformed")
    if when.strftime("%Y%m%d") != scope.date:
        raise S3Error("AuthorizationHeaderMalformed",
                      "the credential's date is not the date of X-Amz-Date")
    if abs((now - when).total_seconds()) > MAX_SKEW_SECONDS:
        raise S3Error("RequestTimeTooSkewed", extra={
            "RequestTime": amz_date, "ServerTime": now.strftime(_AMZ_DATE),
            "MaxAllowedSkewMilliseconds": str(MAX_SKEW_SECONDS * 1000)})
    payload = headers.get("X-Amz-Content-Sha256")
    if payload is None:
        raise S3Error("InvalidRequest", "Missing required header for this request: "
                      "x-amz-content-sha256")
    if payload not in STREAMING and payload != UNSIGNED_PAYLOAD and not _HEX64.match(payload):
        raise S3Error("InvalidArgument", "x-amz-content-sha256 must be a SHA-256 in hex, "
                      "UNSIGNED-PAYLOAD or a STREAMING-* mode")
    signed = _signed_headers(parts["SignedHeaders"], "AuthorizationHeaderMalformed")
    signature = parts["Signature"]
    if not _SIGNATURE.match(signature):
        raise S3Error("AuthorizationHeaderMalformed", "the signature is not 64 hex digits")
    canonical = canonical_request(method, raw_path, query, headers, signed, payload)
    return SignedRequest(access_key, scope, amz_date, signed, signature, canonical, payload,
                         presigned=False)


def _parse_presigned(method: str, raw_path: str, query: list[tuple[str, str]],
                     headers: _Headers, now: datetime) -> SignedRequest:
    error = "AuthorizationQueryParametersError"
    values = dict(query)
    needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
              "X-Amz-SignedHeaders", "X-Amz-Signature")
    missing = [n for n in needed if n not in values]
    if missing:
        raise S3Error(error, f"the presigned URL lacks {', '.join(missing)}")
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise S3Error(error, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    access_key, scope = _credential(values["X-Amz-Credential"], error)
    amz_date = values["X-Amz-Date"]
    when = _amz_time(amz_date, error)
    try:
        expires = int(values["X-Amz-Expires"])
    except ValueError:
        raise S3Error(error, "X-Amz-Expires should be a number") from None
    if not 0 <= expires <= MAX_EXPIRES_SECONDS:
        raise S3Error(error, "X-Amz-Expires must be between 0 and 604800 seconds")
    if (when - now).total_seconds() > MAX_SKEW_SECONDS:
        raise S3Error("AccessDenied", "Request is not valid yet")
    if (now - when).total_seconds() > expires:
        raise S3Error("AccessDenied", "Request has expired", extra={
            "X-Amz-Expires": str(expires), "Expires": _iso(when, expires),
            "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
    signed = _signed_headers(values["X-Amz-SignedHeaders"], error)
    signature = values["X-Amz-Signature"]
    if not _SIGNATURE.match(signature):
        raise S3Error(error, "the signature is not 64 hex digits")
    payload = headers.get("X-Amz-Content-Sha256") or UNSIGNED_PAYLOAD
    if payload in STREAMING:
        raise S3Error("InvalidRequest", "a presigned request cannot carry a streaming body")
    unsigned_query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    canonical = canonical_request(method, raw_path, unsigned_query, headers, signed, payload)
    return SignedRequest(access_key, scope, amz_date, signed, signature, canonical, payload,
                         presigned=True)


def _iso(when: datetime, plus: int) -> str:
    from datetime import timedelta

    return (when + timedelta(seconds=plus)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _credential(raw: str, error: str) -> tuple[str, Scope]:
    parts = raw.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise S3Error(error, f"the credential {raw!r} is not ACCESSKEY/DATE/REGION/s3/"
                      "aws4_request")
    access_key, date, region, service, _ = parts
    if not re.fullmatch(r"\d{8}", date):
        raise S3Error(error, f"the credential's date {date!r} is not YYYYMMDD")
    if service != "s3":
        raise S3Error(error, f"the credential's service is {service!r}, not 's3'")
    return access_key, Scope(date, region, service)


def _signed_headers(raw: str, error: str) -> tuple[str, ...]:
    names = tuple(raw.split(";"))
    if not raw or any(not n or n != n.lower() for n in names) or "host" not in names:
        raise S3Error(error, "SignedHeaders must be lower-case names including host")
    return names


def _amz_time(raw: str | None, error: str) -> datetime:
    if not raw:
        raise S3Error("AccessDenied", "the request has no date: send X-Amz-Date")
    try:
        return datetime.strptime(raw, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise S3Error(error, f"the date {raw!r} is not in the ISO 8601 basic format "
                      "YYYYMMDD'T'HHMMSS'Z'") from None


def _from_http_date(raw: str | None) -> str | None:
    if raw is None:
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(raw).astimezone(UTC).strftime(_AMZ_DATE)
    except (TypeError, ValueError):
        return None


# -- the canonical request -------------------------------------------------------------


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """The query's pairs, decoded, in the order sent (a bare ``?acl`` is ``("acl", "")``)."""
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_unquote(name), _unquote(value)))
    return pairs


def _unquote(text: str) -> str:
    # '+' is a space in query strings as browsers and most SDKs write them.
    return urllib.parse.unquote(text.replace("+", " "))


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """SigV4's URI encoding: everything but A-Z a-z 0-9 - _ . ~ (and '/' in paths)."""
    return urllib.parse.quote(text, safe="/~" if keep_slash else "~")


def canonical_request(method: str, raw_path: str, query: list[tuple[str, str]],
                      headers: _Headers, signed: tuple[str, ...], payload: str) -> str:
    # S3 paths are not normalised (no '.' or '//' removal), only re-encoded.
    path = uri_encode(urllib.parse.unquote(raw_path), keep_slash=True)
    canonical_query = "&".join(
        f"{k}={v}" for k, v in sorted((uri_encode(k, keep_slash=False),
                                       uri_encode(v, keep_slash=False)) for k, v in query))
    lines = []
    for name in signed:
        values = headers.getall(name, ())
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "\n".join([method, path, canonical_query, "".join(lines), ";".join(signed),
                      payload])


def amz_now() -> datetime:
    return datetime.now(UTC)
