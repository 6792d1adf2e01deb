"""The client's retry policy: throttling, transaction conflicts and 5xx are
tried again with backoff and counted; a failed condition is an answer, never
retried. The client is a stand-in that fails on cue (the policy is ours; what
DynamoDB answers is covered by the contract suites on moto)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from echofs.metadata.dynamodb import connection
from echofs.metadata.dynamodb.connection import RETRIES, Dynamo, Target


class FailingClient:
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def put_item(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise ClientError(self.errors.pop(0), "PutItem")
        return {"ok": True}


def error(code: str, status: int = 400, reasons: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Error": {"Code": code, "Message": code},
                            "ResponseMetadata": {"HTTPStatusCode": status}}
    if reasons is not None:
        body["CancellationReasons"] = [{"Code": r} for r in reasons]
    return body


def counted(reason: str) -> float:
    return RETRIES.labels(reason)._value.get()  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> Dynamo:
    monkeypatch.setattr(connection.asyncio, "sleep", _no_wait)
    return Dynamo(Target.from_url("dynamodb://?endpoint=http://127.0.0.1:9", {}))


async def _no_wait(_: float) -> None:
    return None


async def test_throttling_and_conflicts_are_retried_and_counted(dynamo: Dynamo) -> None:
    client = FailingClient([error("ThrottlingException"),
                            error("TransactionCanceledException",
                                  reasons=["None", "TransactionConflict"]),
                            error("InternalFailure", status=500)])
    dynamo._client = client
    throttled, conflicts = counted("ThrottlingException"), counted("TransactionConflictException")
    assert await dynamo.call("put_item") == {"ok": True}
    assert client.calls == 4
    assert counted("ThrottlingException") == throttled + 1
    assert counted("TransactionConflictException") == conflicts + 1


async def test_a_failed_condition_is_an_answer_not_retried(dynamo: Dynamo) -> None:
    client = FailingClient([error("ConditionalCheckFailedException")])
    dynamo._client = client
    with pytest.raises(ClientError):
        await dynamo.call("put_item")
    assert client.calls == 1
    cancelled = FailingClient([error("TransactionCanceledException",
                                     reasons=["ConditionalCheckFailed", "TransactionConflict"])])
    dynamo._client = cancelled
    with pytest.raises(ClientError):
        await dynamo.call("put_item")
    assert cancelled.calls == 1


async def test_retries_end(dynamo: Dynamo) -> None:
    client = FailingClient([error("ThrottlingException")] * connection.ATTEMPTS)
    dynamo._client = client
    with pytest.raises(ClientError):
        await dynamo.call("put_item")
    assert client.calls == connection.ATTEMPTS


async def test_denied_access_names_the_table(dynamo: Dynamo) -> None:
    from echofs.metadata.dynamodb.tables import TablesUnusable, check_tables

    class Denying:
        async def describe_table(self, **_: Any) -> dict[str, Any]:
            raise ClientError(error("AccessDeniedException"), "DescribeTable")

    dynamo._client = Denying()
    with pytest.raises(TablesUnusable) as refused:
        await check_tables(dynamo)
    assert "echofs-files" in str(refused.value)
    assert "AccessDeniedException" in str(refused.value)
    assert "credentials" in str(refused.value)
