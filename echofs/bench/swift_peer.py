"""OpenStack Swift as a peer of the throughput bench: the nearest relative of
EchoFS (Python, three replicas, every object PUT synced), built all-in-one on
loopback in a temporary folder from Debian's packages, stopped afterwards.

Layout, as Swift accepts three replicas on one host:

- three devices ``d1``..``d3``, plain directories (``mount_check = false``: no
  XFS or loop mounts), each in a zone of its own so the ring puts one replica
  of every partition on each;
- one account, one container and one object server, each serving all three
  devices on its own port; account, container and object rings with three
  replicas, built with ``swift-ring-builder``;
- a proxy with tempauth (one user, ``test:tester``) and memcached behind
  ``[filter:cache]``: tempauth keeps its tokens nowhere else, so Swift's auth
  does not work without one (and a real deployment always has it, caching
  account and container lookups as here).

Durability is Swift's default and is not touched: the object server
``fsync``\\s every object's data and metadata before a PUT is acknowledged
(``DiskFileWriter.put``), and the proxy answers once a majority (two of
three) has, after a short wait for the third. Every server runs
``workers = auto`` (one per core), as Swift sizes itself; replicators,
auditors and updaters are not started, as they do no work during a bench.

Servers log warnings and errors only, to a log file each in the folder (the
access logs are off, as nginx's are in this bench).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from echofs.bench.target import LISTEN_TIMEOUT_S, Target, wait_for_port
from echofs.testing.process import free_port

DEBIAN_PACKAGES = "swift swift-proxy swift-object swift-container swift-account memcached"
PROGRAMS = ("swift-ring-builder", "swift-proxy-server", "swift-account-server",
            "swift-container-server", "swift-object-server", "memcached")
REPLICAS = 3
# 2^8 partitions: enough to spread over three devices evenly, and the rings
# build in a moment.
PART_POWER = 8
# Hours before a partition may move again; no rebalance follows, so any will do.
MIN_PART_HOURS = 1
DEVICE_WEIGHT = 100
# tempauth's one user: account ``test`` (``AUTH_test``), user ``tester``.
ACCOUNT, USER, KEY = "test", "tester", "testing"
CONTAINER = "bench"
# memcached's item memory: tokens and a few account/container infos.
MEMCACHED_MIB = 64
# Each server stops its workers on SIGTERM; past this they are killed.
STOP_TIMEOUT_S = 10
_RETRY_S = 0.1
_REQUEST_TIMEOUT_S = 5

# Runs one of Swift's server scripts, argv: bench pid, swift_dir, script, config.
# - Swift's servers read swift.conf (the hash path salt, the storage policies)
#   from /etc/swift whatever their own config says; this points that at our
#   folder, so the machine's own Swift config is neither needed nor used.
# - Each server makes itself a session leader (its SIGTERM stops its whole
#   group), so a bench killed outright would not take it along: it asks for
#   SIGTERM when the bench dies instead (prctl PR_SET_PDEATHSIG).
_LAUNCH = """\
import ctypes, os, runpy, signal, sys
PR_SET_PDEATHSIG = 1
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit("the bench is gone")
from swift.common import constraints, storage_policy, utils
utils.set_swift_dir(sys.argv[2])
storage_policy.reload_storage_policies()
constraints.reload_constraints()
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

_SERVERS = {  # role: (script, paste app)
    "account": ("swift-account-server", "egg:swift#account"),
    "container": ("swift-container-server", "egg:swift#container"),
    "object": ("swift-object-server", "egg:swift#object"),
}


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} not found: the bench measures OpenStack Swift beside "
                         "EchoFS; install it (Debian: apt-get install "
                         f"--no-install-recommends {DEBIAN_PACKAGES}) or leave it out "
                         "with --no-swift")
    return path


def require_installed() -> None:
    """Stop the bench, naming the packages, if a program it starts is missing."""
    for name in PROGRAMS:
        _program(name)


def version() -> str:
    """The installed Swift's version, as its own Python reports it."""
    python = _interpreter(_program("swift-proxy-server"))
    done = subprocess.run([*python, "-c", "import swift; print(swift.__version__)"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _interpreter(script: str) -> list[str]:
    """The Python that Debian's Swift scripts run with (their ``#!`` line, as
    a command): Swift is installed for it, not for this bench's virtualenv."""
    with open(script, "rb") as f:
        first = f.readline().decode()
    if not first.startswith("#!") or not first[2:].split():
        raise SystemExit(f"{script} has no #! line to tell its Python")
    return first[2:].split()


def _common_conf(root: Path, port: int) -> str:
    # Running as root, Swift would drop to ``user = swift``, which cannot
    # write this folder: it stays whoever runs the bench.
    return f"""[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = auto
user = {pwd.getpwuid(os.geteuid()).pw_name}
swift_dir = {root}
devices = {root / "devices"}
mount_check = false
log_level = WARNING
"""


def _server_conf(root: Path, role: str, port: int) -> str:
    return _common_conf(root, port) + f"""
[pipeline:main]
pipeline = {role}-server

[app:{role}-server]
use = {_SERVERS[role][1]}
"""


def _proxy_conf(root: Path, port: int, memcached_port: int) -> str:
    # The middleware the proxy would insert by itself anyway, written out in
    # its order, plus cache and tempauth; none of the optional ones (bulk,
    # SLO, quotas, rate limits, ...) that the bench's requests would not use.
    return _common_conf(root, port) + f"""
[pipeline:main]
pipeline = catch_errors gatekeeper cache listing_formats tempauth copy dlo versioned_writes \
proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_{ACCOUNT}_{USER} = {KEY} .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached_port}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
"""


def _swift_conf() -> str:
    return """[swift-hash]
swift_hash_path_prefix = echofs-bench
swift_hash_path_suffix = echofs-bench

[storage-policy:0]
name = Policy-0
default = yes
"""


def _build_ring(root: Path, ring: str, port: int) -> None:
    builder = str(root / f"{ring}.builder")
    devices = [arg for i in range(1, REPLICAS + 1)
               for arg in (f"r1z{i}-127.0.0.1:{port}/d{i}", str(DEVICE_WEIGHT))]
    for step in (["create", str(PART_POWER), str(REPLICAS), str(MIN_PART_HOURS)],
                 ["add", *devices], ["rebalance"]):
        done = subprocess.run([_program("swift-ring-builder"), builder, *step],
                              capture_output=True, text=True)
        # swift-ring-builder exits 1 for a warning, 2 for an error.
        if done.returncode > 1:
            raise SystemExit(f"swift-ring-builder {ring}.builder {step[0]} failed:\n"
                             f"{done.stdout}{done.stderr}")


def _build_rings(root: Path, ports: dict[str, int]) -> None:
    """The account, container and object rings, each over the three devices
    of its server's port; built side by side, as each tool run is a second of
    Python start-up."""
    with ThreadPoolExecutor(len(_SERVERS)) as pool:
        for built in [pool.submit(_build_ring, root, role, ports[role]) for role in _SERVERS]:
            built.result()


@contextlib.contextmanager
def _process(command: list[str], log: Path, *,
             own_group: bool) -> Iterator[subprocess.Popen[bytes]]:
    """One server, stopped however the bench ends. ``own_group``: it runs in a
    process group of its own with its workers, and that whole group is
    stopped; otherwise it stays in the bench's (so whatever stops the bench's
    group stops it too) and is stopped alone."""
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=own_group)

    def signal_(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if own_group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)

    try:
        yield proc
    finally:
        signal_(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT_S)
        # Workers may outlive their parent by a moment: they go either way.
        signal_(signal.SIGKILL)
        proc.wait()


def _distinct_ports(roles: tuple[str, ...]) -> dict[str, int]:
    """A free loopback port for each role, no two the same."""
    ports: dict[str, int] = {}
    for role in roles:
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[role] = port
    return ports


def _request(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=_REQUEST_TIMEOUT_S) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)
    except OSError:
        return 0, {}


def _until(method: str, url: str, headers: dict[str, str], ok: tuple[int, ...],
           what: str) -> dict[str, str]:
    """Repeat a request until it answers one of ``ok``: the servers listen
    before their workers take requests."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    status = 0
    while time.monotonic() < deadline:
        status, answer = _request(method, url, headers)
        if status in ok:
            return answer
        time.sleep(_RETRY_S)
    raise SystemExit(f"Swift: {what} answered {status or 'nothing'}")


@contextlib.contextmanager
def swift(root: Path) -> Iterator[Target]:
    proxy_script = _program("swift-proxy-server")
    memcached = _program("memcached")
    python = _interpreter(proxy_script)
    for i in range(1, REPLICAS + 1):
        (root / "devices" / f"d{i}").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    (root / "swift.conf").write_text(_swift_conf())
    ports = _distinct_ports(("proxy", "memcached", *_SERVERS))
    _build_rings(root, ports)
    for role in _SERVERS:
        (root / f"{role}-server.conf").write_text(_server_conf(root, role, ports[role]))
    (root / "proxy-server.conf").write_text(
        _proxy_conf(root, ports["proxy"], ports["memcached"]))

    def launch(role: str, script: str) -> list[str]:
        # --verbose: warnings and errors to the log file too (there is no
        # syslog to send them to).
        return [*python, "-c", _LAUNCH, str(os.getpid()), str(root), script,
                str(root / f"{role}-server.conf"), "--verbose"]

    # As root, memcached wants -u to say whom to run as.
    as_user = ["-u", pwd.getpwuid(os.geteuid()).pw_name] if os.geteuid() == 0 else []
    commands = {
        "memcached": [memcached, "-l", "127.0.0.1", "-p", str(ports["memcached"]), "-U", "0",
                      "-m", str(MEMCACHED_MIB), *as_user],
        **{role: launch(role, _program(script)) for role, (script, _app) in _SERVERS.items()},
        "proxy": launch("proxy", proxy_script),
    }
    with contextlib.ExitStack() as running:
        # All start at once (each takes a second or two to import Swift), then
        # each is waited for.
        procs = {role: running.enter_context(_process(
                     command, root / "logs" / f"{role}.log", own_group=role != "memcached"))
                 for role, command in commands.items()}
        for role, proc in procs.items():
            wait_for_port(ports[role], proc, f"Swift's {role}",
                          f"\n(see {root / 'logs' / role}.log)")
        base = f"http://127.0.0.1:{ports['proxy']}"
        auth = _until("GET", f"{base}/auth/v1.0",
                      {"X-Auth-User": f"{ACCOUNT}:{USER}", "X-Auth-Key": KEY}, (200,),
                      "GET /auth/v1.0")
        headers = {"X-Auth-Token": auth["X-Auth-Token"]}
        path = f"/v1/AUTH_{ACCOUNT}/{CONTAINER}"
        _until("PUT", base + path, headers, (201, 202), f"PUT {path}")
        yield Target("swift", base, path + "/{name}", path + "/{name}", [procs["proxy"].pid],
                     headers)
