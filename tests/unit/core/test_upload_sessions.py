"""How a file announced by its size is cut into parts."""

from __future__ import annotations

import pytest

from echofs.core.upload_sessions import MAX_PARTS, PartLayout


def test_parts_cover_the_file_exactly() -> None:
    layout = PartLayout(1000, 300)
    assert layout.total_parts == 4
    assert [layout.size(n) for n in range(4)] == [300, 300, 300, 100]
    assert sum(e["size"] for e in layout.expectations()) == 1000
    assert layout.expectations()[3] == {"index": 3, "offset": 900, "size": 100}
    assert not layout.has(4) and not layout.has(-1)


def test_exact_multiple_and_empty_file() -> None:
    assert PartLayout(600, 300).total_parts == 2
    assert PartLayout(600, 300).size(1) == 300
    empty = PartLayout(0, 300)
    assert empty.total_parts == 1 and empty.size(0) == 0


@pytest.mark.parametrize(("total", "part"), [(-1, 10), (10, 0)])
def test_impossible_layouts_are_refused(total: int, part: int) -> None:
    with pytest.raises(ValueError):
        PartLayout(total, part)


def test_a_free_layout_takes_any_part_number_up_to_the_limit() -> None:
    free = PartLayout(None, 5 * 1024 * 1024)
    assert not free.fixed and free.total_parts is None
    assert free.has(0) and free.has(MAX_PARTS) and not free.has(MAX_PARTS + 1)
    assert free.size(3) is None and free.expectations() == []
