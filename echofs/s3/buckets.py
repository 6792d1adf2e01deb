"""Bucket operations: list, create, head, delete, location, versioning.

A bucket belongs to the account that created it; another account gets
AccessDenied (the bucket's existence is not hidden: S3's names are global,
and CreateBucket would tell anyway).
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from echofs.metadata.buckets import BucketRecord, BucketsRepository, BucketTaken
from echofs.s3 import xml
from echofs.s3.errors import S3Error
from echofs.s3.routing import Call, check_bucket_name


class BucketOperations:
    def __init__(self, buckets: BucketsRepository, region: str) -> None:
        self.buckets = buckets
        self.region = region

    async def owned(self, call: Call) -> BucketRecord:
        """The call's bucket, which must exist and be the caller's."""
        name = call.target.bucket
        assert name is not None
        found = await self.buckets.get(name)
        if found is None:
            raise S3Error("NoSuchBucket", resource=f"/{name}", extra={"BucketName": name})
        if found.owner != call.owner:
            raise S3Error("AccessDenied", resource=f"/{name}")
        return found

    async def list_buckets(self, request: web.Request, call: Call) -> web.Response:
        """The caller's buckets by name; with ``max-buckets``, a page of them
        and a ``ContinuationToken`` for the next (``prefix`` narrows)."""
        q = call.query
        prefix = q.get("prefix", "")
        limit = _max_buckets(q.get("max-buckets"))
        token = q.get("continuation-token")
        after = _decode_token(token) if token else ""
        owned = [b for b in await self.buckets.owned_by(call.owner)
                 if b.name.startswith(prefix) and b.name > after]
        page = owned if limit is None else owned[:limit]
        more = len(page) < len(owned)
        return _xml(xml.buckets_document(
            call.owner, [(b.name, b.created_at) for b in page],
            continuation=_encode_token(page[-1].name) if more and page else None,
            prefix=prefix or None))

    async def create_bucket(self, request: web.Request, call: Call) -> web.Response:
        name = call.target.bucket
        assert name is not None
        check_bucket_name(name)
        location = xml.parse_location(await _small_body(request))
        if location and location != self.region:
            raise S3Error("InvalidLocationConstraint",
                          f"this endpoint's region is {self.region!r}", status=400)
        try:
            await self.buckets.create(name, call.owner)
        except BucketTaken as taken:
            code = "BucketAlreadyOwnedByYou" if taken.owner == call.owner \
                else "BucketAlreadyExists"
            raise S3Error(code, resource=f"/{name}", extra={"BucketName": name}) from None
        return web.Response(status=200, headers={"Location": f"/{name}"})

    async def head_bucket(self, request: web.Request, call: Call) -> web.Response:
        await self.owned(call)
        return web.Response(status=200, headers={"x-amz-bucket-region": self.region})

    async def delete_bucket(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.owned(call)
        if not await self.buckets.delete(bucket.name, bucket.owner):
            raise S3Error("BucketNotEmpty", resource=f"/{bucket.name}",
                          extra={"BucketName": bucket.name})
        return web.Response(status=204)

    async def get_location(self, request: web.Request, call: Call) -> web.Response:
        await self.owned(call)
        return _xml(xml.location_document(self.region))

    async def get_versioning(self, request: web.Request, call: Call) -> web.Response:
        # EchoFS keeps versions of its own (VERSIONS_KEPT), but S3 versioning
        # (version ids in the API) is not offered: the bucket reports it off.
        await self.owned(call)
        return _xml(xml.document("VersioningConfiguration"))


# S3's largest ListBuckets page.
MAX_BUCKETS = 10000


def _max_buckets(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise S3Error("InvalidArgument", "max-buckets must be a whole number") from None
    if not 1 <= value <= MAX_BUCKETS:
        raise S3Error("InvalidArgument", f"max-buckets must be between 1 and {MAX_BUCKETS}")
    return value


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect") \
            from None


async def _small_body(request: web.Request) -> bytes:
    return await xml.read_body(request)


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/xml")
