"""Hostile input against a real `echofs serve`: every attack of the hostile
world issue and its neighbours, each answered with a JSON 4xx (never a 5xx),
while /api/v1/health keeps answering fast, and with no traceback in the log.

One server (accounts on, so the auth routes are live) serves the whole
module; each attack runs beside a health prober that times every probe.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import jwt
import pytest

from echofs.testing.process import ServeProcess

SECRET = "hostile-suite-secret-" + "x" * 32
# Every health probe during an attack answers within this.
HEALTH_BOUND = 0.100
# Short limits, so the slow-client attacks end in seconds.
ENV = {
    "JWT_SECRET": SECRET,
    "HTTP_HEADER_TIMEOUT": "1.0",
    "HTTP_BODY_IDLE_TIMEOUT": "1.0",
    "LOG_FORMAT": "json",
}


@dataclass
class Server:
    process: ServeProcess
    admin: str  # bearer tokens
    user: str
    user_id: str
    file_id: str

    @property
    def host_port(self) -> tuple[str, int]:
        return "127.0.0.1", self.process.port


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> AsyncIterator[Server]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    subprocess.run([sys.executable, "-m", "echofs", "admin", "create-user", "root", "--admin",
                    "--password-stdin", "--data-dir", str(data)],
                   input=b"root-password\nroot-password\n", check=True, capture_output=True,
                   env={**os.environ, **ENV})
    with ServeProcess(data, env=ENV) as process:
        admin = _login(process.url, "root", "root-password")
        user, user_id = _register(process.url, "mallory", "mallory-password")
        file_id = _upload(process.url, user, "hostile/target.txt", b"the target\n")
        yield Server(process, admin, user, user_id, file_id)


def _request(method: str, url: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _login(base: str, username: str, password: str) -> str:
    status, body = _request("POST", f"{base}/api/v1/auth/login", json.dumps(
        {"username": username, "password": password}).encode(),
        {"Content-Type": "application/json"})
    assert status == 200, body
    return body["token"]


def _register(base: str, username: str, password: str) -> tuple[str, str]:
    status, body = _request("POST", f"{base}/api/v1/auth/register", json.dumps(
        {"username": username, "password": password}).encode(),
        {"Content-Type": "application/json"})
    assert status == 201, body
    return body["token"], body["user"]["id"]


def _upload(base: str, token: str, path: str, data: bytes) -> str:
    status, body = _request("PUT", f"{base}/api/v1/files/content/{path}", data,
                            {"Authorization": f"Bearer {token}"})
    assert status == 201, body
    return body["file_id"]


# -- the instruments --------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: the server closed the connection without answering
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict:
        parsed = json.loads(self.body)
        assert set(parsed) == {"error", "success", "message"}, parsed
        assert {"code", "message"} <= set(parsed["error"]) and parsed["success"] is False, parsed
        return parsed["error"]


async def raw(server: Server, request: bytes, *, within: float = 10.0,
              dribble: float | None = None) -> Answer:
    """Send bytes as they are (``dribble``: one byte per that many seconds)
    and read the answer until the server closes or one response is whole."""
    reader, writer = await asyncio.open_connection(*server.host_port)
    try:
        async with asyncio.timeout(within):
            try:
                if dribble is None:
                    writer.write(request)
                    await writer.drain()
                else:
                    for i in range(len(request)):
                        writer.write(request[i:i + 1])
                        await writer.drain()
                        await asyncio.sleep(dribble)
            except ConnectionError:
                pass  # the server hung up on us; read what it said first
            data = b""
            while True:
                try:
                    piece = await reader.read(65536)
                except ConnectionError:
                    break
                if not piece:
                    break
                data += piece
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep:
                    length = _content_length(head)
                    if length is not None and len(body) >= length:
                        break
    finally:
        writer.close()
    return _parse(data)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def _parse(data: bytes) -> Answer:
    if not data:
        return Answer(None, {}, b"")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, body)


def http(method: str, target: str, *, headers: dict[str, str] | None = None,
         body: bytes = b"", token: str | None = None, length: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if length and not any(n.lower() in ("content-length", "transfer-encoding")
                          for n in (headers or {})):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "surrogateescape") + body


async def under_attack(server: Server, attack: Awaitable[object]) -> tuple[object, list[float]]:
    """Run ``attack`` while probing health every 20 ms; the attack's result
    and every probe's latency (a probe that fails counts as infinitely slow).

    The prober runs on its own thread and event loop: on the test's loop it
    would wait its turn behind the attack's own client work (a flood's
    hundred sockets), and that wait is the test client's, not the server's.
    """
    latencies: list[float] = []
    done = threading.Event()

    async def probe() -> None:
        async with aiohttp.ClientSession() as session:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(5), session.get(
                            f"{server.process.url}/api/v1/health") as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                latencies.append(time.perf_counter() - started if ok else float("inf"))
                await asyncio.sleep(0.02)

    prober = threading.Thread(target=asyncio.run, args=(probe(),), daemon=True)
    prober.start()
    await asyncio.sleep(0.05)
    try:
        result = await attack
    finally:
        done.set()
        await asyncio.to_thread(prober.join)
    return result, latencies


def assert_healthy(latencies: list[float]) -> None:
    assert latencies, "no health probe ran"
    slowest = max(latencies)
    assert slowest < HEALTH_BOUND, (
        f"health took {slowest * 1000:.0f} ms during the attack "
        f"(median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms)")


def assert_json_4xx(answer: Answer, *statuses: int, code: str | None = None) -> dict:
    assert answer.status is not None, "the server closed the connection without an answer"
    # 501: a request we understand but refuse to act on (a transfer coding).
    assert 400 <= answer.status < 500 or answer.status == 501, (answer.status, answer.body[:300])
    if statuses:
        assert answer.status in statuses, (answer.status, answer.body[:300])
    error = answer.error()
    if code is not None:
        assert error["code"] == code, error
    return error


# -- the attacks ------------------------------------------------------------------

NESTED = b"[" * 100_000 + b"]" * 100_000
Case = Callable[[Server], Awaitable[Answer]]


def _post_json(path: str, body: bytes, *, admin: bool = False, method: str = "POST") -> Case:
    async def case(server: Server) -> Answer:
        token = server.admin if admin else None
        return await raw(server, http(method, path, body=body, token=token,
                                      headers={"Content-Type": "application/json"}))
    return case


def _get(target: str, *, token: str = "user", headers: dict[str, str] | None = None) -> Case:
    async def case(server: Server) -> Answer:
        bearer = {"user": server.user, "admin": server.admin, "none": None}[token]
        return await raw(server, http("GET", target.format(f=server.file_id), token=bearer,
                                      headers=headers))
    return case


def _put(target: str, body: bytes = b"data", headers: dict[str, str] | None = None,
         length: bool = True) -> Case:
    async def case(server: Server) -> Answer:
        return await raw(server, http("PUT", target, body=body, token=server.user,
                                      headers=headers, length=length))
    return case


def _raw(request: bytes) -> Case:
    async def case(server: Server) -> Answer:
        return await raw(server, request)
    return case


BIG = 2 ** 63
# (id, attack, allowed statuses (empty: any 4xx), error code or None)
CASES: list[tuple[str, Case, tuple[int, ...], str | None]] = [
    # 2. deeply nested JSON, and JSON that is too large or not an object
    # (the sign-in routes take 16 KiB bodies at most: this one is too large)
    ("nested-json-login", _post_json("/api/v1/auth/login", NESTED), (413,), None),
    ("nested-json-register", _post_json("/api/v1/auth/register", NESTED), (413,), None),
    ("nested-json-login-small", _post_json("/api/v1/auth/login", b"[" * 5000 + b"]" * 5000),
     (400,), "invalid_json"),
    ("nested-json-hint", _post_json("/api/v1/consistency/hint", NESTED, admin=True), (400,),
     None),
    ("nested-json-override", _post_json("/api/v1/consistency/override", NESTED, admin=True),
     (400,), None),
    ("nested-json-critical", _post_json("/api/v1/consistency/critical-keys", NESTED,
                                        admin=True), (400,), None),
    ("nested-json-critical-delete", _post_json("/api/v1/consistency/critical-keys", NESTED,
                                               admin=True, method="DELETE"), (400,), None),
    ("huge-json-login", _post_json("/api/v1/auth/login", b'{"username": "' + b"a" * (8 << 20)
                                   + b'"}'), (400, 413), None),
    ("json-array-login", _post_json("/api/v1/auth/login", b"[1, 2, 3]"), (400,), None),
    ("json-garbage-login", _post_json("/api/v1/auth/login", b"{nope"), (400,), "invalid_json"),
    # 3. out-of-range and malformed integers
    ("version-2^63-stat", _get(f"/api/v1/files/{{f}}?version={BIG}"), (400, 404), None),
    ("version-2^63-download", _get(f"/api/v1/files/{{f}}/download?version={BIG}"), (400, 404),
     None),
    ("version-2^63-by-path", _get(f"/api/v1/files/content/hostile/target.txt?version={BIG}"),
     (400, 404), None),
    ("version-negative", _get("/api/v1/files/{f}/download?version=-1"), (400,), None),
    ("version-not-a-number", _get("/api/v1/files/{f}?version=abc"), (400,), None),
    ("version-huge-digits", _get("/api/v1/files/{f}?version=" + "9" * 5000), (400, 404), None),
    ("limit-huge", _get(f"/api/v1/files?limit={10 ** 30}"), (400,), None),
    ("limit-negative", _get("/api/v1/files?limit=-5"), (400,), None),
    ("cursor-garbage", _get("/api/v1/files?cursor=%%%%"), (400,), None),
    ("range-huge", _get("/api/v1/files/{f}/download", headers={
        "Range": f"bytes={10 ** 30}-"}), (416,), None),
    # 12, 14. names that are not names
    ("name-crlf", _put("/api/v1/files/content/a%0d%0ab.txt"), (400,), "invalid_name"),
    ("name-invalid-utf8", _put("/api/v1/files/content/%ff%fe.txt"), (400,), "invalid_name"),
    ("name-traversal", _put("/api/v1/files/content/a/../../etc/passwd"), (400, 404), None),
    ("name-encoded-traversal", _put("/api/v1/files/content/a/%2e%2e/%2e%2e/x"), (400, 404),
     None),
    ("name-nul", _put("/api/v1/files/content/a%00b"), (400,), "invalid_name"),
    ("name-too-long", _put("/api/v1/files/content/" + "n" * 5000), (400, 414), None),
    # 13. a transfer coding we do not decode
    ("te-gzip-chunked", _put("/api/v1/files/content/gz.txt", body=b"4\r\ndata\r\n0\r\n\r\n",
                             headers={"Transfer-Encoding": "gzip, chunked"}, length=False),
     (400, 501), None),
    # 11. what the low-level HTTP parser refuses
    ("url-nul", _raw(b"GET /api/v1/files\x00x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
     (400,), None),
    ("url-raw-utf8", _raw("GET /api/v1/files/é HTTP/1.1\r\nHost: a\r\nConnection: close"
                          "\r\n\r\n".encode()), (400, 401, 404), None),
    ("url-too-long", _get("/api/v1/files?x=" + "a" * 9000), (400, 414), None),
    ("header-too-long", _get("/api/v1/files", headers={"X-Long": "a" * 9000}), (400, 431),
     None),
    ("content-length-garbage", _put("/api/v1/files/content/cl.txt", headers={
        "Content-Length": "abc"}), (400,), None),
    ("content-length-twice", _raw(b"PUT /api/v1/files/content/cl2.txt HTTP/1.1\r\nHost: a\r\n"
                                  b"Content-Length: 4\r\nContent-Length: 5\r\n"
                                  b"Connection: close\r\n\r\ndata"), (400,), None),
    ("content-length-and-chunked", _raw(
        b"PUT /api/v1/files/content/cl3.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\ndata\r\n0\r\n\r\n"),
     (400,), None),
    ("bad-method-line", _raw(b"GARBAGE\r\n\r\n"), (400,), None),
    # routes and methods that do not exist
    ("unknown-route", _get("/api/v1/nothing-here"), (404,), None),
    ("wrong-method", _raw(b"PATCH /api/v1/files HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n"), (401, 405), None),
    # 15. tokens that must not be trusted
    ("token-garbage", _get("/api/v1/files", token="none", headers={
        "Authorization": "Bearer not.a.token"}), (401,), None),
    ("token-basic", _get("/api/v1/files", token="none", headers={
        "Authorization": "Basic cm9vdDpyb290"}), (401,), None),
]


@pytest.mark.parametrize(("case", "statuses", "code"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
async def test_attack_is_refused_with_a_json_4xx(server, case, statuses, code):
    answer, latencies = await under_attack(server, case(server))
    assert_json_4xx(answer, *statuses, code=code)
    assert_healthy(latencies)


def _forged(server: Server, **claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "nbf": now, "exp": now + 600, **claims}, SECRET,
                      algorithm="HS256")


async def test_a_signed_token_for_no_account_is_refused(server):
    # Signed with the real secret: one for an account that does not exist,
    # one promoting an existing user to admin.
    ghost = _forged(server, sub="no-such-user", name="ghost", role="admin")
    promoted = _forged(server, sub=server.user_id, name="mallory", role="admin")
    for target in ("/api/v1/files", "/api/v1/consistency/mode?key=x", "/api/v1/workers/health"):
        assert_json_4xx(await raw(server, http("GET", target, token=ghost)), 401)
    for target in ("/api/v1/consistency/mode?key=x", "/api/v1/workers/health"):
        assert_json_4xx(await raw(server, http("GET", target, token=promoted)), 403)


async def test_many_multipart_fields_are_refused_fast(server):
    boundary = "hostile"
    parts = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=f{i}\r\n\r\nx\r\n"
                     .encode() for i in range(100_000))
    body = parts + f"--{boundary}--\r\n".encode()
    request = http("POST", "/api/v1/files/upload", body=body, token=server.user, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    started = time.perf_counter()
    answer, latencies = await under_attack(server, raw(server, request))
    assert time.perf_counter() - started < 5.0
    assert_json_4xx(answer)
    assert_healthy(latencies)


async def test_slow_headers_are_cut_off(server):
    # One byte every 0.2 s: the header timeout (1 s here) ends it long before
    # the request line is even whole.
    request = http("GET", "/api/v1/files?" + "a" * 200, token=server.user)
    started = time.perf_counter()
    answer, latencies = await under_attack(server, raw(server, request, dribble=0.2,
                                                       within=15.0))
    assert time.perf_counter() - started < 5.0
    if answer.status is not None:  # answered before closing: a JSON 408
        assert_json_4xx(answer, 408)
    assert_healthy(latencies)


async def test_a_body_that_stops_is_cut_off_and_not_stored(server):
    async def attack() -> Answer:
        reader, writer = await asyncio.open_connection(*server.host_port)
        writer.write(http("PUT", "/api/v1/files/content/half.bin", token=server.user,
                          headers={"Content-Length": "1000"}) + b"x" * 500)
        await writer.drain()
        try:
            async with asyncio.timeout(10):
                data = await reader.read()
        finally:
            writer.close()
        return _parse(data)

    started = time.perf_counter()
    answer, latencies = await under_attack(server, attack())
    assert time.perf_counter() - started < 5.0
    if answer.status is not None:
        assert_json_4xx(answer, 400, 408)
    assert_healthy(latencies)
    missing = await raw(server, http("GET", "/api/v1/files/content/half.bin",
                                     token=server.user))
    assert missing.status == 404


async def test_a_login_flood_is_limited_and_health_stays_fast(server):
    async def flood() -> list[Answer]:
        body = json.dumps({"username": "root", "password": "wrong-password"}).encode()
        return await asyncio.gather(*(
            raw(server, http("POST", "/api/v1/auth/login", body=body,
                             headers={"Content-Type": "application/json"}))
            for _ in range(100)))

    answers, latencies = await under_attack(server, flood())
    statuses = {a.status for a in answers}
    assert statuses <= {401, 429}, statuses
    assert 429 in statuses
    limited = next(a for a in answers if a.status == 429)
    assert int(limited.headers["retry-after"]) >= 1
    for answer in answers:
        answer.error()
    assert_healthy(latencies)


def test_zz_no_traceback_and_no_5xx_in_the_log(server):
    # Named to run last in this module: it reads what every attack left.
    time.sleep(0.3)  # request lines are flushed within 50 ms
    log = server.process.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000:][:6000]
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "request":
            assert event.get("status", 0) < 500, event
