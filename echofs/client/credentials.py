"""Where the client finds its server and its token.

- Server: ``--server``, else ``ECHOFS_URL``, else ``http://127.0.0.1:8080``.
- Token: ``ECHOFS_TOKEN``, else what ``echofs login`` saved for that server in
  ``$XDG_CONFIG_HOME/echofs/credentials.json`` (``~/.config/...`` when unset).

The credentials file holds bearer tokens, so it is created with mode 0600 in a
0700 folder, and replaced atomically so a crash never leaves half a file.
Tokens are kept per server URL: logging in to a second server does not log
out of the first.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "ECHOFS_URL"
TOKEN_ENV = "ECHOFS_TOKEN"


def normalize_url(url: str) -> str:
    """``host:port`` or a full URL → ``scheme://host:port`` without a trailing slash."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"server address {url!r} is not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def server_url(given: str | None = None, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return normalize_url(given or env.get(URL_ENV) or DEFAULT_URL)


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "echofs"


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / "credentials.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"servers": {}}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read credentials {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        raise ValueError(f"credentials file {path} is not in the expected format")
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def saved_login(url: str, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """What ``echofs login`` stored for ``url`` (token, username), if anything."""
    entry = _read(credentials_path(env))["servers"].get(normalize_url(url))
    return entry if isinstance(entry, dict) else None


def save_login(url: str, token: str, username: str,
               env: Mapping[str, str] | None = None) -> Path:
    path = credentials_path(env)
    data = _read(path)
    data["servers"][normalize_url(url)] = {"token": token, "username": username}
    _write(path, data)
    return path


def forget_login(url: str, env: Mapping[str, str] | None = None) -> bool:
    path = credentials_path(env)
    data = _read(path)
    if data["servers"].pop(normalize_url(url), None) is None:
        return False
    _write(path, data)
    return True


def resolve_token(url: str, env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV]
    entry = saved_login(url, env)
    token = entry.get("token") if entry else None
    return token if isinstance(token, str) and token else None
