"""Which S3 operation a request is.

The bucket comes from the path (``/bucket/key``, path-style) or from the
Host (``bucket.<domain>``, virtual-host-style, for each configured S3
domain); the operation from the method, whether a bucket and a key are
named, and the sub-resource in the query (``?location``, ``?delete``,
``?uploads``, ...). :data:`OPERATIONS` is the one table of them; the server
maps each name to its handler, and a name it has no handler for (multipart,
bucket ACLs, ...) is answered NotImplemented.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from echofs.s3.credentials import Caller
from echofs.s3.errors import S3Error
from echofs.s3.keys import file_path

__all__ = ["OPERATIONS", "Call", "Level", "Target", "check_bucket_name", "file_path",
           "operation_of", "target_of"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


class Level(StrEnum):
    SERVICE = "service"
    BUCKET = "bucket"
    OBJECT = "object"


@dataclass(frozen=True, slots=True)
class Target:
    bucket: str | None
    key: str | None

    @property
    def level(self) -> Level:
        if self.bucket is None:
            return Level.SERVICE
        return Level.BUCKET if not self.key else Level.OBJECT

    @property
    def resource(self) -> str:
        return "/" + "/".join(p for p in (self.bucket, self.key) if p)


# Sub-resources that select an operation, in the order they are tested.
SUBRESOURCES = ("uploadId", "uploads", "delete", "location", "list-type", "versioning",
                "acl", "policy", "cors", "lifecycle", "tagging", "website", "logging",
                "notification", "replication", "encryption", "object-lock", "versions",
                "retention", "legal-hold", "attributes", "restore", "select", "torrent",
                "accelerate", "requestPayment", "ownershipControls", "publicAccessBlock",
                "analytics", "metrics", "inventory", "intelligent-tiering")

# (method, level, sub-resource or "") -> operation name.
OPERATIONS: dict[tuple[str, Level, str], str] = {
    ("GET", Level.SERVICE, ""): "ListBuckets",
    ("PUT", Level.BUCKET, ""): "CreateBucket",
    ("HEAD", Level.BUCKET, ""): "HeadBucket",
    ("DELETE", Level.BUCKET, ""): "DeleteBucket",
    ("GET", Level.BUCKET, "location"): "GetBucketLocation",
    ("GET", Level.BUCKET, "versioning"): "GetBucketVersioning",
    ("GET", Level.BUCKET, ""): "ListObjects",
    ("GET", Level.BUCKET, "list-type"): "ListObjectsV2",
    ("POST", Level.BUCKET, "delete"): "DeleteObjects",
    ("GET", Level.BUCKET, "uploads"): "ListMultipartUploads",
    ("GET", Level.BUCKET, "versions"): "ListObjectVersions",
    ("PUT", Level.OBJECT, ""): "PutObject",
    ("GET", Level.OBJECT, ""): "GetObject",
    ("HEAD", Level.OBJECT, ""): "HeadObject",
    ("DELETE", Level.OBJECT, ""): "DeleteObject",
    ("POST", Level.OBJECT, "uploads"): "CreateMultipartUpload",
    ("PUT", Level.OBJECT, "uploadId"): "UploadPart",
    ("POST", Level.OBJECT, "uploadId"): "CompleteMultipartUpload",
    ("DELETE", Level.OBJECT, "uploadId"): "AbortMultipartUpload",
    ("GET", Level.OBJECT, "uploadId"): "ListParts",
}


def operation_of(method: str, target: Target, query: Mapping[str, str],
                 headers: Mapping[str, str]) -> str:
    """The operation's name; S3Error when there is none of that shape."""
    method = "GET" if method == "HEAD" and target.level is Level.SERVICE else method
    sub = next((s for s in SUBRESOURCES if s in query), "")
    if sub == "list-type" and query.get("list-type") != "2":
        raise S3Error("InvalidArgument", "list-type must be 2")
    name = OPERATIONS.get((method, target.level, sub))
    if name is None:
        if sub:
            # A sub-resource EchoFS does not keep (ACLs, policies, tagging, ...).
            return f"{method}:{sub}"
        raise S3Error("MethodNotAllowed", resource=target.resource)
    if "x-amz-copy-source" in headers:
        name = {"PutObject": "CopyObject", "UploadPart": "UploadPartCopy"}.get(name, name)
    return name


def target_of(raw_path: str, host: str | None, domains: tuple[str, ...]) -> Target:
    """Bucket and key of a request (path as sent, escapes still in)."""
    try:
        path = urllib.parse.unquote_to_bytes(raw_path.partition("?")[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI: its escapes are not "
                      "UTF-8", status=400) from None
    bucket = _virtual_bucket(host, domains)
    if bucket is None:
        stripped = path.lstrip("/")
        if not stripped:
            return Target(None, None)
        bucket, _, key = stripped.partition("/")
    else:
        key = path[1:] if path.startswith("/") else path
    return Target(bucket, key or None)


def _virtual_bucket(host: str | None, domains: tuple[str, ...]) -> str | None:
    if not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    if _IP.match(name) or name in domains:
        return None
    for domain in sorted(domains, key=len, reverse=True):
        if name.endswith("." + domain):
            return name[: -len(domain) - 1]
    return None


def check_bucket_name(name: str) -> None:
    if not _BUCKET.match(name) or ".." in name or _IP.match(name) or ".-" in name \
            or "-." in name:
        raise S3Error("InvalidBucketName", "Bucket names are 3 to 63 characters: lower-case "
                      "letters, digits, '.' and '-', starting and ending with a letter or digit",
                      resource="/" + name)


@dataclass(frozen=True, slots=True)
class Call:
    """One S3 request, understood: its operation, target, query and caller."""

    operation: str
    target: Target
    query: Mapping[str, str]
    owner: str  # the account acting (whose buckets it may use)
    caller: Caller
