"""The read memo's bookkeeping: tags, races with writes, bounds."""

from __future__ import annotations

from echofs.metadata.read_memo import ReadMemo

A, B = ("file", "a"), ("file", "b")


def test_invalidating_a_tag_drops_only_its_answers():
    memo = ReadMemo()
    memo.put("ka", memo.generation, "answer a", (A,))
    memo.put("kb", memo.generation, "answer b", (B,))
    memo.invalidate([A])
    assert memo.get("ka") == (False, None)
    assert memo.get("kb") == (True, "answer b")
    memo.invalidate_all()
    assert memo.get("kb") == (False, None)
    assert len(memo) == 0


def test_an_answer_whose_query_overlapped_a_write_is_not_kept():
    memo = ReadMemo()
    began = memo.generation
    memo.invalidate([A])  # a write to A finished while the query ran
    memo.put("ka", began, "maybe old", (A,))
    memo.put("kb", began, "unaffected", (B,))
    assert memo.get("ka") == (False, None)
    assert memo.get("kb") == (True, "unaffected")
    began = memo.generation
    memo.invalidate_all()
    memo.put("kb", began, "maybe old", (B,))
    assert memo.get("kb") == (False, None)


def test_the_oldest_answers_go_first_when_full():
    memo = ReadMemo(max_entries=2)
    for key in ("k1", "k2"):
        memo.put(key, memo.generation, key, (("file", key),))
    assert memo.get("k1")[0]  # k1 is now the most recently used
    memo.put("k3", memo.generation, "k3", (("file", "k3"),))
    assert [memo.get(k)[0] for k in ("k1", "k2", "k3")] == [True, False, True]
    memo.invalidate([("file", "k2")])  # no answer left under it: nothing breaks
    assert len(memo) == 2
