"""Hostile connections against a real ``echofs serve`` process, over raw sockets.

Slow or stalled clients are cut by the header and body-idle timeouts; more
connections than the cap are refused at once with a JSON 503; running out of
file descriptors costs one rate-limited warning, not a traceback per accept;
what aiohttp's HTTP parser rejects is answered with the documented JSON error
and logged as one WARNING request line; a client that hangs up mid-upload is
one WARNING line with status 499. No case may leave a traceback in the log.

The timeouts are set small (fractions of a second) so each case takes
seconds; the defaults are documented in ``config/echofs.example.env``.
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from echofs.testing.process import ServeProcess

HEADER_TIMEOUT = 0.5
BODY_IDLE_TIMEOUT = 0.5


def _serve(directory: Path, **env: str) -> ServeProcess:
    return ServeProcess(directory / "data", env={"LOG_LEVEL": "info", **env})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server for the cases that need only the small timeouts."""
    with _serve(tmp_path_factory.mktemp("hostile"),
                HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                HTTP_BODY_IDLE_TIMEOUT=str(BODY_IDLE_TIMEOUT)) as served:
        yield served


def full_log(server: ServeProcess) -> str:
    time.sleep(0.2)  # request lines are buffered until the server's loop idles (50 ms)
    return server.log_path.read_text(errors="replace")


def assert_no_traceback(server: ServeProcess) -> None:
    log = full_log(server)
    assert "Traceback" not in log, log[-4000:]


def connect(server: ServeProcess, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while piece := sock.recv(65536):
            received += piece
    return received


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def json_error(raw: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    status, headers, body = parse_response(raw)
    assert headers.get("content-type", "").startswith("application/json"), raw[:500]
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"}, error
    return status, headers, error


def get(server: ServeProcess, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def put(server: ServeProcess, path: str, data: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(server.url + path, data=data, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def listed_paths(server: ServeProcess) -> set[str]:
    status, body = get(server, "/api/v1/files")
    assert status == 200, body
    return {f["path"] for f in json.loads(body)["files"]}


def request_lines(log: str, **fields: object) -> list[str]:
    """The per-request log lines whose key=value pairs include ``fields``."""
    lines = [line for line in log.splitlines() if re.search(r"\]\s+request\s+\[echofs\.http\]",
                                                            line)]
    return [line for line in lines
            if all(f" {key}={value}" in f" {line}" for key, value in fields.items())]


# -- defect 4: timeouts --------------------------------------------------------------


def test_a_slowloris_client_is_cut_after_the_header_timeout(server):
    sock = connect(server)
    request = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    started = time.monotonic()
    closed_after = None
    with sock:
        sock.settimeout(0.1)
        for byte in request:  # 10 bytes/s: the headers would take 20 s to complete
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(65536) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue  # nothing from the server yet
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            if time.monotonic() - started > 5:
                break
    assert closed_after is not None, "the server kept a 1-byte-per-100-ms client for 5 s"
    assert HEADER_TIMEOUT <= closed_after < HEADER_TIMEOUT + 1.5, closed_after
    assert get(server, "/api/v1/health")[0] == 200
    assert_no_traceback(server)


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server):
    with connect(server) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # nothing sent: closed without an answer
        assert time.monotonic() - started < HEADER_TIMEOUT + 1.5


def test_a_stalled_upload_body_is_answered_408_and_leaves_no_file(server):
    with connect(server) as sock:
        sock.sendall(b"PUT /api/v1/files/content/stalled.bin HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b"x" * 500)
        started = time.monotonic()
        raw = read_until_closed(sock)
        waited = time.monotonic() - started
    status, headers, error = json_error(raw)
    assert (status, error["code"]) == (408, "request_timeout"), raw
    assert "x-request-id" in headers
    assert BODY_IDLE_TIMEOUT <= waited < BODY_IDLE_TIMEOUT + 1.5, waited
    assert "stalled.bin" not in listed_paths(server)
    assert request_lines(full_log(server), method="PUT", status=408)
    assert_no_traceback(server)


def test_a_body_that_keeps_coming_slowly_is_not_cut(server):
    """Idle means no bytes: a body arriving in pieces, each within the idle
    timeout, is stored however long it takes in total."""
    body = b"y" * 8
    with connect(server) as sock:
        sock.sendall(b"PUT /api/v1/files/content/trickle.bin HTTP/1.1\r\nHost: x\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode())
        for byte in body:  # 8 pieces, 0.2 s apart: 1.6 s in all, > 3 idle timeouts
            time.sleep(BODY_IDLE_TIMEOUT * 0.4)
            sock.sendall(bytes([byte]))
        status, _, answer = parse_response(sock.recv(65536))
    assert status == 201, answer
    assert "trickle.bin" in listed_paths(server)


# -- defect 4: the connection cap ------------------------------------------------------


def test_connections_over_the_cap_are_refused_fast_and_uploads_resume(tmp_path):
    cap, timeout = 20, 1.5
    with _serve(tmp_path, HTTP_MAX_CONNECTIONS=str(cap),
                HTTP_HEADER_TIMEOUT=str(timeout)) as server:
        idle = [connect(server) for _ in range(cap + 10)]
        try:
            time.sleep(0.2)  # every one of them accepted by now
            started = time.monotonic()
            with connect(server) as sock:
                sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                raw = read_until_closed(sock)
            refused_in = time.monotonic() - started
            status, headers, error = json_error(raw)
            assert (status, error["code"]) == (503, "too_many_connections"), raw
            assert int(headers["retry-after"]) >= 1
            assert refused_in < 0.5, refused_in
            # The idle ones are cut by the header timeout; then all is well again.
            time.sleep(timeout + 0.5)
            assert put(server, "/api/v1/files/content/after.bin", b"back")[0] == 201
        finally:
            for sock in idle:
                sock.close()
        log = full_log(server)
        assert "connection limit" in log
        assert "Traceback" not in log, log[-4000:]


@contextlib.contextmanager
def open_file_limit(limit: int) -> Iterator[None]:
    """Children started inside inherit a low open-file limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_running_out_of_file_descriptors_logs_one_warning_not_a_flood(tmp_path):
    # A cap far above the process's open-file limit: accept() itself fails.
    server = _serve(tmp_path, HTTP_MAX_CONNECTIONS="10000", HTTP_HEADER_TIMEOUT="2")
    with open_file_limit(160):
        server.start()
    try:
        held = []
        try:
            for _ in range(300):
                with contextlib.suppress(OSError):
                    held.append(socket.create_connection(("127.0.0.1", server.port), timeout=1))
            time.sleep(1.5)  # the loop keeps retrying accept() meanwhile
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if get(server, "/api/v1/health", timeout=1)[0] == 200:
                    break
            time.sleep(0.2)
        assert get(server, "/api/v1/health")[0] == 200
        log = full_log(server)
        # asyncio's report ("socket.accept() out of system resource", with a
        # traceback) or ours, once per window.
        reports = [line for line in log.splitlines()
                   if "out of system resource" in line or "cannot accept new connections" in line]
        assert 1 <= len(reports) <= 3, reports[:10]
        assert "Traceback" not in log, log[-4000:]
    finally:
        server.kill()


# -- defect 11: what the HTTP parser rejects ----------------------------------------------

PUT_HEAD = b"PUT /api/v1/files/content/p.bin HTTP/1.1\r\nHost: x\r\n"
PARSER_CASES = {
    "nul in the URL": (b"GET /api/v1/fi\x00les HTTP/1.1\r\nHost: x\r\n\r\n", 400,
                       "bad_request"),
    "raw UTF-8 in the URL": ("GET /api/v1/files/\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                             400, "bad_request"),
    "URL over 8190 bytes": (b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                            "uri_too_long"),
    "header over 8190 bytes": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 9000
                               + b"\r\n\r\n", 431, "headers_too_large"),
    "too many headers": (b"GET / HTTP/1.1\r\nHost: x\r\n"
                         + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n", 431,
                         "headers_too_large"),
    "bad Content-Length": (PUT_HEAD + b"Content-Length: abc\r\n\r\n", 400, "bad_request"),
    "duplicate Content-Length": (PUT_HEAD + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n"
                                 b"abcd", 400, "bad_request"),
    "Content-Length with Transfer-Encoding": (
        PUT_HEAD + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400, "bad_request"),
}


@pytest.mark.parametrize("case", PARSER_CASES)
def test_parser_errors_are_json_with_one_warning_line(server, case):
    request, want_status, want_code = PARSER_CASES[case]
    before = full_log(server)
    with connect(server) as sock:
        sock.sendall(request)
        raw = read_until_closed(sock)
    status, headers, error = json_error(raw)
    assert (status, error["code"]) == (want_status, want_code), raw[:500]
    assert "x-request-id" in headers
    # The answer never echoes the request back.
    for echo in (b"api/v1/fi", b"uuuu", b"hhhh", b"abc", b"X-1", "\u00e9".encode()):
        assert echo not in raw.partition(b"\r\n\r\n")[2], raw[:500]
    new = full_log(server)[len(before):]
    lines = request_lines(new, status=want_status)
    assert len(lines) == 1 and "[warning" in lines[0], new
    assert headers["x-request-id"] in lines[0]
    assert "Traceback" not in new and "[error" not in new, new


def test_a_client_that_hangs_up_mid_upload_is_one_499_line(server):
    before = full_log(server)
    with connect(server) as sock:
        sock.sendall(b"PUT /api/v1/files/content/hangup.bin HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b"z" * 500)
        time.sleep(0.1)
    time.sleep(0.4)
    new = full_log(server)[len(before):]
    lines = request_lines(new, method="PUT", status=499)
    assert len(lines) == 1 and "[warning" in lines[0], new
    assert "path=/api/v1/files/content/hangup.bin" in lines[0]
    assert "Traceback" not in new and "[error" not in new, new
    assert "hangup.bin" not in listed_paths(server)
