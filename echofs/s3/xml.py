"""The XML S3 answers with, and the XML it reads (DeleteObjects, CreateBucket).

Documents are built as text with every value escaped: they are flat and
small, and this keeps their element order exactly S3's. Request bodies are
parsed with defusedxml (no entities, no external references) after a size
check, and a body that is not the expected document is MalformedXML.
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from aiohttp import web
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from echofs.s3.errors import S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
# DeleteObjects: 1000 keys of up to 1024 bytes, with their markup.
MAX_REQUEST_XML = 2 * 1024 * 1024


def iso_time(epoch: float) -> str:
    """S3's timestamp: ISO 8601 in UTC with milliseconds."""
    when = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value)).translate(_CONTROL_REFS)}</{name}>"


# Control characters a key may hold, as character references: raw, they
# would make the document malformed (and a raw CR would be read as LF).
# Clients that need every key exactly ask for encoding-type=url.
_CONTROL_REFS = {c: f"&#x{c:X};" for c in (*range(0x01, 0x20), 0x7F)
                 if chr(c) not in "\t\n"}


def document(root: str, *parts: str) -> bytes:
    return (HEADER + f'<{root} xmlns="{NS}">' + "".join(parts) + f"</{root}>").encode()


def owner_xml(owner: str, tag: str = "Owner") -> str:
    return f"<{tag}>{element('ID', owner)}{element('DisplayName', owner)}</{tag}>"


@dataclass(frozen=True, slots=True)
class Encoder:
    """``encoding-type=url``: keys and prefixes in a listing URL-encoded
    (what aws-cli asks for, so any byte survives XML)."""

    url: bool

    def __call__(self, text: str) -> str:
        return urllib.parse.quote(text, safe="/") if self.url else text


def buckets_document(owner: str, buckets: Iterable[tuple[str, float]], *,
                     continuation: str | None = None, prefix: str | None = None) -> bytes:
    items = "".join(f"<Bucket>{element('Name', name)}"
                    f"{element('CreationDate', iso_time(created))}</Bucket>"
                    for name, created in buckets)
    tail = (element("ContinuationToken", continuation) if continuation else "") + \
        (element("Prefix", prefix) if prefix else "")
    return document("ListAllMyBucketsResult", owner_xml(owner), f"<Buckets>{items}</Buckets>",
                    tail)


def location_document(region: str) -> bytes:
    # us-east-1 is S3's empty LocationConstraint.
    value = "" if region == "us-east-1" else escape(region)
    return (HEADER + f'<LocationConstraint xmlns="{NS}">{value}</LocationConstraint>').encode()


def copy_result(etag: str, modified: float, tag: str = "CopyObjectResult") -> bytes:
    return document(tag, element("LastModified", iso_time(modified)), element("ETag", etag))


# -- request bodies ----------------------------------------------------------------------


async def read_body(request: web.Request) -> bytes:
    """A request's whole (small) XML body, refused past MAX_REQUEST_XML."""
    if (request.content_length or 0) > MAX_REQUEST_XML:
        raise S3Error("MalformedXML", "the XML body is too large")
    body = bytearray()
    async for piece in request.content.iter_chunked(64 * 1024):
        body += piece
        if len(body) > MAX_REQUEST_XML:
            raise S3Error("MalformedXML", "the XML body is too large")
    return bytes(body)


def parse(body: bytes, root: str) -> Element:
    if len(body) > MAX_REQUEST_XML:
        raise S3Error("MalformedXML", "the XML body is too large")
    try:
        tree = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise S3Error("MalformedXML") from None
    if _local(tree.tag) != root:
        raise S3Error("MalformedXML", f"expected a <{root}> document")
    return tree


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def children(node: Element, name: str) -> list[Element]:
    return [c for c in node if _local(c.tag) == name]


def child_text(node: Element, name: str) -> str | None:
    found = children(node, name)
    return (found[0].text or "") if found else None


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    keys: list[str]
    quiet: bool
    # Each key's <VersionId>, None where none was given.
    version_ids: list[str | None]


def parse_delete(body: bytes) -> DeleteRequest:
    tree = parse(body, "Delete")
    keys, version_ids = [], []
    for item in children(tree, "Object"):
        key = child_text(item, "Key")
        if key is None:
            raise S3Error("MalformedXML", "an <Object> has no <Key>")
        keys.append(key)
        version_ids.append(child_text(item, "VersionId"))
    if not keys:
        raise S3Error("MalformedXML", "<Delete> names no <Object>")
    if len(keys) > 1000:
        raise S3Error("MalformedXML", "<Delete> may name at most 1000 objects")
    return DeleteRequest(keys, (child_text(tree, "Quiet") or "").lower() == "true",
                         version_ids)


def parse_location(body: bytes) -> str | None:
    """The LocationConstraint of a CreateBucket body (None: none given)."""
    if not body.strip():
        return None
    tree = parse(body, "CreateBucketConfiguration")
    return child_text(tree, "LocationConstraint")
