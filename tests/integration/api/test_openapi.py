"""The OpenAPI document describes every route, and fuzzing the API with it
finds no server error and no response that breaks it."""

from __future__ import annotations

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from echofs.master.openapi import openapi_document
from echofs.testing.node import running_node
from echofs.testing.process import ServeProcess

# The web UI's pages and assets are not API operations.
UNDOCUMENTED = ("/", "/static", "/favicon.ico")
EXAMPLES = 25


async def test_every_route_is_documented(tmp_path):
    async with running_node(tmp_path / "d") as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        async with http.get("/api/v1/openapi.json") as resp:
            served = await resp.json()
        routes = set()
        for route in node._runner.app.router.routes():
            path = route.resource.canonical if route.resource else ""
            if route.method in ("HEAD", "*") or path == "/" or path.startswith(UNDOCUMENTED[1:]):
                continue
            routes.add((route.method.lower(), path))
    documented = {(method, path) for path, ops in served["paths"].items() for method in ops}
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented operations that do not exist"
    assert served == openapi_document()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServeProcess(tmp_path_factory.mktemp("fuzz") / "data") as process:
        yield process


def test_fuzzing_finds_no_server_error(server):
    """Bounded (examples per operation) so it fits in CI; every operation,
    every response checked against the document."""
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case) -> None:
            case.call_and_validate(base_url=server.url, checks=checks)

        fuzz()
