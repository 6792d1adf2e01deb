"""Where the tables are and how to talk to them: the ``dynamodb://`` URL, the
table names, and one aioboto3 client with retries and request counts.

``dynamodb://?region=eu-west-1&endpoint=http://127.0.0.1:8000&prefix=echofs-``
— every part optional. Environment variables fill what the URL leaves out:
``AWS_REGION`` (or ``AWS_DEFAULT_REGION``), ``AWS_ENDPOINT_URL_DYNAMODB`` or
``DYNAMODB_ENDPOINT_URL`` for a local endpoint, and the original's
``DYNAMODB_FILES_TABLE``, ``DYNAMODB_CHUNKS_TABLE``,
``DYNAMODB_SESSIONS_TABLE`` (plus ours, ``DYNAMODB_ACCOUNTS_TABLE`` and
``DYNAMODB_CONTROLLER_TABLE``) to name tables one by one. Credentials are
boto's usual chain (environment, profile, instance role).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client import Counter

SCHEME = "dynamodb"
DEFAULT_PREFIX = "echofs-"
DEFAULT_REGION = "us-east-1"
# The tables, by role: the role names the environment variable that may name it.
ROLES = ("files", "chunks", "sessions", "accounts", "controller")

# Errors worth trying again: the table is busy or another transaction held an
# item we touched. Anything else (a failed condition included) is an answer.
RETRIED = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException",
    "RequestLimitExceeded", "TransactionConflictException", "InternalServerError",
    "ServiceUnavailable", "LimitExceededException",
})
ATTEMPTS = 10

REQUESTS = Counter("echofs_dynamodb_requests",
                   "Requests the master sent to DynamoDB, by operation.", ["operation"])
RETRIES = Counter("echofs_dynamodb_retries",
                  "DynamoDB requests tried again after throttling or a transaction conflict, "
                  "by error code.", ["reason"])

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def is_dynamodb(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme == SCHEME  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Target:
    """Where the tables live: the region, an endpoint (None: AWS's own) and
    each table's name by role."""

    region: str
    endpoint_url: str | None
    tables: Mapping[str, str]

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> Target:
        env = os.environ if env is None else env
        parts = urlsplit(url)
        if parts.scheme != SCHEME:
            raise ValueError(f"not a DynamoDB URL: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"region", "endpoint", "prefix"}
        if unknown:
            raise ValueError(f"unknown DynamoDB URL options: {', '.join(sorted(unknown))} "
                             "(known: region, endpoint, prefix)")
        region = (query.get("region") or env.get("AWS_REGION")
                  or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION)
        endpoint = (query.get("endpoint") or env.get("AWS_ENDPOINT_URL_DYNAMODB")
                    or env.get("DYNAMODB_ENDPOINT_URL") or None)
        prefix = query.get("prefix", DEFAULT_PREFIX)
        tables = {role: env.get(f"DYNAMODB_{role.upper()}_TABLE") or f"{prefix}{role}"
                  for role in ROLES}
        return cls(region, endpoint, tables)


def encode(item: Mapping[str, Any]) -> dict[str, Any]:
    """A Python mapping as DynamoDB's typed attributes (None values left out:
    an absent attribute is DynamoDB's null)."""
    return {k: value(v) for k, v in item.items() if v is not None}


def decode(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed attributes as Python values: whole numbers as
    ``int``, others as ``float``, sets as ``set``, binary as ``bytes``."""
    return {k: _python(_deserializer.deserialize(v)) for k, v in item.items()}


def value(v: Any) -> dict[str, Any]:
    """One value, typed (floats go through ``Decimal`` of their shortest
    repr, which boto refuses to do itself)."""
    return _serializer.serialize(_dynamo(v))


def _dynamo(v: Any) -> Any:
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, Mapping):
        return {k: _dynamo(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_dynamo(x) for x in v]
    return v


def _python(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: _python(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_python(x) for x in v]
    if isinstance(v, set):
        return {_python(x) for x in v}
    if hasattr(v, "value") and type(v).__name__ == "Binary":
        return bytes(v.value)
    return v


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return None


def cancellation_reasons(exc: BaseException) -> list[str]:
    """Per item, why a ``TransactWriteItems`` was cancelled (``None`` for
    items that were fine, ``ConditionalCheckFailed`` for a failed condition)."""
    if not isinstance(exc, ClientError):
        return []
    return [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]


class Dynamo:
    """One client for the life of a repository. Every call goes through
    :meth:`call`: counted, and retried with jittered backoff on throttling
    and transaction conflicts."""

    def __init__(self, target: Target) -> None:
        import aioboto3

        self.target = target
        self.tables = target.tables
        self._session = aioboto3.Session()
        self._client_cm: Any = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    cm = self._session.client(
                        "dynamodb", region_name=self.target.region,
                        endpoint_url=self.target.endpoint_url,
                        # Our own retries (counted); boto's would hide them.
                        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                      max_pool_connections=64, connect_timeout=5,
                                      read_timeout=30))
                    self._client = await cm.__aenter__()
                    self._client_cm = cm
        return self._client

    async def close(self) -> None:
        if self._client_cm is not None:
            cm, self._client_cm, self._client = self._client_cm, None, None
            await cm.__aexit__(None, None, None)

    async def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """``client.<operation>(**kwargs)`` (operation in snake case)."""
        client = await self.client()
        method = getattr(client, operation)
        delay = 0.02
        for attempt in range(ATTEMPTS):
            REQUESTS.labels(operation).inc()
            try:
                return await method(**kwargs)  # type: ignore[no-any-return]
            except ClientError as exc:
                code = error_code(exc)
                reasons = cancellation_reasons(exc)
                if code == "TransactionCanceledException" and "TransactionConflict" in reasons \
                        and "ConditionalCheckFailed" not in reasons:
                    code = "TransactionConflictException"
                # Any 5xx is the service's trouble, not an answer (AWS's
                # guidance; moto answers a bare 500 when its threads collide).
                if (code not in RETRIED and not _server_error(exc)) or attempt == ATTEMPTS - 1:
                    raise
                RETRIES.labels(code).inc()
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    # -- conveniences over call --------------------------------------------------------

    def table(self, role: str) -> str:
        return self.tables[role]

    async def get(self, role: str, pk: str, sk: str, *, consistent: bool = True
                  ) -> dict[str, Any] | None:
        answer = await self.call("get_item", TableName=self.table(role),
                                 Key=encode({"pk": pk, "sk": sk}), ConsistentRead=consistent)
        item = answer.get("Item")
        return decode(item) if item else None

    async def get_many(self, role: str, keys: Sequence[tuple[str, str]]
                       ) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by key, strongly consistent, 100 keys a request (what
        ``BatchGetItem`` allows), unprocessed keys asked again."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        table = self.table(role)
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            pending: list[dict[str, Any]] = [encode({"pk": pk, "sk": sk})
                                             for pk, sk in unique[start:start + 100]]
            delay = 0.02
            while pending:
                answer = await self.call("batch_get_item", RequestItems={
                    table: {"Keys": pending, "ConsistentRead": True}})
                for raw in answer.get("Responses", {}).get(table, []):
                    item = decode(raw)
                    found[(item["pk"], item["sk"])] = item
                pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                if pending:
                    RETRIES.labels("UnprocessedKeys").inc()
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 2.0)
        return found

    async def query(self, role: str, *, index: str | None = None, consistent: bool = True,
                    limit: int | None = None, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item a Query matches, page after page (``limit``: at most
        that many in all). Index queries cannot be strongly consistent."""
        request: dict[str, Any] = {"TableName": self.table(role), **kwargs}
        if index is not None:
            request["IndexName"] = index
        else:
            request["ConsistentRead"] = consistent
        seen = 0
        while True:
            if limit is not None:
                request["Limit"] = max(1, min(1000, limit - seen))
            answer = await self.call("query", **request)
            for raw in answer.get("Items", []):
                yield decode(raw)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            start = answer.get("LastEvaluatedKey")
            if not start:
                return
            request["ExclusiveStartKey"] = start

    async def scan(self, role: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item a Scan (with its filter, if any) keeps, page after
        page. Its cost grows with the table: only for rare, whole-store
        questions."""
        request: dict[str, Any] = {"TableName": self.table(role), **kwargs}
        while True:
            answer = await self.call("scan", **request)
            for raw in answer.get("Items", []):
                yield decode(raw)
            start = answer.get("LastEvaluatedKey")
            if not start:
                return
            request["ExclusiveStartKey"] = start

    async def transact(self, items: Sequence[Mapping[str, Any]]) -> list[str] | None:
        """One ``TransactWriteItems`` (with a fresh ``ClientRequestToken``,
        so a retry is not applied twice): None if it went through, else why
        each item refused (``ConditionalCheckFailed`` for a failed condition)."""
        try:
            await self.call("transact_write_items", TransactItems=list(items),
                            ClientRequestToken=uuid.uuid4().hex)
        except Exception as exc:
            if not transaction_cancelled(exc):
                raise
            return cancellation_reasons(exc)
        return None

    async def write_many(self, role: str, puts: Sequence[Mapping[str, Any]] = (),
                         deletes: Sequence[tuple[str, str]] = ()) -> None:
        """Unconditional puts and deletes, 25 a request (``BatchWriteItem``),
        unprocessed ones sent again. Not atomic: for items nobody reads
        until a later conditional write publishes them, or for clean-up."""
        table = self.table(role)
        requests = [{"PutRequest": {"Item": encode(item)}} for item in puts]
        requests += [{"DeleteRequest": {"Key": encode({"pk": pk, "sk": sk})}}
                     for pk, sk in dict.fromkeys(deletes)]
        for start in range(0, len(requests), 25):
            pending = requests[start:start + 25]
            delay = 0.02
            while pending:
                answer = await self.call("batch_write_item", RequestItems={table: pending})
                pending = answer.get("UnprocessedItems", {}).get(table, [])
                if pending:
                    RETRIES.labels("UnprocessedItems").inc()
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 2.0)


def _server_error(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500


def conditional_failed(exc: BaseException) -> bool:
    """A single-item write whose condition did not hold."""
    return error_code(exc) == "ConditionalCheckFailedException"


def transaction_cancelled(exc: BaseException) -> bool:
    return error_code(exc) == "TransactionCanceledException"
