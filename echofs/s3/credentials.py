"""Who signed an S3 request.

With accounts (``JWT_SECRET`` set), the access key names an account and its
secret must reproduce the signature (:mod:`echofs.auth.access_keys`). In
single-user mode (no accounts, loopback only) there are no keys to check:
any well-formed SigV4 request is accepted, as MinIO does with its root
credentials, and acts as the local user — presigned URLs still expire and
clocks still must agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from echofs.auth.access_keys import AccessKeys
from echofs.s3.errors import S3Error
from echofs.s3.sigv2 import SignedV2
from echofs.s3.sigv4 import SignedRequest

# The owner of everything in single-user mode (the REST API's local user).
LOCAL_OWNER = "local"


@dataclass(frozen=True, slots=True)
class Caller:
    """The account a request acts as, with what checks its body's chunks."""

    owner: str
    signed: SignedRequest | SignedV2
    signing_key: bytes | None  # None: single-user mode, signatures not checked


class Credentials:
    def __init__(self, keys: AccessKeys, *, accounts: bool) -> None:
        self.keys = keys
        self.accounts = accounts

    async def caller(self, signed: SignedRequest | SignedV2) -> Caller:
        if not self.accounts:
            return Caller(LOCAL_OWNER, signed, None)
        owner = await self.keys.owner_of(signed.access_key)
        if owner is None:
            raise S3Error("InvalidAccessKeyId", extra={"AWSAccessKeyId": signed.access_key})
        key = signed.verify(owner.secret)  # SigV2: None (no chunked bodies)
        return Caller(owner.user_id, signed, key)
