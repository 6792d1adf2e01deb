"""The controller's ``POST /v1/register`` (what the original's workers called)
on a real controller process with a cluster token: a worker registers, is
refused without the token, refreshes its entry by registering again, and goes
suspect when it stops."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from echofs.core.vocabulary import Role
from echofs.testing.process import ServeProcess, free_port

TOKEN = "cluster-" + "t" * 40


def call(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=None if body is None else
                                     json.dumps(body).encode(), headers=headers,
                                     method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    http, grpc = free_port(), free_port()
    with ServeProcess(tmp_path_factory.mktemp("ctl") / "data", f"--role={Role.CONTROLLER}",
                      "--controller-port", str(http), "--controller-grpc-port", str(grpc),
                      env={"CLUSTER_TOKEN": TOKEN, "SUSPECT_AFTER": "0.5",
                           "DEAD_AFTER": "30"},
                      name="controller", health_url=f"http://127.0.0.1:{http}/health"):
        yield f"http://127.0.0.1:{http}"


def test_register_refresh_and_expiry_with_the_cluster_token(controller):
    worker = {"worker_id": "worker1", "address": "127.0.0.1:9091",
              "http_address": "127.0.0.1:8091"}
    status, refused = call(f"{controller}/v1/register", worker)
    assert status == 401 and refused["error"]["code"] == "cluster_token_required"
    status, refused = call(f"{controller}/v1/register", worker, token="wrong")
    assert status == 401
    status, _ = call(f"{controller}/v1/workers")
    assert status == 401

    status, first = call(f"{controller}/v1/register", worker, token=TOKEN)
    assert status == 201, first
    assert first["success"] is True and first["registered"] is True
    assert first["state"] == "alive" and first["refresh_within_seconds"] == 0.5
    status, again = call(f"{controller}/v1/register",
                         {**worker, "address": "127.0.0.1:9191"}, token=TOKEN)
    assert status == 200 and again["registered"] is False and again["registrations"] == 2

    status, roster = call(f"{controller}/v1/workers", token=TOKEN)
    assert status == 200 and roster["count"] == 1
    entry = roster["workers"][0]
    assert (entry["worker_id"], entry["address"], entry["state"]) == (
        "worker1", "127.0.0.1:9191", "alive")

    time.sleep(0.8)  # past SUSPECT_AFTER without a refresh
    _, roster = call(f"{controller}/v1/workers", token=TOKEN)
    assert roster["workers"][0]["state"] == "suspect"
    call(f"{controller}/v1/register", worker, token=TOKEN)
    _, roster = call(f"{controller}/v1/workers", token=TOKEN)
    assert roster["workers"][0]["state"] == "alive"


def test_bad_registrations_are_400(controller):
    for body in ({"address": "127.0.0.1:9091"}, {"worker_id": "w", "address": "nowhere"},
                 {"worker_id": "w", "address": "h:99999"}, {"worker_id": "a b", "address":
                 "h:1"}, {"worker_id": "w", "address": "h:1", "http_address": 5}):
        status, answer = call(f"{controller}/v1/register", body, token=TOKEN)
        assert status == 400, (body, answer)
