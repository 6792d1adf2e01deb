"""ListObjectVersions for EchoFS buckets, which S3 sees as unversioned.

EchoFS keeps versions of its own, but offers no S3 version ids (the bucket
reports versioning off), so — as S3 answers for a bucket whose versioning
was never enabled — every object has exactly one version, ``null``, which
is the latest, and there are no delete markers. Clients that clean a bucket
through this call (and DeleteObjects with ``VersionId`` ``null``) work
against EchoFS as against any unversioned bucket.
"""

from __future__ import annotations

from aiohttp import web

from echofs.s3 import xml
from echofs.s3.errors import S3Error
from echofs.s3.listing import Listing, max_keys_of
from echofs.s3.routing import Call

# The one version id an object of an unversioned bucket has.
NULL_VERSION = "null"


class VersionListing:
    def __init__(self, listing: Listing) -> None:
        self.listing = listing

    async def list_versions(self, request: web.Request, call: Call) -> web.Response:
        bucket = await self.listing.bucket_ops.owned(call)
        q = call.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = max_keys_of(q.get("max-keys"))
        encoding = q.get("encoding-type")
        if encoding not in (None, "url"):
            raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
        encode = xml.Encoder(encoding == "url")
        key_marker = q.get("key-marker", "")
        version_marker = q.get("version-id-marker")
        if version_marker is not None:
            if not key_marker:
                raise S3Error("InvalidArgument", "A version-id marker cannot be specified "
                              "without a key marker.")
            if version_marker not in ("", NULL_VERSION):
                raise S3Error("InvalidArgument", "Invalid version id specified")
        page = await self.listing.page(bucket.owner, bucket.name, prefix, delimiter,
                                       key_marker, max_keys)
        metas = await self.listing.buckets.metas(
            [(r.file_id, r.current_version) for _, r in page.keys])
        versions = []
        for key, record in page.keys:
            meta = metas.get((record.file_id, record.current_version))
            etag = meta.etag if meta else f'"{record.blake3[:32]}-1"'
            versions.append(
                "<Version>" + xml.element("Key", encode(key))
                + xml.element("VersionId", NULL_VERSION) + xml.element("IsLatest", "true")
                + xml.element("LastModified", xml.iso_time(record.updated_at))
                + xml.element("ETag", etag) + xml.element("Size", record.size)
                + xml.owner_xml(bucket.owner)
                + xml.element("StorageClass", "STANDARD") + "</Version>")
        prefixes = [f"<CommonPrefixes>{xml.element('Prefix', encode(p))}</CommonPrefixes>"
                    for p in page.prefixes]
        parts = [xml.element("Name", bucket.name), xml.element("Prefix", encode(prefix)),
                 xml.element("KeyMarker", encode(key_marker)),
                 xml.element("VersionIdMarker", version_marker or ""),
                 xml.element("MaxKeys", max_keys)]
        if delimiter:
            parts.append(xml.element("Delimiter", encode(delimiter)))
        if encoding:
            parts.append(xml.element("EncodingType", encoding))
        parts.append(xml.element("IsTruncated", "true" if page.truncated else "false"))
        if page.truncated and page.last is not None:
            parts.append(xml.element("NextKeyMarker", encode(page.last)))
            parts.append(xml.element("NextVersionIdMarker", NULL_VERSION))
        body = xml.document("ListVersionsResult", *parts, *versions, *prefixes)
        return web.Response(body=body, content_type="application/xml")
