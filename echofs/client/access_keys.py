"""``echofs keys``: an account's S3 access keys — create (the secret is
printed once), list, revoke. Through the REST API, as the logged-in account
(``echofs login`` first)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser is built at every start; the client only runs here
    from echofs.client.aio import AsyncClient

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


async def keys_answer(client: AsyncClient, args: argparse.Namespace) -> tuple[object, str]:
    """Run ``echofs keys <action>`` on a connected client: its JSON answer
    and the text a terminal gets (the command runner prints one of them)."""
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
