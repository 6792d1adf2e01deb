"""SQLite metadata serves one master; a second one is refused at startup."""

from __future__ import annotations

import pytest

from echofs.node import StartupError
from echofs.testing.node import running_node


async def test_a_second_master_on_one_sqlite_file_refuses_to_start(tmp_path):
    async with running_node(tmp_path / "shared") as first:
        with pytest.raises(StartupError, match="in use by another master"):
            async with running_node(tmp_path / "shared"):
                pass
        # The first one is untouched and keeps its memo of reads.
        assert first.master is not None and first.master.repo.memo is not None
    # Once it stopped, the store can be opened again.
    async with running_node(tmp_path / "shared"):
        pass
