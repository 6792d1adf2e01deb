"""AWS Signature Version 2, the legacy scheme: still what boto3's
``generate_presigned_url`` makes unless told ``signature_version="s3v4"``,
and what older tools send. HMAC-SHA1 over the method, Content-MD5,
Content-Type, date (or the presigned URL's Expires), the ``x-amz-*``
headers and the resource with its S3 sub-resources.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from echofs.s3.errors import S3Error
from echofs.s3.sigv4 import MAX_SKEW_SECONDS, UNSIGNED_PAYLOAD

# Query parameters that are part of the signed resource (S3's list).
_SUBRESOURCES = frozenset({
    "acl", "cors", "delete", "lifecycle", "location", "logging", "notification",
    "partNumber", "policy", "requestPayment", "response-cache-control",
    "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires",
    "restore", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website"})


@dataclass(frozen=True, slots=True)
class SignedV2:
    access_key: str
    signature: str
    string_to_sign: str
    presigned: bool
    payload: str = UNSIGNED_PAYLOAD
    scope: None = None
    amz_date: str = ""

    def verify(self, secret: str) -> bytes | None:
        expected = base64.b64encode(hmac.new(secret.encode(), self.string_to_sign.encode(),
                                             hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, self.signature):
            raise S3Error("SignatureDoesNotMatch", extra={
                "AWSAccessKeyId": self.access_key, "StringToSign": self.string_to_sign})
        return None


def is_v2(query: dict[str, str], authorization: str | None) -> bool:
    return ("Signature" in query and "AWSAccessKeyId" in query) or bool(
        authorization and authorization.startswith("AWS "))


def parse_v2(method: str, resource: str, query: list[tuple[str, str]], headers,  # type: ignore[no-untyped-def]
             now: datetime) -> SignedV2:
    """``resource``: /bucket/key as sent (escapes in), path- or virtual-host-style."""
    values = dict(query)
    subresources = sorted((k, v) for k, v in query if k in _SUBRESOURCES)
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    amz = sorted((name.lower(), ",".join(v.strip() for v in headers.getall(name)))
                 for name in set(headers.keys()) if name.lower().startswith("x-amz-"))
    amz_lines = "".join(f"{name}:{value}\n" for name, value in amz)
    if "Signature" in values:
        try:
            expires = int(values.get("Expires", ""))
        except ValueError:
            raise S3Error("AccessDenied", "the presigned URL has no valid Expires") from None
        if now.timestamp() > expires:
            raise S3Error("AccessDenied", "Request has expired")
        when = str(expires)
        access_key, signature, presigned = values["AWSAccessKeyId"], values["Signature"], True
    else:
        credential = headers.get("Authorization")[4:]
        access_key, _, signature = credential.rpartition(":")
        if not access_key or not signature:
            raise S3Error("InvalidArgument", "the AWS authorization header is malformed")
        date = headers.get("Date") or ""
        stamp = headers.get("X-Amz-Date") or date
        try:
            sent = parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            raise S3Error("AccessDenied", "the request has no valid Date") from None
        if abs((now - sent).total_seconds()) > MAX_SKEW_SECONDS:
            raise S3Error("RequestTimeTooSkewed")
        when = "" if headers.get("X-Amz-Date") else date
        presigned = False
    text = "\n".join([method, headers.get("Content-MD5") or "",
                      headers.get("Content-Type") or "", when]) + "\n" + amz_lines + resource
    return SignedV2(access_key, signature, text, presigned)
