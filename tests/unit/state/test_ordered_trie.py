"""The one-pass transaction/receipt trie gives py-evm's root and stored nodes, byte for byte, on
random inputs of every size a block may have (empty, one item, embedded short nodes, 128+
items whose keys take two bytes, thousands)."""

from __future__ import annotations

import random

import pytest
from eth.db.trie import _make_trie_root_and_nodes

from state.ordered_trie import ordered_trie_root_and_nodes


def random_items(rng: random.Random, n: int) -> tuple[bytes, ...]:
    # Short items make embedded nodes; long ones, hashed nodes.
    return tuple(rng.randbytes(rng.choice((0, 1, 3, 10, 31, 32, 33, 120, 500))) for _ in range(n))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 15, 16, 17, 127, 128, 129, 255, 256, 300, 1000, 4100])
def test_matches_py_evm_at_every_size(n: int) -> None:
    rng = random.Random(n)
    for _ in range(3 if n < 1000 else 1):
        items = random_items(rng, n)
        assert ordered_trie_root_and_nodes(items) == _make_trie_root_and_nodes.__wrapped__(items)


def test_matches_py_evm_on_random_blocks() -> None:
    rng = random.Random(20)
    for _ in range(200):
        items = random_items(rng, rng.randrange(0, 200))
        assert ordered_trie_root_and_nodes(items) == _make_trie_root_and_nodes.__wrapped__(items)


def test_identical_items_still_make_distinct_leaves() -> None:
    items = (b"\x01" * 40,) * 50 + (b"",) * 3
    assert ordered_trie_root_and_nodes(items) == _make_trie_root_and_nodes.__wrapped__(items)
