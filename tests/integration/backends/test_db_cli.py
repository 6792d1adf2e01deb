"""`echofs db upgrade|downgrade|current` on PostgreSQL, as an operator runs
them: a separate process, the URL in DATABASE_URL, in each spelling."""

from __future__ import annotations

import os
import subprocess
import sys

from echofs.metadata import database


def echofs_db(*args: str, url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "echofs", "db", *args],
        env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_upgrade_downgrade_current(postgres_url: str) -> None:
    rest = postgres_url.split("://", 1)[1]
    head = database.head_revision()

    # The seed's spelling, then SQLAlchemy's, then the bare one.
    out = echofs_db("upgrade", url=f"postgres://{rest}")
    assert f"schema revision: {head} (head: {head})" in out
    assert database.current(postgres_url) == head

    out = echofs_db("downgrade", "base", url=f"postgresql+psycopg://{rest}")
    assert "schema revision: none" in out
    assert database.current(postgres_url) is None

    assert "schema revision: none" in echofs_db("current", url=f"postgresql://{rest}")
