"""nginx as a peer of the throughput bench: WebDAV PUT and plain GET on
loopback, from a config generated in a temporary folder, stopped afterwards.
The yardstick of what one machine's HTTP stack and disk can do."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from echofs.bench.target import Target, wait_for_port
from echofs.testing.process import free_port

# nginx's own stop on SIGTERM is quick; past this it is killed.
STOP_TIMEOUT_S = 10
# Two, as in every committed run, so nginx's figures stay comparable between runs.
WORKER_PROCESSES = 2


@contextlib.contextmanager
def nginx(root: Path) -> Iterator[Target]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx is not installed (Debian: apt-get install nginx-light)")
    port = free_port()
    for folder in ("www/dav", "tmp", "logs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    # As root, nginx's workers would drop to an unprivileged user that cannot
    # write our temporary folders; keep them as the invoking user.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
worker_processes {WORKER_PROCESSES};
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    client_max_body_size 0;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location /dav/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
    }}
}}
""")
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(root), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc, "nginx")
        yield Target("nginx", f"http://127.0.0.1:{port}", "/dav/{name}", "/dav/{name}",
                     [proc.pid])
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT_S)
        if proc.poll() is None:
            proc.kill()
