"""The sort-key text of long names (``long_keys``), checked exhaustively on
short texts with a small bound: keys sort as their texts do except between
long texts with the same cut, stay within their size, and a prefix's key
prefix finds exactly the texts that start with it."""

from __future__ import annotations

import itertools
import random

from echofs.metadata.dynamodb.long_keys import LONG, cut, key_prefix, key_text

# One character of each UTF-8 width (U+10FFFF among them: a name may hold it).
ALPHABET = ["a", "z", "é", "中", "\uffff", "𝄞", LONG]
BOUND = 6


def texts() -> list[str]:
    found = [""]
    for size in range(1, 4):
        found += ["".join(t) for t in itertools.product(ALPHABET, repeat=size)]
    rng = random.Random(7)  # longer ones, past the bound, sampled
    found += ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(4, 9)))
              for _ in range(1500)]
    return found


def utf8(text: str) -> bytes:
    return text.encode()


def test_keys_sort_as_their_texts_but_within_a_cut() -> None:
    every = sorted(set(texts()), key=utf8)
    keyed = [(key_text(t, BOUND), t) for t in every]
    for (key1, text1), (key2, text2) in itertools.combinations(keyed, 2):
        same_cut = (len(utf8(text1)) > BOUND and len(utf8(text2)) > BOUND
                    and cut(text1, BOUND) == cut(text2, BOUND))
        if not same_cut:
            assert utf8(key1) < utf8(key2), (text1, text2)  # every is in byte order
        assert key1 != key2


def test_keys_stay_within_their_bound() -> None:
    for text in texts():
        key = key_text(text, BOUND)
        assert len(utf8(key)) <= BOUND + 4 + 32
        assert (key == text) == (len(utf8(text)) <= BOUND)


def test_a_key_prefix_finds_the_texts_that_start_with_it() -> None:
    every = set(texts())
    for prefix in ["a", "é中", "aaaaa", "aaaaaé", "中中", "中中a", "aé中𝄞z"]:
        keyed, filtered = key_prefix(prefix, BOUND)
        assert filtered == (len(utf8(prefix)) > BOUND)
        for text in every:
            if text.startswith(prefix):
                assert key_text(text, BOUND).startswith(keyed), (prefix, text)
            elif not filtered:
                assert not key_text(text, BOUND).startswith(keyed), (prefix, text)
