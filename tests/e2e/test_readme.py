"""The README's first hour, as a new user lives it: a fresh clone of HEAD, set-up
command 1, then the walk-through, the command-line section and the consistency
levers, every shell line as written and in order, against that node.

What is substituted, and why:

- Set-up command 1's install. ``pip install -U pip`` and a real ``pip install
  -e .`` would download for minutes, so the clone's ``.venv`` is made without
  pip and sees the site-packages of the virtualenv running this test (a ``.pth``
  line: a virtualenv cannot inherit another virtualenv's packages through
  ``--system-site-packages``), and ``pip install --no-deps -e .`` then installs
  the clone itself into it. The command must still install the runtime alone
  (no extras): that is checked on its text.
- The port. A developer runs the suite beside the node command 1 started on
  8080, so this node takes a free port: ``:8080`` in the commands is rewritten
  to it, and ``ECHOFS_URL`` (the README's own way to point the CLI) names it.
- ``echofs serve`` runs in the background until healthy, instead of in the
  foreground of a terminal of its own.

Set-up command 2 (``tests/run.sh``) is what runs this suite, so it is only
checked to exist. The environment is clean: a plain system ``PATH``, a home
folder of its own, nothing of ``ECHOFS_*`` or the running virtualenv.

A step fails the test by exiting non-zero, by answering a JSON error, or by
lacking what its ``# → text`` comment promises (fragments separated by ``…``
must each appear in its output). Afterwards ``git status`` in the clone must be
clean: ``.gitignore`` covers everything the commands made.
"""

from __future__ import annotations

import os
import re
import signal
import site
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from echofs.testing.process import free_port

ROOT = Path(__file__).resolve().parents[2]
# The sections whose shell blocks a new user runs against the node of command 1,
# in README order.
RUN_SECTIONS = ("Walk-through", "Command line and web UI", "Adaptive consistency")
PROMISE = re.compile(r"\s#\s[^\n]*?→\s*(?P<text>[^\n]+)$")
STEP_MARK = "::readme-step {}::"


@dataclass
class Step:
    section: str
    command: str  # as written in the README, continuation lines included

    def promises(self) -> list[str]:
        found = PROMISE.search(self.command)
        if found is None:
            return []
        return [part.strip() for part in found["text"].split("…") if part.strip()]


def sections(readme: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", readme, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def bash_blocks(body: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", body, flags=re.MULTILINE | re.DOTALL)


def steps(block: str, section: str) -> list[Step]:
    """One step per command: continuation lines joined, blanks and comments dropped."""
    found: list[Step] = []
    pending: list[str] = []
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending.append(line)
        if not line.rstrip().endswith("\\"):
            found.append(Step(section, "\n".join(pending)))
            pending = []
    assert not pending, f"a command in {section} ends with a line continuation"
    return found


def clean_env(home: Path, url: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "ECHOFS_URL": url}


def script(all_steps: list[Step], port: int) -> str:
    """One bash script, so shell variables (FILE_ID) carry from step to step;
    each step is framed by a marker and stops the script if it fails."""
    lines = ["set -o pipefail", "exec 2>&1"]
    for number, step in enumerate(all_steps):
        command = step.command.replace("localhost:8080", f"localhost:{port}")
        command = command.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        lines += [f"printf '\\n{STEP_MARK.format(number)}\\n'", command,
                  "rc=$?; if [ $rc -ne 0 ]; then printf '\\nexit %s\\n' $rc; exit $rc; fi"]
    return "\n".join(lines) + "\n"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"echofs serve exited with {proc.returncode}:\n" + (
            log.read_text(errors="replace"))
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError("echofs serve not healthy after 30 s:\n" + log.read_text())


def install_command_one(clone: Path, command: str, env: dict[str, str]) -> str:
    """Runs command 1's install parts (see the module docstring for what is
    substituted) and returns the part that starts the node."""
    parts = [part.strip() for part in command.split("&&")]
    assert parts[0] == "python3 -m venv .venv", parts
    assert parts[-1] == ".venv/bin/echofs serve", parts
    installs = [p for p in parts[1:-1] if p.startswith(".venv/bin/pip install")]
    assert ".venv/bin/pip install -e ." in installs, (
        "command 1 installs the runtime only, without the test extras", parts)
    assert all("[" not in p for p in installs), ("no extras in command 1", parts)

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", ".venv"], cwd=clone,
                   env=env, check=True)
    packages = next((clone / ".venv" / "lib").glob("python3*/site-packages"))
    (packages / "tested_environment.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    subprocess.run([".venv/bin/python", "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "-e", "."], cwd=clone, env=env, check=True,
                   timeout=300)
    return parts[-1]


def test_the_readme_runs_as_written_from_a_fresh_clone(tmp_path):
    clone, home = tmp_path / "clone", tmp_path / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True,
                   timeout=120)
    readme = sections((clone / "README.md").read_text())

    set_up = bash_blocks(readme["Set-up"])
    assert len(set_up) == 1, "Set-up has one block: its two commands"
    commands = [line for line in set_up[0].splitlines()
                if line.strip() and not line.startswith("#")]
    assert len(commands) == 2, commands
    assert commands[1] == "tests/run.sh", commands[1]
    assert os.access(clone / "tests" / "run.sh", os.X_OK), "tests/run.sh is not executable"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(home, url)
    serve = install_command_one(clone, commands[0], env)
    assert (clone / ".venv" / "bin" / "echofs").exists(), "command 1 installed no echofs"

    all_steps = [step for title in RUN_SECTIONS for block in bash_blocks(readme[title])
                 for step in steps(block, title)]
    assert len(all_steps) > 30, "the README's runnable sections lost their commands"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        node = subprocess.Popen([*serve.split(), "--port", str(port)], cwd=clone, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, node, log)
        done = subprocess.run(["bash", "-c", script(all_steps, port)], cwd=clone, env=env,
                              capture_output=True, timeout=600)
    finally:
        node.send_signal(signal.SIGTERM)
        stopped = node.wait(timeout=60)
    output = done.stdout.decode(errors="replace")

    pieces = re.split(r"\n::readme-step (\d+)::\n", "\n" + output)
    ran = {int(number): text for number, text in zip(pieces[1::2], pieces[2::2], strict=True)}
    for number, step in enumerate(all_steps):
        where = f"[{step.section}] {step.command}"
        assert number in ran, f"never ran: {where}\n(output so far)\n{output[-3000:]}"
        text = ran[number]
        assert number != max(ran) or done.returncode == 0, (
            f"failed (exit {done.returncode}): {where}\n{text}")
        assert '{"error":' not in text, f"answered an error: {where}\n{text}"
        for promise in step.promises():
            assert promise in text, f"promised {promise!r}, not in the output of {where}\n{text}"
    assert done.returncode == 0, output[-3000:]
    assert stopped == 0, log.read_text(errors="replace")[-3000:]

    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"the README's commands left files git does not ignore:\n{status}"
