"""The ``echofs`` client commands as a person and a script use them: real
subprocesses against a real ``echofs serve``.

Every command is run; transfers draw a progress bar with rate and ETA in a
pseudo-terminal and print nothing extra when piped; ``--json`` is parseable;
every error is one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from echofs.testing.process import ServeProcess, free_port

MIB = 1024 * 1024
SECRET = "c" * 40
# tqdm's bar: "NN%|" then "[elapsed<remaining, rate]" — the ETA and the rate.
BAR = re.compile(r"\d+%\|")
ETA_AND_RATE = re.compile(r"\[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?[kMG]?i?B/s\]")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServeProcess(tmp_path_factory.mktemp("cli") / "data") as process:
        yield process


@pytest.fixture
def env(server, tmp_path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("ECHOFS_")}
    values.update({"ECHOFS_URL": server.url, "XDG_CONFIG_HOME": str(tmp_path / "config"),
                   "HOME": str(tmp_path)})
    return values


def echofs(*args: str, env: dict[str, str], stdin: bytes | None = None,
           expect: int | None = 0) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([sys.executable, "-m", "echofs", *args], env=env, input=stdin,
                          capture_output=True, timeout=120)
    if expect is not None:
        assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
    return done


def out(done: subprocess.CompletedProcess[bytes]) -> str:
    return done.stdout.decode()


def as_json(*args: str, env: dict[str, str]) -> object:
    return json.loads(echofs(*args, "--json", env=env).stdout)


def one_line_error(done: subprocess.CompletedProcess[bytes], *, code: int = 1) -> str:
    err = done.stderr.decode()
    assert done.returncode == code, (done.returncode, err)
    assert err.startswith("echofs: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert done.stdout == b""
    return err.strip()


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 60.0,
                    answers: list[tuple[str, str]] = (), columns: int = 120,
                    ) -> tuple[int, str]:
    """Run ``echofs ARGS`` with stdin/stdout/stderr on a pseudo-terminal of
    ``columns`` columns (0: one that reports no size, like ``script``'s);
    ``answers`` are (prompt, reply) pairs typed when each prompt appears."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40 if columns else 0,
                                                         columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "echofs", *args], env=env, stdin=slave,
                            stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = bytearray()
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0].encode() in output:
                os.write(master, pending.pop(0)[1].encode() + b"\n")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    piece = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not piece:
                    break
                output += piece
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, output.decode(errors="replace")


def test_put_ls_stat_versions_get_rm(env, tmp_path):
    data = os.urandom(2 * MIB + 11)
    local = tmp_path / "photo.raw"
    local.write_bytes(data)

    put = out(echofs("put", str(local), "pics/photo.raw", env=env))
    assert put.startswith(f"uploaded {local} → pics/photo.raw  id ")
    file_id = re.search(r"id ([0-9a-f]{32})", put).group(1)
    assert "v1" in put and "2.0 MiB" in put and "(3 chunks)" in put
    local.write_bytes(data[::-1])
    again = out(echofs("put", str(local), "pics/", env=env))  # keeps the file's name
    assert f"→ pics/photo.raw  id {file_id}  v2" in again

    listing = out(echofs("ls", env=env))
    header, *rows = listing.splitlines()
    assert header.split() == ["ID", "SIZE", "MODE", "VER", "UPDATED", "PATH"]
    assert any(r.startswith(file_id) and r.endswith("pics/photo.raw") for r in rows)
    assert out(echofs("ls", "nothing/", env=env)) == "no files\n"

    stat = out(echofs("stat", "pics/photo.raw", env=env))
    assert f"id:              {file_id}" in stat
    assert "version:         2 of 2" in stat and "chunks:          3" in stat
    assert re.search(r"^\s+0\s+0\s+1\.0 MiB\s+-\s+w\d,w\d,w\d", stat, re.MULTILINE)

    versions = out(echofs("versions", file_id, env=env)).splitlines()
    assert versions[0] == f"pics/photo.raw ({file_id}), * = current"
    assert versions[2].split()[:2] == ["2", "*"] and versions[3].split()[0] == "1"

    dest = tmp_path / "downloads"
    dest.mkdir()
    got = out(echofs("get", "pics/photo.raw", str(dest), env=env))
    assert got.startswith("downloaded pics/photo.raw → ") and "verified" in got
    assert (dest / "photo.raw").read_bytes() == data[::-1]
    echofs("get", file_id, str(dest / "old.raw"), "--version", "1", env=env)
    assert (dest / "old.raw").read_bytes() == data

    assert out(echofs("rm", "pics/photo.raw", "--version", "1", env=env)) == (
        "deleted version 1 of pics/photo.raw (1 version)\n")
    assert out(echofs("rm", file_id, env=env)) == "deleted pics/photo.raw (1 version)\n"
    one_line_error(echofs("stat", file_id, env=env, expect=None))


def test_json_output_for_scripts(env, tmp_path):
    local = tmp_path / "data.json"
    local.write_bytes(b'{"k": 1}')
    up = as_json("put", str(local), "j/data.json", "--consistency", "strong", env=env)
    assert up["path"] == "j/data.json" and up["version"] == 1 and up["mode"] == "strong"
    listed = as_json("ls", "j/", env=env)
    assert [f["file_id"] for f in listed] == [up["file_id"]]
    stat = as_json("stat", up["file_id"], env=env)
    assert stat["chunk_list"][0]["replicas"] and stat["current_version"] == 1
    versions = as_json("versions", "j/data.json", env=env)
    assert [v["version"] for v in versions["versions"]] == [1]
    got = as_json("get", "j/data.json", str(tmp_path / "copy.json"), env=env)
    assert got["size"] == 8 and got["verified"] is True and got["dest"].endswith("copy.json")
    gone = as_json("rm", "j/data.json", env=env)
    assert gone == {"deleted_versions": 1, "file_id": up["file_id"], "path": "j/data.json"}


def test_standard_input_and_output(env):
    payload = bytes(range(256)) * 1000
    echofs("put", "-", "streams/in.bin", env=env, stdin=payload)
    done = echofs("get", "streams/in.bin", "-", env=env)
    assert done.stdout == payload and done.stderr == b""


def test_a_terminal_gets_progress_bars_with_rate_and_eta(env, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(24 * MIB))
    code, screen = run_in_terminal(["put", str(local), "tty/big.bin"], env)
    assert code == 0, screen
    assert BAR.search(screen) and ETA_AND_RATE.search(screen), screen
    assert "100%|" in screen and "24.0M/24.0M" in screen, screen
    assert "uploaded" in screen

    code, screen = run_in_terminal(["get", "tty/big.bin", str(tmp_path / "back.bin")], env)
    assert code == 0, screen
    assert BAR.search(screen) and ETA_AND_RATE.search(screen), screen
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()

    code, screen = run_in_terminal(["put", "--no-progress", str(local), "tty/quiet.bin"], env)
    assert code == 0 and not BAR.search(screen), screen


def test_a_terminal_reporting_zero_columns_still_gets_a_bar_in_binary_units(env, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(24 * MIB))
    env = {k: v for k, v in env.items() if k != "COLUMNS"}
    code, screen = run_in_terminal(["put", str(local), "tty/zero-columns.bin"], env, columns=0)
    assert code == 0, screen
    final = [line for line in screen.replace("\r", "\n").splitlines() if "100%|" in line]
    assert final and re.search(r"100%\|[#█]{10,}\|", final[-1]), screen
    assert ETA_AND_RATE.search(screen) and re.search(r"[KMG]iB/s\]", screen), screen
    assert "MB/s" not in screen


def test_piped_transfers_print_only_the_result(env, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(24 * MIB))
    put = echofs("put", str(local), "piped/big.bin", env=env)
    assert put.stderr == b"" and out(put).count("\n") == 1 and "%|" not in out(put)
    get = echofs("get", "piped/big.bin", str(tmp_path / "back.bin"), env=env)
    assert get.stderr == b"" and out(get).count("\n") == 1 and "\r" not in out(get)


def test_errors_are_one_readable_line_with_a_nonzero_exit(env, tmp_path):
    err = one_line_error(echofs("get", "no/such/file", str(tmp_path), env=env, expect=None))
    assert "no file at path 'no/such/file'" in err and "not_found" in err
    err = one_line_error(echofs("stat", "f" * 32, env=env, expect=None))
    assert "HTTP 404" in err
    err = one_line_error(echofs("put", str(tmp_path / "missing.bin"), env=env, expect=None))
    assert "No such file or directory" in err and "missing.bin" in err
    (tmp_path / "x").write_bytes(b"x")
    err = one_line_error(echofs("put", str(tmp_path / "x"), "../escape", env=env, expect=None))
    assert "invalid_name" in err
    err = one_line_error(echofs("ls", "--server", f"127.0.0.1:{free_port()}", env=env,
                                expect=None))
    assert "cannot connect" in err
    err = one_line_error(echofs("put", str(tmp_path), env=env, expect=None), code=2)
    assert "is a folder" in err
    err = one_line_error(echofs("get", "x", f"{tmp_path}/absent/", env=env, expect=None),
                         code=2)
    assert "does not exist" in err
    echofs("put", "-", "errors/f", env=env, stdin=b"bytes")
    missing = tmp_path / "nonexistent" / "dir" / "x"
    err = one_line_error(echofs("get", "errors/f", str(missing), env=env, expect=None),
                         code=2)
    assert str(missing) in err and ".part" not in err, err
    err = one_line_error(echofs("put", "-", env=env, expect=None), code=2)
    assert "needs a REMOTE path" in err
    err = one_line_error(echofs("admin", "override", "strong", "--clear", env=env,
                                expect=None), code=2)
    assert "not both" in err
    # argparse's own usage errors also exit 2, with its usage text.
    usage = echofs("admin", "hint", "x", "sometimes", env=env, expect=2)
    assert usage.stdout == b"" and b"invalid choice: 'sometimes'" in usage.stderr
    # Failed downloads left nothing behind (no partial file under any name).
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_admin_commands(env):
    echofs("put", "-", "admin/target.txt", env=env, stdin=b"levers")
    file_id = as_json("stat", "admin/target.txt", env=env)["file_id"]

    workers = out(echofs("admin", "workers", env=env)).splitlines()
    assert workers[0].split()[:3] == ["WORKER", "STATE", "CAPACITY"]
    assert [w.split()[:2] for w in workers[1:]] == [["w1", "alive"], ["w2", "alive"],
                                                    ["w3", "alive"]]
    assert len(as_json("admin", "workers", env=env)) == 3

    mode = out(echofs("admin", "mode", "admin/target.txt", env=env))
    assert mode.startswith(file_id) and "reason:" in mode

    assert out(echofs("admin", "override", env=env)) == "override: none\n"
    assert out(echofs("admin", "override", "available", env=env)) == (
        "override set: every file available\n")
    assert as_json("admin", "override", env=env) == {"override": "available"}
    assert as_json("admin", "mode", file_id, env=env)["mode"] == "available"
    assert out(echofs("admin", "override", "--clear", env=env)) == "override cleared\n"

    assert out(echofs("admin", "critical-keys", "add", "admin/target.txt", env=env)) == (
        f"{file_id}\n")
    assert as_json("admin", "critical-keys", env=env) == {"keys": [file_id]}
    assert out(echofs("admin", "critical-keys", "remove", file_id, env=env)) == (
        "no critical keys\n")

    hint = out(echofs("admin", "hint", "admin/target.txt", "available", env=env))
    assert hint == f"hint available set for {file_id}: mode now available\n"
    transitions = as_json("admin", "transitions", "--file", file_id, env=env)
    assert transitions and all(t["object_id"] == file_id for t in transitions)
    table = out(echofs("admin", "transitions", "--limit", "5", env=env)).splitlines()
    assert table[0].split() == ["WHEN", "FILE", "FROM", "TO", "REASON", "SCORE"]
    assert 2 <= len(table) <= 6
    echofs("admin", "hint", file_id, "auto", env=env)


def test_login_is_refused_by_a_node_without_accounts(env):
    err = one_line_error(echofs("login", "--username", "someone", "--password-stdin",
                                env=env, stdin=b"some password\n", expect=None))
    assert "auth_disabled" in err


# -- accounts ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    with ServeProcess(tmp_path_factory.mktemp("cli-auth") / "data",
                      env={"JWT_SECRET": SECRET}) as process:
        yield process


def test_accounts_from_the_command_line(secured, env, tmp_path):
    env = env | {"ECHOFS_URL": secured.url}
    data_dir = str(secured.data_dir)
    created = echofs("admin", "create-user", "root", "--admin", "--password-stdin",
                     "--data-dir", data_dir, env=env, stdin=b"root password\n")
    assert re.fullmatch(r"created admin root \([0-9a-f]{32}\)\n", out(created))
    one_line_error(echofs("admin", "create-user", "root", "--password-stdin", "--data-dir",
                          data_dir, env=env, stdin=b"another one\n", expect=None))
    err = one_line_error(echofs("admin", "create-user", "shorty", "--password-stdin",
                                "--data-dir", data_dir, env=env, stdin=b"short\n",
                                expect=None), code=2)
    assert "password must be" in err
    made = echofs("admin", "create-user", "ops", "--email", "Ops@Example.com", "--json",
                  "--password-stdin", "--data-dir", data_dir, env=env,
                  stdin=b"ops password\n")
    assert json.loads(made.stdout)["user"]["email"] == "ops@example.com"
    err = one_line_error(echofs("admin", "create-user", "ops2", "--email", "not-an-address",
                                "--password-stdin", "--data-dir", data_dir, env=env,
                                stdin=b"ops password\n", expect=None), code=2)
    assert "email must be" in err

    err = one_line_error(echofs("ls", env=env, expect=None))
    assert "HTTP 401" in err and "echofs login" in err

    login = echofs("login", "--username", "root", "--password-stdin", env=env,
                   stdin=b"root password\n")
    assert out(login).startswith(f"logged in to {secured.url} as root (admin)")
    saved = Path(env["XDG_CONFIG_HOME"]) / "echofs" / "credentials.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert saved.parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(saved.read_text())["servers"][secured.url]["username"] == "root"

    echofs("put", "-", "root/only.txt", env=env, stdin=b"root's")
    assert len(as_json("admin", "workers", env=env)) == 3

    # A second account, made by registering: an ordinary user.
    user_env = env | {"XDG_CONFIG_HOME": str(tmp_path / "user-config")}
    done = echofs("login", "--register", "--username", "maria", "--password-stdin", "--json",
                  env=user_env, stdin=b"maria's password\n")
    registered = json.loads(done.stdout)
    assert registered["user"]["role"] == "user"
    assert out(echofs("ls", env=user_env)) == "no files\n"
    one_line_error(echofs("get", "root/only.txt", str(tmp_path), env=user_env, expect=None))
    err = one_line_error(echofs("admin", "workers", env=user_env, expect=None))
    assert "HTTP 403" in err and "administrators" in err
    echofs("put", "-", "maria.txt", env=user_env, stdin=b"maria's")

    everyone = out(echofs("ls", "--all", env=env))
    assert everyone.splitlines()[0].split()[-2:] == ["OWNER", "PATH"]
    assert "root/only.txt" in everyone and "maria.txt" in everyone

    # ECHOFS_TOKEN wins over the saved login.
    token = json.loads(saved.read_text())["servers"][secured.url]["token"]
    assert [f["path"] for f in as_json("ls", env=user_env | {"ECHOFS_TOKEN": token})] == [
        "root/only.txt"]

    # A person at a terminal is asked for what the command line did not give.
    code, screen = run_in_terminal(["login"], env, answers=[
        ("Username: ", "root"), ("Password: ", "root password")])
    assert code == 0 and f"logged in to {secured.url} as root (admin)" in screen, screen
    assert "root password" not in screen  # not echoed
    code, screen = run_in_terminal(["login", "--register", "--username", "newbie"], env,
                                   answers=[("Password: ", "first try!"),
                                            ("Password again: ", "second try")])
    assert code == 2 and "the passwords do not match" in screen, screen

    root_token = json.loads(saved.read_text())["servers"][secured.url]["token"]
    assert out(echofs("logout", env=env)) == (
        f"logged out of {secured.url}; every token of this account is revoked\n")
    assert out(echofs("logout", env=env)) == f"no saved login for {secured.url}\n"
    one_line_error(echofs("ls", env=env, expect=None))
    # Revoked on the server, not only forgotten here.
    err = one_line_error(echofs("ls", env=env | {"ECHOFS_TOKEN": root_token}, expect=None))
    assert "HTTP 401" in err and "token_revoked" in err, err
