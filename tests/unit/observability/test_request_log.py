"""The per-request log line: its two formats, its level, its order among
other lines, and that nothing buffered is lost."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from echofs.observability.request_log import OrderedStreamHandler, RequestLog

FIELDS = {"method": "GET", "path": "/api/v1/files/content/a.txt", "status": 200,
          "request_id": "abc123"}


def test_console_line_looks_like_the_other_lines() -> None:
    out = io.StringIO()
    log = RequestLog()
    log.configure(level=logging.INFO, json_format=False, context={"role": "all"}, stream=out)
    log.emit(logging.INFO, "echofs.http", "request", FIELDS)
    log.flush()
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert "[info     ] request" in line and "[echofs.http]" in line
    # Sorted key=value pairs, the process's context among them.
    assert line.rstrip().endswith(
        "method=GET path=/api/v1/files/content/a.txt request_id=abc123 role=all status=200")


def test_json_line_carries_every_field() -> None:
    out = io.StringIO()
    log = RequestLog()
    log.configure(level=logging.INFO, json_format=True, context={"role": "master"}, stream=out)
    log.emit(logging.WARNING, "echofs.http", "request", {**FIELDS, "status": 503})
    log.flush()
    event = json.loads(out.getvalue())
    assert event == {**FIELDS, "status": 503, "role": "master", "event": "request",
                     "level": "warning", "logger": "echofs.http",
                     "timestamp": event["timestamp"]}
    assert event["timestamp"].endswith("Z")


def test_lines_below_the_level_are_not_written() -> None:
    out = io.StringIO()
    log = RequestLog()
    log.configure(level=logging.WARNING, json_format=False, context={}, stream=out)
    assert not log.enabled(logging.INFO)
    log.emit(logging.INFO, "echofs.http", "request", FIELDS)
    log.flush()
    assert out.getvalue() == ""


async def test_buffered_lines_go_out_soon_without_more_traffic() -> None:
    out = io.StringIO()
    log = RequestLog()
    log.configure(level=logging.INFO, json_format=False, context={}, stream=out)
    log.emit(logging.INFO, "echofs.http", "request", FIELDS)
    assert out.getvalue() == ""  # held for a moment while the loop is busy
    await asyncio.sleep(0.2)
    assert "request_id=abc123" in out.getvalue()


async def test_other_log_lines_come_after_the_requests_before_them(monkeypatch) -> None:
    import echofs.observability.request_log as module

    out = io.StringIO()
    log = RequestLog()
    log.configure(level=logging.INFO, json_format=False, context={}, stream=out)
    monkeypatch.setattr(module, "REQUEST_LOG", log)
    handler = OrderedStreamHandler(out)
    log.emit(logging.INFO, "echofs.http", "request", FIELDS)
    handler.emit(logging.LogRecord("echofs", logging.WARNING, __file__, 1, "later", None, None))
    text = out.getvalue()
    assert text.index("request_id=abc123") < text.index("later")
