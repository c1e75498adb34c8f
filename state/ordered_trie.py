"""The root (and nodes) of a block's transaction, receipt or withdrawal trie, built in one pass.

Such a trie maps ``rlp(index)`` to each item's encoding, and all of it is known at once. py-evm
builds it by inserting the items one by one into a ``HexaryTrie``, which decodes, re-encodes
and re-hashes the path to the root for every insertion: at a few hundred transactions a block
that was a fifth of block building. Here the keys are sorted and every node is encoded and
hashed exactly once (geth's StackTrie does the same). The result, root and stored nodes, is
py-evm's to the byte: ``tests/unit/state/test_ordered_trie.py`` compares the two on random
inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak
from eth_typing import Hash32

#: A trie node as rlp encodes it: a list of byte strings and embedded (short) nodes.
Node = list[Any]


def _nibbles(key: bytes) -> bytes:
    """``key`` as one nibble (0..15) per byte."""
    out = bytearray()
    for b in key:
        out.append(b >> 4)
        out.append(b & 0x0F)
    return bytes(out)


def _hex_prefix(nibbles: bytes, leaf: bool) -> bytes:
    """The yellow paper's hex-prefix encoding of a node's key path."""
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        padded = bytes((flag + 1,)) + nibbles
    else:
        padded = bytes((flag, 0)) + nibbles
    return bytes(padded[i] << 4 | padded[i + 1] for i in range(0, len(padded), 2))


def ordered_trie_root_and_nodes(items: Sequence[bytes]) -> tuple[Hash32, dict[Hash32, bytes]]:
    """(root hash, hash -> encoded node for every node stored by hash) of the trie that maps
    ``rlp(i)`` to ``items[i]``: what py-evm's ``make_trie_root_and_nodes`` returns for the
    same encodings."""
    # An empty value is no entry (a HexaryTrie deletes the key it is set to).
    pairs = sorted((_nibbles(rlp.encode(i)), bytes(item)) for i, item in enumerate(items) if item)
    if not pairs:
        return BLANK_ROOT_HASH, {}
    nodes: dict[Hash32, bytes] = {}

    def reference(node: Node) -> Node | bytes:
        # A node whose encoding is shorter than a hash is embedded in its parent.
        encoded = rlp.encode(node)
        if len(encoded) < 32:
            return node
        digest = Hash32(keccak(encoded))
        nodes[digest] = encoded
        return digest

    def build(lo: int, hi: int, depth: int) -> Node:
        """The node of the sorted keys ``pairs[lo:hi]``, which share their first ``depth``
        nibbles."""
        if hi - lo == 1:
            key, value = pairs[lo]
            return [_hex_prefix(key[depth:], leaf=True), value]
        first, last = pairs[lo][0], pairs[hi - 1][0]
        shared = depth
        while shared < len(first) and shared < len(last) and first[shared] == last[shared]:
            shared += 1
        if shared > depth:
            return [_hex_prefix(first[depth:shared], leaf=False), reference(build(lo, hi, shared))]
        branch: Node = [b""] * 17
        i = lo
        if len(pairs[i][0]) == depth:  # a key that ends here sorts first; it is the value
            branch[16] = pairs[i][1]
            i += 1
        while i < hi:
            nibble = pairs[i][0][depth]
            j = i + 1
            while j < hi and pairs[j][0][depth] == nibble:
                j += 1
            branch[nibble] = reference(build(i, j, depth + 1))
            i = j
        return branch

    encoded_root = rlp.encode(build(0, len(pairs), 0))
    root = Hash32(keccak(encoded_root))
    nodes[root] = encoded_root
    return root, nodes
