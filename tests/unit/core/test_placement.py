"""Rendezvous placement of chunk replicas and the write quorum."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from echofs.core.chunk_codec import chunk_digest
from echofs.core.placement import place, rank_workers, write_quorum

WORKERS = [f"worker-{i:02d}" for i in range(10)]
IDS = [chunk_digest(str(i).encode()) for i in range(2000)]


def test_deterministic_and_independent_of_membership_order() -> None:
    shuffled = WORKERS[:]
    random.Random(7).shuffle(shuffled)
    for chunk_id in IDS[:200]:
        first = place(chunk_id, WORKERS, 3)
        assert place(chunk_id, WORKERS, 3) == first
        assert place(chunk_id, shuffled, 3) == first
        assert place(chunk_id, iter(shuffled), 3) == first  # any iterable


@pytest.mark.parametrize("rf", [1, 2, 3, 5])
def test_returns_rf_distinct_members(rf: int) -> None:
    for chunk_id in IDS[:200]:
        targets = place(chunk_id, WORKERS, rf)
        assert len(targets) == rf
        assert len(set(targets)) == rf
        assert set(targets) <= set(WORKERS)


def test_rf_larger_than_cluster_returns_every_worker_once() -> None:
    targets = place(IDS[0], WORKERS[:2], 3)
    assert sorted(targets) == WORKERS[:2]
    assert place(IDS[0], [], 3) == []


def test_placement_is_prefix_of_ranking() -> None:
    for chunk_id in IDS[:100]:
        ranking = rank_workers(chunk_id, WORKERS)
        assert sorted(ranking) == sorted(WORKERS)
        assert place(chunk_id, WORKERS, 3) == ranking[:3]
        assert place(chunk_id, WORKERS, 1) == ranking[:1]


def test_different_chunks_get_different_placements() -> None:
    distinct = {tuple(place(chunk_id, WORKERS, 3)) for chunk_id in IDS[:500]}
    assert len(distinct) > 100


def test_removing_a_non_target_worker_keeps_placement() -> None:
    rng = random.Random(1)
    for chunk_id in IDS[:500]:
        before = place(chunk_id, WORKERS, 3)
        gone = rng.choice([w for w in WORKERS if w not in before])
        remaining = [w for w in WORKERS if w != gone]
        assert place(chunk_id, remaining, 3) == before


def test_removing_a_target_worker_moves_only_its_replica() -> None:
    for chunk_id in IDS[:500]:
        ranking = rank_workers(chunk_id, WORKERS)
        before = ranking[:3]
        gone = before[1]
        after = place(chunk_id, [w for w in WORKERS if w != gone], 3)
        # The surviving targets stay; the next-ranked worker takes the slot.
        assert set(after) == (set(before) - {gone}) | {ranking[3]}


@pytest.mark.parametrize("rf", [1, 3])
def test_adding_a_worker_moves_about_rf_over_n_placements(rf: int) -> None:
    grown = [*WORKERS, "worker-new"]
    moved = 0
    for chunk_id in IDS:
        before = place(chunk_id, WORKERS, rf)
        after = place(chunk_id, grown, rf)
        if after != before:
            moved += 1
            # Only the newcomer enters; at most one old target leaves.
            assert "worker-new" in after
            assert len(set(before) - set(after)) == 1
        else:
            assert "worker-new" not in after
    expected = len(IDS) * rf / len(grown)  # 1/N of chunks per replica slot
    assert 0.6 * expected <= moved <= 1.4 * expected, (moved, expected)


@pytest.mark.parametrize("rf", [1, 3])
def test_load_is_balanced(rf: int) -> None:
    load = Counter(w for chunk_id in IDS for w in place(chunk_id, WORKERS, rf))
    assert set(load) == set(WORKERS)
    expected = len(IDS) * rf / len(WORKERS)
    for worker, count in load.items():
        assert 0.75 * expected <= count <= 1.25 * expected, (worker, count, expected)


def test_primary_is_balanced_too() -> None:
    primaries = Counter(place(chunk_id, WORKERS, 3)[0] for chunk_id in IDS)
    expected = len(IDS) / len(WORKERS)
    assert all(0.7 * expected <= n <= 1.3 * expected for n in primaries.values()), primaries


@pytest.mark.parametrize(("rf", "quorum"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_write_quorum(rf: int, quorum: int) -> None:
    assert write_quorum(rf) == quorum


@pytest.mark.parametrize("rf", [0, -1])
def test_write_quorum_rejects_non_positive(rf: int) -> None:
    with pytest.raises(ValueError):
        write_quorum(rf)
