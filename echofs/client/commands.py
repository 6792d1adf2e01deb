"""The ``echofs`` commands that talk to a running node: put, get, ls, rm, stat,
versions, login, logout and admin — their arguments.

What they do is in :mod:`echofs.client.actions`, imported only when one of
them runs, so ``echofs --help`` and ``echofs serve`` do not pay for the
HTTP client and the progress bars.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from echofs.client.credentials import DEFAULT_URL

CLIENT_COMMANDS = frozenset({"put", "get", "ls", "rm", "stat", "versions", "login", "logout",
                             "admin", "keys"})
HINTS = ("auto", "strong", "available")
MODES = ("strong", "hybrid", "available")

Parsers = argparse._SubParsersAction  # type: ignore[type-arg]
# Files larger than this are put in resumable parts (the --resumable-above default).
RESUMABLE_ENV = "ECHOFS_RESUMABLE_ABOVE"
RESUMABLE_DEFAULT = 64 * 1024 * 1024
_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(raw: str) -> int:
    """``1048576``, ``64k``, ``16MiB``, ``1GB`` → bytes (binary units)."""
    text = raw.strip().lower().removesuffix("b").removesuffix("i")
    try:
        value = (int(float(text[:-1]) * _UNITS[text[-1]]) if text and text[-1] in _UNITS
                 else int(text))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"not a size: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("a size must be at least 1 byte")
    return value


# -- parsers -----------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help="EchoFS address (env ECHOFS_URL; default "
                        f"{DEFAULT_URL})")
    common.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout (for scripts)")
    return common


def add_client_parsers(sub: Parsers) -> None:
    common = _common()
    ref_help = "a file id (32 hex digits) or a path like docs/a.txt"

    put = sub.add_parser("put", parents=[common], help="upload a file (a new version if the "
                         "path exists)")
    put.add_argument("file", help="local file, or - for standard input")
    put.add_argument("remote", nargs="?", help="path in EchoFS (default: the file's name; "
                     "ending in / puts the file's name in that folder)")
    put.add_argument("--consistency", choices=HINTS, help="consistency hint for this write")
    put.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    put.add_argument("--resumable-above", type=parse_size, default=None, metavar="SIZE",
                     help="files larger than this go in resumable parts, and a run "
                     "interrupted goes on where it stopped when run again (default: "
                     f"${RESUMABLE_ENV} or 64MiB)")
    put.add_argument("--part-size", type=parse_size, default=None, metavar="SIZE",
                     help="part size of a resumable upload (default: the server's)")

    get = sub.add_parser("get", parents=[common], help="download a file")
    get.add_argument("ref", metavar="ID|PATH", help=ref_help)
    get.add_argument("dest", nargs="?", default=".",
                     help="local file or folder (default: current folder), - for stdout")
    get.add_argument("--version", type=int, help="an older version (default: current)")
    get.add_argument("--no-verify", action="store_true",
                     help="skip checking the bytes against the file's BLAKE3 digest")
    get.add_argument("--no-progress", action="store_true", help="never draw a progress bar")

    ls = sub.add_parser("ls", parents=[common], help="list files")
    ls.add_argument("prefix", nargs="?", default="", help="only paths starting with this")
    ls.add_argument("--all", dest="all_users", action="store_true",
                    help="every user's files (administrators)")
    ls.add_argument("--limit", type=int, help="at most this many files")

    rm = sub.add_parser("rm", parents=[common], help="delete a file (or one version)")
    rm.add_argument("ref", metavar="ID|PATH", help=ref_help)
    rm.add_argument("--version", type=int, help="delete only this version")

    stat = sub.add_parser("stat", parents=[common], help="a file's metadata, chunks, replicas")
    stat.add_argument("ref", metavar="ID|PATH", help=ref_help)
    stat.add_argument("--version", type=int, help="an older version (default: current)")

    versions = sub.add_parser("versions", parents=[common], help="a file's versions")
    versions.add_argument("ref", metavar="ID|PATH", help=ref_help)

    login = sub.add_parser("login", parents=[common],
                           help="log in and save the token for this server")
    login.add_argument("--username", help="account name (prompted if missing)")
    login.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input")
    login.add_argument("--register", action="store_true",
                       help="create the account first (the first one becomes admin)")

    sub.add_parser("logout", parents=[common], help="forget the token saved for this server")

    _admin_parsers(sub, common)


def _admin_parsers(sub: Parsers, common: argparse.ArgumentParser) -> None:
    ref_help = "a file id (32 hex digits) or a path like docs/a.txt"
    admin = sub.add_parser("admin", help="operate the cluster (administrators)")
    tools = admin.add_subparsers(dest="admin_command", required=True, metavar="TOOL")

    mode = tools.add_parser("mode", parents=[common], help="a file's consistency mode and why")
    mode.add_argument("ref", metavar="ID|PATH", help=ref_help)

    hint = tools.add_parser("hint", parents=[common], help="pin a file's mode (or auto)")
    hint.add_argument("ref", metavar="ID|PATH", help=ref_help)
    hint.add_argument("hint", choices=HINTS, help="auto lets the controller decide; strong "
                      "or available pins the mode")

    override = tools.add_parser("override", parents=[common],
                                help="show, set or clear the global mode override")
    override.add_argument("mode", nargs="?", choices=MODES, help="force every file into this")
    override.add_argument("--clear", action="store_true", help="remove the override")

    critical = tools.add_parser("critical-keys", parents=[common],
                                help="list, add or remove files that are always strong")
    critical.add_argument("action", nargs="?", choices=("list", "add", "remove"),
                          default="list", help="what to do with the files given")
    critical.add_argument("refs", nargs="*", metavar="ID|PATH",
                          help="files to add or remove (ids or paths)")

    transitions = tools.add_parser("transitions", parents=[common],
                                   help="recent mode changes (the audit log)")
    transitions.add_argument("--file", dest="ref", metavar="ID|PATH", help="only this file")
    transitions.add_argument("--limit", type=int, default=50,
                             help="at most this many, newest first (1..1000)")

    tools.add_parser("workers", parents=[common], help="workers: state, capacity, RTT")

    create = tools.add_parser("create-user", help="create an account directly in the "
                              "metadata store (no server needed)")
    create.add_argument("username", help="the new account's name")
    create.add_argument("--admin", action="store_true", help="give it the admin role")
    create.add_argument("--email", help="the account's email address (unique; it can sign "
                        "in with it)")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")
    create.add_argument("--data-dir", type=Path, help="embedded data folder (for its SQLite)")
    create.add_argument("--database-url", help="metadata store URL (env DATABASE_URL)")
    create.add_argument("--json", action="store_true", help="print the account as JSON")


def run_client_command(args: argparse.Namespace) -> int:
    """Run a parsed client command; the exit code."""
    from echofs.client.actions import run

    return run(args)
