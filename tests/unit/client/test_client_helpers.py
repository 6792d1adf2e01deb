"""The client's local pieces: where it finds server and token, how it keeps
tokens, how it builds URLs from names, and what the terminal shows."""

from __future__ import annotations

import io
import json

import pytest

from echofs.cli import build_parser
from echofs.client import credentials
from echofs.client.names import filename_from, quote_path
from echofs.client.terminal import TransferProgress, human_size, table


@pytest.mark.parametrize(("given", "url"), [
    ("127.0.0.1:9000", "http://127.0.0.1:9000"),
    ("http://localhost:8080/", "http://localhost:8080"),
    ("https://files.example/echofs/", "https://files.example/echofs"),
    (" http://[::1]:8080 ", "http://[::1]:8080"),
])
def test_server_addresses_are_normalized(given, url):
    assert credentials.normalize_url(given) == url


@pytest.mark.parametrize("bad", ["ftp://host", "http://", "file:///etc/passwd"])
def test_bad_server_addresses_are_refused(bad):
    with pytest.raises(ValueError):
        credentials.normalize_url(bad)


def test_server_comes_from_flag_then_environment_then_default():
    env = {"ECHOFS_URL": "http://10.0.0.1:8080"}
    assert credentials.server_url("127.0.0.1:1", env) == "http://127.0.0.1:1"
    assert credentials.server_url(None, env) == "http://10.0.0.1:8080"
    assert credentials.server_url(None, {}) == credentials.DEFAULT_URL


def test_config_dir_follows_xdg(tmp_path):
    assert credentials.config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "echofs"
    # A relative XDG_CONFIG_HOME is invalid per the spec: fall back to ~/.config.
    assert credentials.config_dir({"XDG_CONFIG_HOME": "relative"}).parts[-2:] == (
        ".config", "echofs")


def test_tokens_are_kept_per_server_privately(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    path = credentials.save_login("127.0.0.1:8080", "token-a", "alice", env)
    credentials.save_login("http://other:8080/", "token-b", "bob", env)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert credentials.resolve_token("http://127.0.0.1:8080", env) == "token-a"
    assert credentials.resolve_token("http://other:8080", env) == "token-b"
    assert credentials.resolve_token("http://third:1", env) is None
    # The environment wins over the file.
    assert credentials.resolve_token("http://other:8080",
                                     {**env, "ECHOFS_TOKEN": "from-env"}) == "from-env"
    assert credentials.forget_login("http://127.0.0.1:8080", env)
    assert not credentials.forget_login("http://127.0.0.1:8080", env)
    assert credentials.resolve_token("http://127.0.0.1:8080", env) is None
    assert json.loads(path.read_text())["servers"].keys() == {"http://other:8080"}
    # Replaced atomically: no temporary files left around.
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]


def test_a_damaged_credentials_file_is_a_clear_error(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    credentials.credentials_path(env).parent.mkdir(parents=True)
    credentials.credentials_path(env).write_text("[1, 2")
    with pytest.raises(ValueError, match="cannot read credentials"):
        credentials.resolve_token("http://a:1", env)


def test_names_become_exact_url_paths():
    assert quote_path("docs/a b.txt") == "docs/a%20b.txt"
    assert quote_path("ünï/çødé?#.txt") == "%C3%BCn%C3%AF/%C3%A7%C3%B8d%C3%A9%3F%23.txt"
    # Dot segments are encoded so no URL library resolves them away: the
    # server sees (and refuses) the name as given.
    assert quote_path("../x") == "%2E%2E/x"
    assert quote_path("a/./b") == "a/%2E/b"


@pytest.mark.parametrize(("header", "name"), [
    ("attachment; filename=\"a.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf", "résumé.pdf"),
    ('attachment; filename="plain.bin"', "plain.bin"),
    ("attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", "passwd"),
    ("attachment; filename*=UTF-8''..", None),
    ('attachment; filename="a\\\\b"', "b"),
    (None, None),
])
def test_download_names_stay_in_the_target_folder(header, name):
    assert filename_from(header) == name


def test_sizes_and_tables():
    assert [human_size(n) for n in (None, 0, 1023, 1024, 5 * 1024 ** 3)] == [
        "-", "0 B", "1023 B", "1.0 KiB", "5.0 GiB"]
    text = table(["NAME", "SIZE"], [["a", "1 B"], ["longer", "10 KiB"]], right=(1,))
    assert text.splitlines() == ["NAME      SIZE", "a          1 B", "longer  10 KiB"]


def test_progress_draws_only_when_enabled():
    stream = io.StringIO()
    with TransferProgress("f", enabled=False, stream=stream) as progress:
        progress(0, 10)
        progress(10, 10)
    assert stream.getvalue() == ""
    with TransferProgress("f", enabled=True, stream=stream) as progress:
        progress(0, 2048)
        progress(2048, 2048)
    assert "100%|" in stream.getvalue() and "2.00k/2.00k" in stream.getvalue()


@pytest.mark.parametrize("argv", [
    ["put", "a", "b", "--consistency", "strong"], ["get", "x", "-"],
    ["ls", "p/", "--all", "--limit", "3"], ["rm", "x", "--version", "2"], ["stat", "x"],
    ["versions", "x"], ["login", "--username", "u"], ["logout"], ["admin", "mode", "x"],
    ["admin", "hint", "x", "auto"], ["admin", "override"], ["admin", "override", "available"],
    ["admin", "critical-keys", "add", "x"], ["admin", "transitions"], ["admin", "workers"],
])
def test_every_client_command_takes_server_and_json(argv):
    args = build_parser().parse_args([*argv, "--server", "h:1", "--json"])
    assert (args.command, args.server, args.json) == (argv[0], "h:1", True)


def test_create_user_works_on_the_store_not_a_server():
    args = build_parser().parse_args(["admin", "create-user", "u", "--admin",
                                      "--password-stdin", "--data-dir", "d"])
    assert (args.username, args.admin, args.password_stdin) == ("u", True, True)
    assert not hasattr(args, "server")


def test_the_package_exports_resolve():
    import echofs.client

    assert sorted(echofs.client.__all__) == sorted(echofs.client._EXPORTS)
    for name in echofs.client.__all__:
        assert getattr(echofs.client, name) is not None
    with pytest.raises(AttributeError):
        echofs.client.NoSuchThing  # noqa: B018


def test_argument_definitions_do_not_load_the_http_client():
    """``echofs --help`` and ``echofs serve`` parse with these; the HTTP client and
    the progress bars load only when a client command runs."""
    import subprocess
    import sys

    code = ("import sys, echofs.client.commands; "
            "print(sorted(m for m in ('aiohttp', 'tqdm') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
