"""moto in server mode with DynamoDB's atomicity: ``python -m
echofs.testing.moto_server -H <host> -p <port>``.

moto's threaded server runs requests at once, but its DynamoDB is not
thread-safe: a transaction snapshots whole tables and, when a condition
fails, puts the snapshot back, erasing what other requests wrote meanwhile
(and a snapshot taken while another request writes fails outright). Real
DynamoDB applies every request atomically, so here DynamoDB's requests take
one lock; S3's still run at once.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

_DYNAMODB_TARGET = "DynamoDB_"


class DynamoDBSerialised:
    """WSGI middleware: one DynamoDB request at a time, the body sent inside
    the lock (moto builds it before returning, so this costs nothing more)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGET):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


def main() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own launcher does
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, DynamoDBSerialised(app), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
