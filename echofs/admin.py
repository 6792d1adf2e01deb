"""Admin commands that work on the local metadata store, with no server.

``echofs admin create-user`` writes an account straight into the store
(``--data-dir`` / ``--database-url``), so the first admin of a node that
refuses open registration can be made before anyone can log in. It is a
server-side action on the command line: it lives here, not in
:mod:`echofs.client`, which only ever speaks HTTP to a server.

The store is prepared as ``echofs serve`` prepares it
(:func:`echofs.metadata.database.prepare_schema`): the embedded SQLite one is
created or migrated, a shared database must already be current.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from echofs.auth.http import validate_credentials, validate_email
from echofs.auth.passwords import hash_password
from echofs.client.actions import UsageError, os_error_text, read_password
from echofs.config import Settings
from echofs.core.errors import EchoFSError
from echofs.metadata import backends


def create_user(args: argparse.Namespace) -> int:
    """Run ``admin create-user``; the exit code. Errors are one line on
    stderr, as for the client commands: 2 for bad usage, 1 otherwise."""
    try:
        password = read_password(args.password_stdin, confirm=True)
        return asyncio.run(_create_user(args, password))
    except UsageError as exc:
        print(f"echofs: error: {exc}", file=sys.stderr)
        return 2
    except EchoFSError as exc:  # the store said no (the name is taken, ...)
        print(f"echofs: error: {exc.message} (HTTP {exc.status}, {exc.code})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"echofs: error: {os_error_text(exc)}", file=sys.stderr)
        return 1


async def _create_user(args: argparse.Namespace, password: str) -> int:
    overrides = {k: v for k, v in (("data_dir", args.data_dir),
                                   ("database_url", args.database_url)) if v is not None}
    settings = Settings.load(overrides=overrides)
    try:
        username, password = validate_credentials({"username": args.username,
                                                   "password": password})
        email = validate_email({"email": getattr(args, "email", None)})
    except EchoFSError as exc:
        raise UsageError(exc.message) from None
    url = settings.metadata_url
    embedded = settings.database_url is None
    if embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        await backends.prepare(url, migrate=embedded)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    repo = backends.open_metadata(url)
    try:
        password_hash = await asyncio.to_thread(hash_password, password)
        user = await repo.users.create(
            username, password_hash, role="admin" if args.admin else "user", email=email)
    finally:
        await repo.close()
    body = {"id": user.user_id, "username": user.username, "role": user.role,
            "email": user.email}
    if args.json:
        print(json.dumps({"user": body}, indent=2, sort_keys=True))
    else:
        print(f"created {user.role} {user.username} ({user.user_id})")
    return 0
