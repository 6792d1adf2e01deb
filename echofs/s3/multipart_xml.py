"""The XML of S3 multipart uploads: the documents Create, UploadPartCopy,
Complete, ListParts and ListMultipartUploads answer with, and the
CompleteMultipartUpload request (the parts, by number and ETag)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from echofs.core.upload_sessions import PartRecord
from echofs.metadata.s3_uploads import S3Upload
from echofs.s3.errors import S3Error
from echofs.s3.xml import (
    Encoder,
    child_text,
    children,
    document,
    element,
    iso_time,
    owner_xml,
    parse,
)

# S3 numbers parts 1 to 10,000.
MAX_PART_NUMBER = 10_000


def create_result(bucket: str, key: str, upload_id: str) -> bytes:
    return document("InitiateMultipartUploadResult", element("Bucket", bucket),
                    element("Key", key), element("UploadId", upload_id))


def complete_result(location: str, bucket: str, key: str, etag: str) -> bytes:
    return document("CompleteMultipartUploadResult", element("Location", location),
                    element("Bucket", bucket), element("Key", key), element("ETag", etag))


def part_etag(part: PartRecord) -> str:
    return f'"{part.md5}"'


@dataclass(frozen=True, slots=True)
class PartsPage:
    bucket: str
    key: str
    upload_id: str
    owner: str
    marker: int
    max_parts: int
    parts: Sequence[PartRecord]
    truncated: bool


def parts_document(page: PartsPage) -> bytes:
    items = "".join(
        f"<Part>{element('PartNumber', p.part)}{element('LastModified', iso_time(p.stored_at))}"
        f"{element('ETag', part_etag(p))}{element('Size', p.size)}</Part>"
        for p in page.parts)
    next_marker = page.parts[-1].part if page.parts else page.marker
    return document(
        "ListPartsResult", element("Bucket", page.bucket), element("Key", page.key),
        element("UploadId", page.upload_id), owner_xml(page.owner, "Initiator"),
        owner_xml(page.owner), element("StorageClass", "STANDARD"),
        element("PartNumberMarker", page.marker), element("NextPartNumberMarker", next_marker),
        element("MaxParts", page.max_parts),
        element("IsTruncated", "true" if page.truncated else "false"), items)


@dataclass(frozen=True, slots=True)
class UploadsPage:
    bucket: str
    owner: str
    prefix: str
    key_marker: str
    upload_id_marker: str
    max_uploads: int
    uploads: Sequence[S3Upload]
    truncated: bool
    encode: Encoder


def uploads_document(page: UploadsPage) -> bytes:
    enc = page.encode
    items = "".join(
        f"<Upload>{element('Key', enc(u.key))}{element('UploadId', u.upload_id)}"
        f"{owner_xml(page.owner, 'Initiator')}{owner_xml(page.owner)}"
        f"{element('StorageClass', 'STANDARD')}{element('Initiated', iso_time(u.initiated))}"
        "</Upload>" for u in page.uploads)
    last = page.uploads[-1] if page.uploads else None
    parts = [element("Bucket", page.bucket), element("KeyMarker", enc(page.key_marker)),
             element("UploadIdMarker", page.upload_id_marker)]
    if page.truncated and last is not None:
        parts += [element("NextKeyMarker", enc(last.key)),
                  element("NextUploadIdMarker", last.upload_id)]
    if page.encode.url:
        parts.append(element("EncodingType", "url"))
    parts += [element("Prefix", enc(page.prefix)), element("MaxUploads", page.max_uploads),
              element("IsTruncated", "true" if page.truncated else "false"), items]
    return document("ListMultipartUploadsResult", *parts)


@dataclass(frozen=True, slots=True)
class CompletedPart:
    number: int
    etag: str  # as sent, quotes stripped


def parse_complete(body: bytes) -> list[CompletedPart]:
    """The parts a CompleteMultipartUpload names, in the order named."""
    tree = parse(body, "CompleteMultipartUpload")
    parts = []
    for item in children(tree, "Part"):
        number, etag = child_text(item, "PartNumber"), child_text(item, "ETag")
        if number is None or etag is None:
            raise S3Error("MalformedXML", "each <Part> needs a <PartNumber> and an <ETag>")
        try:
            value = int(number.strip())
        except ValueError:
            raise S3Error("MalformedXML", f"<PartNumber> {number!r} is not a number") from None
        if not 1 <= value <= MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", f"part numbers run from 1 to {MAX_PART_NUMBER}")
        parts.append(CompletedPart(value, etag.strip().strip('"')))
    if not parts:
        raise S3Error("MalformedXML", "<CompleteMultipartUpload> names no <Part>")
    if len(parts) > MAX_PART_NUMBER:
        raise S3Error("MalformedXML", f"at most {MAX_PART_NUMBER} parts")
    return parts
