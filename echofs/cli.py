"""The ``echofs`` command. Thin: parses arguments, then calls into the roles.

Errors are one readable line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from echofs import __version__
from echofs.client.access_keys import add_keys_parser
from echofs.client.commands import CLIENT_COMMANDS, add_client_parsers, run_client_command
from echofs.config import Settings, parse_size


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default. argparse's own
    ArgumentDefaultsHelpFormatter would also print "(default: None)" for
    options whose default is "not set" and "(default: False)" for switches
    (a --no-X switch would even show "True"); those, and helps that already
    explain their default, are left alone."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or isinstance(default, bool)
                or default == argparse.SUPPRESS
                or isinstance(action, argparse._SubParsersAction)
                or not (action.option_strings or action.nargs in ("?", "*"))):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """The parser of ``echofs`` and, through add_subparsers (which builds
    subcommands with the parent's class), of every subcommand."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _serve_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="run EchoFS (default: the embedded node, role all)")
    serve.add_argument("--role", help="all (default: master + controller + in-process "
                       "workers), or a comma list of master, worker, controller (env ECHOFS_ROLE)")
    serve.add_argument("--data-dir", type=Path, help="where metadata and chunks live "
                       "(default ./echofs-data; env ECHOFS_DATA_DIR)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; env MASTER_HOST)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8080; env MASTER_PORT)")
    serve.add_argument("--workers", type=int, help="in-process workers of role all (default 3)")
    serve.add_argument("--grpc-port", type=int,
                       help="gRPC port (master default 9080, worker 9091; env GRPC_PORT)")
    serve.add_argument("--id", dest="worker_id", help="worker id (env WORKER_ID)")
    serve.add_argument("--store", help="worker chunk store, local:/path or s3://bucket/prefix "
                       "(default DATA_DIR/workers/ID; env ECHOFS_STORE)")
    serve.add_argument("--http-port", type=int,
                       help="worker HTTP port for /health (default 8091; env WORKER_PORT)")
    serve.add_argument("--master", help="master gRPC address(es) a worker joins, comma-"
                       "separated (default 127.0.0.1:9080; env MASTER_ADDRESS)")
    serve.add_argument("--advertise-host", help="host other processes use to reach this one")
    serve.add_argument("--advertise-grpc-port", type=int, help="worker gRPC port other "
                       "processes use, e.g. a proxy's (default --grpc-port; "
                       "env ADVERTISE_GRPC_PORT)")
    serve.add_argument("--controller", help="controller gRPC address masters report to "
                       "(env CONTROLLER_ADDRESS; role all runs its own)")
    serve.add_argument("--controller-port", dest="controller_http_port", type=int,
                       help="controller HTTP port (default 8082; env CONTROLLER_PORT)")
    serve.add_argument("--controller-grpc-port", type=int,
                       help="controller gRPC port (default 9082; env CONTROLLER_GRPC_PORT)")
    serve.add_argument("--default-mode", choices=("strong", "hybrid", "available"),
                       help="mode of files the controller has not decided on (env DEFAULT_MODE)")
    serve.add_argument("--s3-port", help="S3 endpoint port of a master: a number (0: any "
                       "free port) or 'off' (default 9000; env S3_PORT)")
    serve.add_argument("--s3-tls-cert", type=Path, help="PEM certificate: the S3 endpoint "
                       "speaks HTTPS (env S3_TLS_CERT; with --s3-tls-key)")
    serve.add_argument("--s3-tls-key", type=Path, help="PEM private key of --s3-tls-cert "
                       "(env S3_TLS_KEY)")
    serve.add_argument("--replication-factor", type=int,
                       help="copies of each chunk (default 3; env REPLICATION_FACTOR)")
    serve.add_argument("--chunk-size", type=parse_size,
                       help="chunk size, e.g. 1MiB (default; env CHUNK_SIZE)")
    serve.add_argument("--max-upload-size", type=parse_size,
                       help="largest accepted file (env MAX_UPLOAD_SIZE)")
    serve.add_argument("--database-url", help="metadata store URL (env DATABASE_URL)")
    serve.add_argument("--log-level", help="debug|info|warning|error (env LOG_LEVEL)")
    serve.add_argument("--log-format", choices=("console", "json"),
                       help="log format (env LOG_FORMAT)")


def _db_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = sub.add_parser("db", help="metadata schema migrations (Alembic)")
    db.add_argument("action", choices=("upgrade", "downgrade", "current"),
                    help="migrate up or down, or show the current revision")
    db.add_argument("revision", nargs="?", help="target revision (default: head / -1)")
    db.add_argument("--database-url", help="metadata store URL (env DATABASE_URL)")
    db.add_argument("--data-dir", type=Path, help="embedded data folder (for its SQLite)")


def _dev_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dev = sub.add_parser("dev", help="developer tools")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True, metavar="TOOL")
    cluster = dev_sub.add_parser(
        "cluster", help="controller + master + N workers as processes on loopback",
        description="A controller, a master and N workers, each an `echofs serve` child "
        "process on 127.0.0.1, their logs interleaved here; Ctrl-C stops them all.")
    cluster.add_argument("--workers", type=int, default=3, help="worker processes")
    cluster.add_argument("--replication-factor", type=int, default=3,
                         help="copies of each chunk (at most --workers)")
    cluster.add_argument("--port", type=int, default=8080,
                         help="master HTTP port (API, web UI, metrics); worker i serves "
                         "/health on this + 10 + i")
    cluster.add_argument("--grpc-port", type=int, default=9080,
                         help="master gRPC port; worker i uses this + i")
    cluster.add_argument("--data-dir", type=Path, default=Path("echofs-cluster"),
                         help="one folder per member below this")
    cluster.add_argument("--no-controller", dest="controller", action="store_false",
                         help="start no consistency controller: files keep the default mode")
    cluster.add_argument("--controller-port", type=int,
                         help="controller HTTP port (default: --port + 2)")
    cluster.add_argument("--controller-grpc-port", type=int,
                         help="controller gRPC port (default: --grpc-port + 100)")


def _store_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    store = sub.add_parser("store", help="a stopped worker's local chunk store")
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    convert = store_sub.add_parser(
        "convert", help="move chunks stored one file each into volume files",
        description="Move the chunks of a store folder's one-file-per-chunk layout "
        "(PATH/chunks/) into its volume files, removing each file once its copy is "
        "durable. Run it with the worker stopped; interrupted, run it again.")
    convert.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                         help="a worker's store folder, e.g. echofs-data/workers/w1")
    convert.add_argument("--no-progress", action="store_true",
                         help="never draw a progress bar")


def _bench_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from echofs.bench import add_arguments

    add_arguments(sub.add_parser("bench", help="benchmarks on a real process cluster"))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="echofs",
                                     description="EchoFS: a file store with adaptive consistency")
    parser.add_argument("--version", action="version", version=f"echofs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve_parser(sub)
    _db_parser(sub)
    _dev_parser(sub)
    _bench_parser(sub)
    _store_parser(sub)
    add_client_parsers(sub)  # put, get, ls, rm, stat, versions, login, admin
    add_keys_parser(sub)  # S3 access keys
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    flags = {k: v for k, v in vars(args).items()
             if k in Settings.__dataclass_fields__ and v is not None}
    return Settings.load(overrides=flags)


def _serve(args: argparse.Namespace) -> int:
    from echofs.memory import keep_freed_buffers, limit_malloc_arenas
    from echofs.node import StartupError, serve
    from echofs.observability.logging import configure_logging

    limit_malloc_arenas()  # before any thread starts
    keep_freed_buffers()

    settings = _settings(args)
    context = {"role": settings.role}
    if settings.worker_id and settings.serves_worker:
        context["worker"] = settings.worker_id
    configure_logging(settings.log_level, settings.log_format, **context)
    try:
        asyncio.run(serve(settings))
    except StartupError as exc:
        logging.getLogger("echofs").error("%s", exc)
        return 2
    except OSError as exc:
        logging.getLogger("echofs").error("cannot start: %s", exc)
        return 2
    return 0


def _db(args: argparse.Namespace) -> int:
    from echofs.metadata import backends, database

    settings = _settings(args)
    url = settings.metadata_url
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if backends.is_dynamodb(url):
        if args.action == "downgrade":
            print("DynamoDB tables have no revisions to go back to", file=sys.stderr)
            return 2
        print(backends.upgrade(url) if args.action == "upgrade" else backends.describe(url))
        return 0
    if args.action == "upgrade":
        database.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        database.downgrade(url, args.revision or "-1")
    print(backends.describe(url))
    return 0


def _dev(args: argparse.Namespace) -> int:
    from echofs.devcluster import run_cluster

    return asyncio.run(run_cluster(
        data_dir=args.data_dir, workers=args.workers, port=args.port,
        grpc_port=args.grpc_port, replication_factor=args.replication_factor,
        controller=args.controller, controller_port=args.controller_port,
        controller_grpc_port=args.controller_grpc_port))


def _bench(args: argparse.Namespace) -> int:
    from echofs.bench import run

    return run(args)


def _store(args: argparse.Namespace) -> int:
    from echofs.client.terminal import TransferProgress, human_size, wants_progress
    from echofs.worker.stores.volume.convert import convert_store

    for path in args.paths:
        with TransferProgress(f"convert {path}",
                              enabled=wants_progress(disabled=args.no_progress)) as progress:
            report = asyncio.run(convert_store(path, progress))
        line = (f"{path}: {report.moved} chunks ({human_size(report.moved_bytes)}) moved "
                "into volumes")
        if report.corrupt_left:
            line += (f"; {report.corrupt_left} damaged chunk files left in place (the "
                     "scrubber has them repaired from other copies once the worker runs)")
        print(line)
    return 0


def _create_user(args: argparse.Namespace) -> int:
    from echofs.admin import create_user

    return create_user(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "dev":
            return _dev(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "store":
            return _store(args)
        if args.command == "admin" and args.admin_command == "create-user":
            # Parsed with the client's admin commands, but it works on the
            # metadata store itself, not through a server.
            return _create_user(args)
        if args.command in CLIENT_COMMANDS:
            return run_client_command(args)
        return _db(args)
    except (ValueError, OSError) as exc:
        print(f"echofs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
