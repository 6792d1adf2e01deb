"""``echofs keys``: an account's S3 access keys — create (the secret is
printed once), list, revoke. Through the REST API, as the logged-in account
(``echofs login`` first)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

_KEYS = "/api/v1/auth/keys"


def add_keys_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="your S3 access keys: create, list, revoke")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (("create", "a new access key (its secret is shown only now)"),
                       ("list", "your access keys (ids and ages; secrets are never shown "
                                "again)"),
                       ("revoke", "revoke an access key: requests signed with it fail")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--server", help="EchoFS address (env ECHOFS_URL)")
        action.add_argument("--json", action="store_true", help="print the result as JSON")
        if name == "revoke":
            action.add_argument("access_key_id", help="the key's id (EK...)")


def run_keys(args: argparse.Namespace) -> int:
    # The HTTP client is imported only when a keys command runs (as for the
    # other client commands: `echofs --help` does not pay for it).
    from echofs.client.errors import EchoFSClientError, Unauthorized

    try:
        data, text = asyncio.run(_run(args))
    except Unauthorized as exc:
        print(f"echofs: error: {exc}; log in with `echofs login`", file=sys.stderr)
        return 1
    except EchoFSClientError as exc:
        print(f"echofs: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else text)
    return 0


async def _run(args: argparse.Namespace) -> tuple[object, str]:
    from echofs.client import credentials
    from echofs.client.aio import AsyncClient

    url = credentials.server_url(args.server)
    async with AsyncClient(url, token=credentials.resolve_token(url)) as client:
        if args.keys_command == "create":
            key = await client._json("POST", _KEYS, json={})
            return key, (f"access key id:     {key['access_key_id']}\n"
                         f"secret access key: {key['secret_access_key']}\n"
                         "(the secret is shown only now: keep it)")
        if args.keys_command == "revoke":
            done = await client._json("DELETE", f"{_KEYS}/{args.access_key_id}")
            return done, f"revoked {args.access_key_id}"
        listed = await client._json("GET", _KEYS)
        lines = [f"{k['access_key_id']}  created "
                 f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(k['created_at']))}"
                 for k in listed["keys"]]
        return listed, "\n".join(lines) or "no access keys (create one: echofs keys create)"
