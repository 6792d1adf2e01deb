"""One master per SQLite metadata file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from echofs.metadata.ownership import MetadataInUse, SoleMasterLock, sqlite_path


def test_sqlite_path_only_for_sqlite_files(tmp_path):
    assert sqlite_path(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}") == tmp_path / "m.db"
    assert sqlite_path("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_path("postgresql+psycopg://postgres@127.0.0.1/echofs") is None


def test_a_second_master_is_refused_until_the_first_lets_go(tmp_path):
    first = SoleMasterLock(tmp_path / "m.db")
    first.acquire()
    with pytest.raises(MetadataInUse) as refused:
        SoleMasterLock(tmp_path / "m.db").acquire()
    assert f"pid {os.getpid()}" in str(refused.value)
    assert "PostgreSQL" in str(refused.value)
    first.release()
    second = SoleMasterLock(tmp_path / "m.db")
    second.acquire()
    second.release()


def test_the_lock_dies_with_its_process(tmp_path):
    # Held by a process killed without cleanup: the kernel releases it.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; "
        "from echofs.metadata.ownership import SoleMasterLock; "
        f"SoleMasterLock(Path({str(tmp_path / 'm.db')!r})).acquire(); "
        "print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(MetadataInUse):
            SoleMasterLock(tmp_path / "m.db").acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = SoleMasterLock(tmp_path / "m.db")
    lock.acquire()
    lock.release()
