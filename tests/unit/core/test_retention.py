"""Which file versions retention prunes."""

from __future__ import annotations

import pytest

from echofs.core.retention import versions_to_prune


@pytest.mark.parametrize(
    ("versions", "keep", "pruned"),
    [
        ([1, 2, 3, 4, 5], 2, [1, 2, 3]),
        ([1, 2, 3, 4, 5], 1, [1, 2, 3, 4]),
        ([1, 2, 3, 4, 5], 5, []),
        ([1, 2, 3, 4, 5], 6, []),
        ([1, 2, 3], 100, []),
        ([], 1, []),
        ([7], 1, []),
        ([5, 1, 4, 2, 3], 2, [1, 2, 3]),  # input order does not matter
        ([3, 10, 2], 1, [2, 3]),  # numeric, not lexical, order
        ([1, 5, 9, 20], 3, [1]),  # gaps in numbering
    ],
)
def test_versions_to_prune(versions: list[int], keep: int, pruned: list[int]) -> None:
    assert versions_to_prune(versions, keep) == pruned


def test_keeps_newest_and_prunes_oldest_first() -> None:
    versions = list(range(1, 21))
    pruned = versions_to_prune(versions, 3)
    assert pruned == sorted(pruned)
    assert set(versions) - set(pruned) == {18, 19, 20}


def test_does_not_mutate_input() -> None:
    versions = [3, 1, 2]
    versions_to_prune(versions, 1)
    assert versions == [3, 1, 2]


@pytest.mark.parametrize("keep", [0, -1])
def test_must_keep_at_least_one(keep: int) -> None:
    with pytest.raises(ValueError):
        versions_to_prune([1, 2, 3], keep)
    with pytest.raises(ValueError):
        versions_to_prune([], keep)
