"""S3's errors: a code, an HTTP status and a message, sent as S3's XML document.

Every failure of the S3 face leaves as one of these (see ``server``), so
clients that branch on ``Code`` (boto3's ``ClientError``, aws-cli's exit
codes, rclone's retries) see what AWS would send.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

# code -> status, and the message sent when the raiser gives none.
_KNOWN: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AccessForbidden": (403, "CORSResponse: CORS is not enabled for this bucket."),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed"),
    "AuthorizationQueryParametersError": (400, "The presigned URL's parameters are malformed"),
    "BadRequest": (400, "Bad Request"),
    "BadDigest": (400, "The checksum you specified did not match what we received"),
    "BucketAlreadyExists": (409, "The requested bucket name is not available"),
    "BucketAlreadyOwnedByYou": (409, "You already own this bucket"),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size"),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed size"),
    "ExpiredToken": (400, "The provided token has expired"),
    "IncompleteBody": (400, "You did not provide the number of bytes specified"),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The access key Id you provided does not exist in our records"),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid"),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid"),
    "InvalidPart": (400, "One or more of the specified parts could not be found"),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order"),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "KeyTooLongError": (400, "Your key is too long"),
    "MalformedXML": (400, "The XML you provided was not well-formed"),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource"),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header"),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist"),
    "NoSuchUpload": (404, "The specified multipart upload does not exist"),
    "NoSuchVersion": (404, "The specified version does not exist"),
    "NotImplemented": (501, "A header or operation you provided is not implemented"),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold"),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current "
                             "time is too large"),
    "ServiceUnavailable": (503, "Please reduce your request rate"),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the "
                              "signature you provided"),
    "SlowDown": (503, "Please reduce your request rate"),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not "
                                  "match what was computed"),
    "InsufficientStorage": (507, "The server's disk is full"),
}


class S3Error(Exception):
    """An S3 error answer. ``resource`` is the path the error is about."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 resource: str | None = None, extra: dict[str, str] | None = None) -> None:
        known_status, known_message = _KNOWN.get(code, (400, code))
        self.code = code
        self.status = status or known_status
        self.message = message or known_message
        self.resource = resource
        self.extra = extra or {}
        super().__init__(f"{code}: {self.message}")


def error_document(error: S3Error, request_id: str, resource: str) -> bytes:
    """S3's ``<Error>`` document for ``error``."""
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in error.extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{error.code}</Code><Message>{escape(error.message)}</Message>"
        f"<Resource>{escape(error.resource or resource)}</Resource>"
        f"<RequestId>{escape(request_id)}</RequestId>{extra}</Error>"
    ).encode()
