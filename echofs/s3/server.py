"""The S3 endpoint: an aiohttp app of one catch-all route, its operations
dispatched from one table, behind one middleware that makes every outcome
S3-shaped.

The middleware gives each request an id (``x-amz-request-id``, also the
REST API's ``X-Request-Id``), checks the signature before any handler runs,
turns every error into S3's XML error document (our own errors mapped to
S3's codes; anything unexpected is InternalError, logged with its traceback),
counts the request per operation, and writes the one access-log line per
request the REST API writes, with the operation in it.

Multipart operations are handled by :mod:`echofs.s3.multipart` on the
upload-session service; an operation of the routing table with no handler in
:attr:`S3Server.handlers` is answered NotImplemented.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import Counter, Histogram

from echofs.auth.access_keys import AccessKeys
from echofs.auth.attempt_limits import charge
from echofs.cache.base import Cache
from echofs.core.errors import (
    EchoFSError,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RequestTimeout,
    TooManyRequests,
    Unavailable,
)
from echofs.master.files import FileService
from echofs.master.upload_sessions import UploadSessionService
from echofs.metadata.buckets import BucketsRepository
from echofs.observability.request_id import HTTP_HEADER as REQUEST_ID_HEADER
from echofs.observability.request_id import accept_request_id
from echofs.observability.request_log import REQUEST_LOG
from echofs.s3 import errors as s3_errors
from echofs.s3.buckets import BucketOperations
from echofs.s3.credentials import Credentials
from echofs.s3.errors import S3Error, error_document
from echofs.s3.listing import Listing
from echofs.s3.multipart import MultipartOperations
from echofs.s3.objects import ObjectOperations
from echofs.s3.routing import OPERATIONS, Call, Target, operation_of, target_of
from echofs.s3.sigv2 import SignedV2, is_v2, parse_v2
from echofs.s3.sigv4 import SignedRequest, amz_now, parse_query, parse_request
from echofs.s3.versions import VersionListing
from echofs.serving.middleware import CLIENT_CLOSED, FACTS, RequestFacts
from echofs.serving.transfer_coding import SUPPORTED as SUPPORTED_CODINGS
from echofs.serving.transfer_coding import request_codings

log = structlog.get_logger("echofs.s3")

Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
S3_REQUESTS = Counter("echofs_s3_requests", "S3 requests answered, by operation.",
                      ["operation"])
S3_ERRORS = Counter("echofs_s3_errors", "S3 requests answered with an error, by S3 error code.",
                    ["code"])
S3_LATENCY = Histogram("echofs_s3_request_duration_seconds",
                       "Time from an S3 request to the last byte of its answer, by operation.",
                       ["operation"], buckets=_LATENCY_BUCKETS)
# Every series exists from the start (zero), so dashboards and alerts see them.
for _operation in (*OPERATIONS.values(), "CopyObject", "UploadPartCopy", "Unknown"):
    S3_REQUESTS.labels(_operation)
    S3_LATENCY.labels(_operation)
for _code in s3_errors._KNOWN:
    S3_ERRORS.labels(_code)

OPERATION = web.RequestKey("echofs_s3_operation", str)


class S3Server:
    def __init__(self, files: FileService, buckets: BucketsRepository,
                 keys: AccessKeys, *, accounts: bool, region: str, domains: tuple[str, ...],
                 max_size: int, read_ahead: int, cache: Cache | None = None,
                 per_minute: int = 0, sessions: UploadSessionService | None = None) -> None:
        self.credentials = Credentials(keys, accounts=accounts)
        # RATE_LIMIT_PER_MINUTE counts S3 requests too, per account, in the
        # same counters as the REST API's (Redis when configured).
        self.cache = cache
        self.per_minute = per_minute
        self.region = region
        self.domains = domains
        self.buckets = buckets
        bucket_ops = BucketOperations(buckets, region)
        objects = ObjectOperations(files, buckets, bucket_ops, max_size=max_size,
                                   read_ahead=read_ahead)
        listing = Listing(files, buckets, bucket_ops)
        self.handlers: dict[str, Handler] = {
            "ListBuckets": bucket_ops.list_buckets,
            "CreateBucket": bucket_ops.create_bucket,
            "HeadBucket": bucket_ops.head_bucket,
            "DeleteBucket": bucket_ops.delete_bucket,
            "GetBucketLocation": bucket_ops.get_location,
            "GetBucketVersioning": bucket_ops.get_versioning,
            "ListObjects": listing.list_v1,
            "ListObjectsV2": listing.list_v2,
            "ListObjectVersions": VersionListing(listing).list_versions,
            "PutObject": objects.put_object,
            "CopyObject": objects.copy_object,
            "GetObject": objects.get_object,
            "HeadObject": objects.head_object,
            "DeleteObject": objects.delete_object,
            "DeleteObjects": objects.delete_objects,
        }
        if sessions is not None:  # multipart uploads are upload sessions
            self.handlers.update(MultipartOperations(files, buckets, bucket_ops, sessions,
                                                     read_ahead=read_ahead).handlers())

    def app(self) -> web.Application:
        # One route for everything: S3 names operations by method, host,
        # path and query, which routing.operation_of reads.
        app = web.Application(middlewares=[self.middleware])
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        codings = request_codings(request)
        if codings and tuple(codings) != SUPPORTED_CODINGS:
            # aiohttp would silently drop a coding listed before 'chunked'.
            raise S3Error("NotImplemented", f"transfer coding {', '.join(codings)!r} is not "
                          "supported")
        raw_path, _, raw_query = request.raw_path.partition("?")
        target = target_of(raw_path, request.host, self.domains)
        query = dict(parse_query(raw_query))
        if request.method == "OPTIONS":
            raise _preflight_refused(request)
        name = operation_of(request.method, target, query, request.headers)
        request[OPERATION] = name
        # Who is asking, before anything else is said about the request.
        try:
            signed = self._signed(request, raw_path, raw_query, target)
        except S3Error as exc:
            # An anonymous request for a bucket that does not exist is told
            # so, as S3 tells it (bucket names are public anyway).
            if exc.code == "AccessDenied" and target.bucket is not None \
                    and _anonymous(request, query) \
                    and await self.buckets.get(target.bucket) is None:
                raise S3Error("NoSuchBucket", resource=f"/{target.bucket}",
                              extra={"BucketName": target.bucket}) from None
            raise
        caller = await self.credentials.caller(signed)
        facts_of(request).user = caller.owner
        if self.cache is not None and self.per_minute > 0:
            await charge(self.cache, caller.owner, self.per_minute, f"user {caller.owner!r}")
        handler = self.handlers.get(name)
        if handler is None:
            raise S3Error("NotImplemented", f"{name} is not implemented by EchoFS",
                          resource=target.resource)
        return await handler(request, Call(name, target, query, caller.owner, caller))

    def _signed(self, request: web.Request, raw_path: str, raw_query: str,
                target: Target) -> SignedRequest | SignedV2:
        now = amz_now()
        pairs = parse_query(raw_query)
        if is_v2(dict(pairs), request.headers.get("Authorization")):
            # SigV2's resource is /bucket/key (a bucket alone: "/bucket/"),
            # the key as sent, whichever addressing style named the bucket.
            if target.bucket is None:
                resource = "/"
            elif raw_path.startswith(f"/{target.bucket}") and \
                    self._path_style(request, raw_path):
                resource = f"/{target.bucket}/" + raw_path[len(target.bucket) + 2:]
            else:
                resource = f"/{target.bucket}/" + raw_path.lstrip("/")
            return parse_v2(request.method, resource, pairs, request.headers, now)
        return parse_request(request.method, raw_path, raw_query, request.headers, now)

    def _path_style(self, request: web.Request, raw_path: str) -> bool:
        return target_of(raw_path, request.host, self.domains) == target_of(
            raw_path, None, ())

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        request[FACTS] = RequestFacts(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except S3Error as exc:
            response, status = self._error(request, exc, request_id), exc.status
        except EchoFSError as exc:
            mapped = _mapped(exc, request)
            response, status = self._error(request, mapped, request_id), mapped.status
        except RequestPayloadError as exc:
            error = S3Error("IncompleteBody", f"the request body could not be read: {exc}")
            response, status = self._error(request, error, request_id), error.status
        except ConnectionResetError as exc:
            status = CLIENT_CLOSED
            request[FACTS].error = str(exc) or "connection lost"
            response = web.Response(status=CLIENT_CLOSED)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            error = S3Error("InvalidRequest", exc.reason, status=exc.status)
            response, status = self._error(request, error, request_id), exc.status
        except Exception:
            log.exception("unhandled S3 error", path=request.path, method=request.method)
            error = S3Error("InternalError")
            response, status = self._error(request, error, request_id), 500
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        if not response.prepared:
            response.headers["x-amz-request-id"] = request_id
            response.headers[REQUEST_ID_HEADER] = request_id
            response.headers["x-amz-id-2"] = request_id
            response.headers["Server"] = "EchoFS"
        operation = request.get(OPERATION, "Unknown")
        elapsed = time.monotonic() - started
        S3_REQUESTS.labels(operation).inc()
        S3_LATENCY.labels(operation).observe(elapsed)
        level = (logging.ERROR if status == 500 else
                 logging.WARNING if status >= 500 or status == CLIENT_CLOSED else logging.INFO)
        if REQUEST_LOG.enabled(level):
            REQUEST_LOG.emit(level, "echofs.s3", "request", {
                "method": request.method, "path": request.path, "status": status,
                "operation": operation, "duration_ms": round(elapsed * 1000, 2),
                **request[FACTS].fields()})
        return response

    def _error(self, request: web.Request, error: S3Error, request_id: str) -> web.Response:
        S3_ERRORS.labels(error.code).inc()
        request[FACTS].error = error.code
        headers = {}
        if error.code == "InvalidRange" and "ActualObjectSize" in error.extra:
            headers["Content-Range"] = f"bytes */{error.extra['ActualObjectSize']}"
        if error.code in ("SlowDown", "ServiceUnavailable"):
            headers["Retry-After"] = error.extra.get("RetryAfter", "1")
        if request.method == "HEAD":
            # A HEAD answer has no body: the code travels in a header.
            headers["x-amz-error-code"] = error.code
            return web.Response(status=error.status, headers=headers)
        body = error_document(error, request_id, request.path)
        return web.Response(status=error.status, body=body, headers=headers,
                            content_type="application/xml")


def _anonymous(request: web.Request, query: dict[str, str]) -> bool:
    """Neither signed in a header nor presigned in the query."""
    return "Authorization" not in request.headers and not (
        {"X-Amz-Signature", "Signature"} & query.keys())


def _preflight_refused(request: web.Request) -> S3Error:
    """A CORS preflight (OPTIONS). EchoFS keeps no CORS rules, so it is
    refused as S3 refuses it for a bucket without them: 400 when it names no
    origin, 403 when it does."""
    if "Origin" not in request.headers:
        return S3Error("BadRequest", "Insufficient information. Origin request header "
                       "needed.")
    return S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.")


def facts_of(request: web.Request) -> RequestFacts:
    return request[FACTS]


def _mapped(exc: EchoFSError, request: web.Request) -> S3Error:
    """Our own errors in S3's words."""
    if isinstance(exc, NotFound):
        return S3Error("NoSuchKey", exc.message)
    if isinstance(exc, RangeNotSatisfiable):
        return S3Error("InvalidRange", exc.message,
                       extra={"ActualObjectSize": str(exc.size)})
    if isinstance(exc, InsufficientStorage):
        return S3Error("InsufficientStorage", exc.message)
    if isinstance(exc, PayloadTooLarge):
        return S3Error("EntityTooLarge", exc.message)
    if isinstance(exc, RequestTimeout):
        return S3Error("RequestTimeout", exc.message, status=400)
    if isinstance(exc, TooManyRequests):
        return S3Error("SlowDown", exc.message, extra={"RetryAfter": str(exc.retry_after)})
    if isinstance(exc, Unavailable):
        return S3Error("ServiceUnavailable", exc.message)
    if exc.status < 500:
        return S3Error("InvalidRequest", exc.message, status=exc.status)
    return S3Error("InternalError", exc.message, status=exc.status)


