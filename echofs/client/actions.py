"""What the ``echofs`` client commands do (their arguments are in
:mod:`echofs.client.commands`).

They use :class:`~echofs.client.AsyncClient`. The server comes from
``--server`` or ``ECHOFS_URL``, the token from ``ECHOFS_TOKEN`` or the
credentials ``echofs login`` saved. Output is for people by default and JSON
on stdout with ``--json``; errors are one line on stderr with exit code 1
(2 for bad usage), never a traceback.

``admin create-user`` is parsed with them but is not a client command: it
writes into the metadata store, with no server, and runs in
:mod:`echofs.admin`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from echofs.client import credentials
from echofs.client.access_keys import keys_answer
from echofs.client.aio import FILE_ID, AsyncClient
from echofs.client.commands import RESUMABLE_DEFAULT, RESUMABLE_ENV, parse_size
from echofs.client.errors import EchoFSClientError, NotFound, Unauthorized
from echofs.client.models import FileInfo, UploadResult
from echofs.client.resumable import ResumeInfo
from echofs.client.terminal import TransferProgress, human_size, table, wants_progress


def os_error_text(exc: OSError) -> str:
    """An OS error as one line for a person: what went wrong, and on which file."""
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


class UsageError(Exception):
    """The command line asks for something impossible (exit code 2)."""


NO_CONTROLLER = ("no controller connected: this node has no consistency controller, so files "
                 "keep their modes and new files use the default; run one with `echofs serve "
                 "--role=controller` and start the master with --controller HOST:PORT")
# Admin tools that talk to the controller (through the master's
# /api/v1/consistency); `workers` is the master's own.
_CONTROLLER_TOOLS = frozenset({"mode", "hint", "override", "critical-keys", "transitions"})


# -- running -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run a parsed client command (see :mod:`echofs.client.commands`); the exit code."""
    try:
        if args.command == "login":
            _ask_login(args)
        if args.command == "put":
            _check_put(args)
        if args.command == "get":
            _check_get(args)
        return asyncio.run(_run(args))
    except Unauthorized as exc:
        print(f"echofs: error: {exc}; log in with `echofs login`", file=sys.stderr)
        return 1
    except EchoFSClientError as exc:
        print(f"echofs: error: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"echofs: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"echofs: error: {os_error_text(exc)}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace) -> int:
    url = credentials.server_url(args.server)
    async with AsyncClient(url, token=credentials.resolve_token(url)) as client:
        name = args.command if args.command != "admin" else f"admin {args.admin_command}"
        handler = _HANDLERS[name]
        try:
            await handler(client, args)
        except NotFound:
            if args.command == "admin" and args.admin_command in _CONTROLLER_TOOLS \
                    and not await _has_controller(client):
                raise EchoFSClientError(404, "no_controller", NO_CONTROLLER) from None
            raise
    return 0


async def _has_controller(client: AsyncClient) -> bool:
    """A master with no controller serves no /api/v1/consistency at all: a
    404 there means "none connected", not "no such file"."""
    try:
        await client.consistency_status()
    except NotFound:
        return False
    return True


def _emit(args: argparse.Namespace, data: Any, text: str | None) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif text:
        print(text)


async def _ref(client: AsyncClient, ref: str) -> FileInfo:
    return await client.resolve(ref)


def _check_put(args: argparse.Namespace) -> None:
    if args.file == "-":
        if not args.remote:
            raise UsageError("uploading standard input needs a REMOTE path")
    elif Path(args.file).is_dir():
        raise UsageError(f"{args.file} is a folder; put uploads one file")


def _check_get(args: argparse.Namespace) -> None:
    if args.dest == "-":
        return
    if args.dest.endswith("/") and not Path(args.dest).is_dir():
        raise UsageError(f"folder {args.dest} does not exist")
    folder = Path(args.dest).parent
    if not Path(args.dest).is_dir() and not folder.is_dir():
        raise UsageError(f"cannot write {args.dest}: folder {folder} does not exist")


async def _put(client: AsyncClient, args: argparse.Namespace) -> None:
    stdin = args.file == "-"
    local = None if stdin else Path(args.file)
    remote = args.remote or (local.name if local else "")
    if remote.endswith("/") and local is not None:
        remote += local.name
    enabled = wants_progress(disabled=args.no_progress)
    source: Any = sys.stdin.buffer if stdin else local
    if local is not None and local.stat().st_size > _resumable_above(args):
        result = await _put_resumable(client, args, local, remote, enabled)
    else:
        with TransferProgress(remote, enabled=enabled) as progress:
            result = await client.upload(source, remote, consistency=args.consistency,
                                         progress=progress)
    dedup = (f", {result.chunks_deduplicated} deduplicated" if result.chunks_deduplicated
             else "")
    _emit(args, result.raw,
          f"uploaded {args.file} → {result.file.path}  id {result.file_id}  "
          f"v{result.version}  {human_size(result.size)}  {result.mode}  "
          f"({result.chunks} chunk{'s' if result.chunks != 1 else ''}{dedup})")


def _resumable_above(args: argparse.Namespace) -> int:
    if getattr(args, "resumable_above", None) is not None:
        return int(args.resumable_above)
    raw = os.environ.get(RESUMABLE_ENV)
    if raw:
        try:
            return parse_size(raw)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{RESUMABLE_ENV}: {exc}") from None
    return RESUMABLE_DEFAULT


async def _put_resumable(client: AsyncClient, args: argparse.Namespace, local: Path,
                         remote: str, enabled: bool) -> UploadResult:
    """A large file: in an upload session's parts, resuming an interrupted run."""
    def started(info: ResumeInfo) -> None:
        if info.resumed:
            print(f"resuming upload {info.session_id}: {info.parts_held} of "
                  f"{info.total_parts} parts already on the server", file=sys.stderr,
                  flush=True)

    with TransferProgress(remote, enabled=enabled) as progress:
        try:
            return await client.upload_resumable(local, remote, consistency=args.consistency,
                                                 progress=progress, on_start=started,
                                                 part_size=getattr(args, "part_size", None))
        except NotFound as exc:
            if exc.code not in ("not_found", "http_404"):
                raise
    # A server without upload sessions: one plain upload.
    with TransferProgress(remote, enabled=enabled) as progress:
        return await client.upload(local, remote, consistency=args.consistency,
                                   progress=progress)


async def _get(client: AsyncClient, args: argparse.Namespace) -> None:
    to_stdout = args.dest == "-"
    if to_stdout and args.json:
        raise UsageError("--json cannot be combined with DEST - (the file goes to stdout)")
    info = await _ref(client, args.ref)
    enabled = wants_progress(disabled=args.no_progress)
    dest: Any = sys.stdout.buffer if to_stdout else Path(args.dest)
    with TransferProgress(info.name, enabled=enabled) as progress:
        result = await client.download(info.file_id, dest, version=args.version,
                                       progress=progress, verify=not args.no_verify)
    if to_stdout:
        return
    stale = "  STALE (an older version: the latest cannot be read now)" if result.stale else ""
    check = "verified" if result.verified else "not verified"
    _emit(args, result.to_json(),
          f"downloaded {info.path} → {result.dest}  v{result.version}  "
          f"{human_size(result.size)}  {check}{stale}")


async def _ls(client: AsyncClient, args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    files: list[FileInfo] = []
    async for info in client.iter_files(args.prefix, all_users=args.all_users):
        files.append(info)
        if args.limit is not None and len(files) >= args.limit:
            break
    owners = {f.owner for f in files}
    show_owner = args.all_users or len(owners) > 1
    headers = ["ID", "SIZE", "MODE", "VER", "UPDATED", *(["OWNER"] if show_owner else []),
               "PATH"]
    rows = [[f.file_id, human_size(f.size), f.mode, f.version, f.updated_at[:19].replace(
        "T", " "), *([f.owner] if show_owner else []), f.path] for f in files]
    text = table(headers, rows, right=(1, 3)) if files else "no files"
    _emit(args, [f.raw for f in files], text)


async def _rm(client: AsyncClient, args: argparse.Namespace) -> None:
    info = await _ref(client, args.ref)
    result = await client.delete(info.file_id, version=args.version)
    what = f"version {args.version} of " if args.version else ""
    # Our fields only (the answer also carries the original's envelope).
    _emit(args, {"file_id": result.file_id, "deleted_versions": result.deleted_versions,
                 "path": info.path},
          f"deleted {what}{info.path} ({result.deleted_versions} "
          f"version{'s' if result.deleted_versions != 1 else ''})")


async def _stat(client: AsyncClient, args: argparse.Namespace) -> None:
    info = await _ref(client, args.ref)
    details = await client.stat(info.file_id, version=args.version)
    v = details.version
    lines = [
        f"path:            {details.file.path}",
        f"id:              {details.file.file_id}",
        f"owner:           {details.file.owner}",
        f"version:         {v.version} of {details.current_version}",
        f"size:            {human_size(v.size)} ({v.size} bytes)",
        f"blake3:          {v.blake3}",
        f"written in mode: {v.mode} ({v.replicas_acked} replicas acknowledged)",
        f"mode now:        {details.consistency_mode}",
        f"created:         {v.created_at}",
        f"chunks:          {len(details.chunks)}",
    ]
    if details.chunks:
        rows = [[c.seq, c.offset, human_size(c.size), "lz4" if c.compressed else "-",
                 ",".join(c.replicas), c.chunk_id[:16]] for c in details.chunks]
        lines += ["", table(["SEQ", "OFFSET", "SIZE", "CODEC", "REPLICAS", "CHUNK"], rows,
                            right=(0, 1, 2))]
    _emit(args, details.raw, "\n".join(lines))


async def _versions(client: AsyncClient, args: argparse.Namespace) -> None:
    info = await _ref(client, args.ref)
    listing = await client.versions(info.file_id)
    rows = [[f"{v.version}{' *' if v.current else ''}", human_size(v.size), v.mode, v.chunks,
             v.replicas_acked, v.created_at[:19].replace("T", " "), v.blake3[:16]]
            for v in listing.versions]
    text = (f"{listing.path} ({listing.file_id}), * = current\n"
            + table(["VERSION", "SIZE", "MODE", "CHUNKS", "ACKED", "CREATED", "BLAKE3"], rows,
                    right=(1, 3, 4)))
    _emit(args, listing.raw, text)


def read_password(from_stdin: bool, *, confirm: bool = False) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Password again: ") != password:
            raise UsageError("the passwords do not match")
    else:
        raise UsageError("no terminal to ask for a password: use --password-stdin")
    if not password:
        raise UsageError("the password is empty")
    return password


def _ask_login(args: argparse.Namespace) -> None:
    """Prompt for what the command line did not give (before any I/O starts)."""
    if not args.username:
        if not sys.stdin.isatty() or args.password_stdin:
            raise UsageError("give --username (there is no terminal to ask)")
        args.username = input("Username: ").strip()
    args.password = read_password(args.password_stdin, confirm=args.register)


async def _login(client: AsyncClient, args: argparse.Namespace) -> None:
    username, password = args.username, args.password
    if args.register:
        session = await client.register(username, password)
    else:
        session = await client.login(username, password)
    path = credentials.save_login(client.base_url, session.token, session.user.username)
    _emit(args, {"server": client.base_url, "user": session.user.raw,
                 "credentials": str(path), "expires_in": session.expires_in},
          f"logged in to {client.base_url} as {session.user.username} "
          f"({session.user.role}); token saved in {path}")


async def _logout(client: AsyncClient, args: argparse.Namespace) -> None:
    # Revoked on the server first: a token forgotten here but still valid
    # there would go on working for whoever copied it.
    revoked = await client.logout() if client.token else False
    forgotten = credentials.forget_login(client.base_url)
    text = (f"logged out of {client.base_url}" if forgotten
            else f"no saved login for {client.base_url}")
    if revoked:
        text += "; every token of this account is revoked"
    _emit(args, {"server": client.base_url, "forgotten": forgotten, "revoked": revoked}, text)


# -- admin -------------------------------------------------------------------------------------


async def _object_id(client: AsyncClient, ref: str) -> str:
    """Consistency calls take file ids; a path is looked up. An id is used as
    given (the controller can hold levers for files not written yet)."""
    if FILE_ID.fullmatch(ref):
        return ref
    return (await client.find(ref)).file_id


async def _admin_mode(client: AsyncClient, args: argparse.Namespace) -> None:
    info = await client.mode(await _object_id(client, args.ref))
    score = "-" if info.score is None else f"{info.score:.3f}"
    _emit(args, info.raw, f"{info.object_id}  {info.mode}  (reason: {info.reason}, "
          f"score: {score}, since: {info.changed_at or '-'})")


async def _admin_hint(client: AsyncClient, args: argparse.Namespace) -> None:
    info = await client.set_hint(await _object_id(client, args.ref), args.hint)
    _emit(args, info.raw, f"hint {args.hint} set for {info.object_id}: mode now {info.mode}")


async def _admin_override(client: AsyncClient, args: argparse.Namespace) -> None:
    if args.clear and args.mode:
        raise UsageError("give a MODE or --clear, not both")
    if args.clear or args.mode:
        result = await client.set_override(None if args.clear else args.mode)
        _emit(args, {"override": result},
              "override cleared" if result is None else f"override set: every file {result}")
        return
    status = await client.consistency_status()
    current = status.get("override")
    _emit(args, {"override": current}, f"override: {current or 'none'}")


async def _admin_critical(client: AsyncClient, args: argparse.Namespace) -> None:
    if args.action == "list":
        if args.refs:
            raise UsageError("'list' takes no ids; did you mean 'add'?")
        keys = await client.critical_keys()
    else:
        if not args.refs:
            raise UsageError(f"'{args.action}' needs at least one file id or path")
        ids = [await _object_id(client, ref) for ref in args.refs]
        keys = await (client.add_critical_keys(ids) if args.action == "add"
                      else client.remove_critical_keys(ids))
    _emit(args, {"keys": keys}, "\n".join(keys) if keys else "no critical keys")


async def _admin_transitions(client: AsyncClient, args: argparse.Namespace) -> None:
    object_id = await _object_id(client, args.ref) if args.ref else None
    if not 1 <= args.limit <= 1000:
        raise UsageError("--limit must be between 1 and 1000")
    rows = await client.transitions(object_id=object_id, limit=args.limit)
    text = table(["WHEN", "FILE", "FROM", "TO", "REASON", "SCORE"],
                 [[(t.at or "")[:19].replace("T", " "), t.object_id, t.from_mode or "-",
                   t.to_mode, t.reason, "-" if t.score is None else f"{t.score:.3f}"]
                  for t in rows], right=(5,)) if rows else "no transitions"
    _emit(args, [t.raw for t in rows], text)


async def _admin_workers(client: AsyncClient, args: argparse.Namespace) -> None:
    workers = await client.workers()
    rows = [[w.worker_id, w.state, human_size(w.capacity_bytes), human_size(w.free_bytes),
             human_size(w.bytes_stored), "-" if w.chunk_count is None else w.chunk_count,
             "-" if w.rtt_ms is None else f"{w.rtt_ms:.1f} ms", w.store or "-"]
            for w in workers]
    text = table(["WORKER", "STATE", "CAPACITY", "FREE", "STORED", "CHUNKS", "RTT", "STORE"],
                 rows, right=(2, 3, 4, 5, 6)) if workers else "no workers"
    _emit(args, [w.raw for w in workers], text)


Handler = Callable[[AsyncClient, argparse.Namespace], Awaitable[None]]
async def _keys(client: AsyncClient, args: argparse.Namespace) -> None:
    _emit(args, *await keys_answer(client, args))


_HANDLERS: dict[str, Handler] = {
    "put": _put, "get": _get, "ls": _ls, "rm": _rm, "stat": _stat, "versions": _versions,
    "login": _login, "logout": _logout,
    "admin mode": _admin_mode, "admin hint": _admin_hint, "admin override": _admin_override,
    "admin critical-keys": _admin_critical, "admin transitions": _admin_transitions,
    "admin workers": _admin_workers, "keys": _keys,
}
