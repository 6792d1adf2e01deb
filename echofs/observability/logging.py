"""structlog set-up: readable console lines in development, JSON in production.

Standard-library loggers (ours, aiohttp's, alembic's) go through the same
renderer, so every line of a process looks alike and carries its role.
"""

from __future__ import annotations

import logging
import sys

import structlog

from echofs.observability.request_log import REQUEST_LOG, OrderedStreamHandler


def configure_logging(level: str = "info", fmt: str = "console", **context: str) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Plain tracebacks: structlog would use rich when it is installed,
            # whose pretty printing of locals blocked the event loop for seconds.
            exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_static(context),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # The per-request lines take their own, cheaper way (see request_log).
    REQUEST_LOG.configure(level=numeric, json_format=fmt == "json", context=context)
    handler = OrderedStreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # aiohttp's own access log duplicates our per-request event.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Alembic narrates every plugin it loads at INFO; keep start-up readable.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


def _add_static(context: dict[str, str]) -> structlog.typing.Processor:
    def add(_logger: object, _name: str, event: dict[str, object]) -> dict[str, object]:
        for key, value in context.items():
            event.setdefault(key, value)
        return event

    return add
