"""Merkle trees over accepted contributions: leaf encoding, roots, proofs, verification.

Pure Python with no node state, so a script can check a proof without trusting the node:

- leaf  = keccak256(0x00 ++ abi.encode(uint256 datanetId, uint256 contributionId,
  address contributor, bytes32 contentHash, uint256 size, bytes32 metadataHash))
- node  = keccak256(0x01 ++ min(a, b) ++ max(a, b))   (sorted pair: proofs need no left/right bits)
- a level with an odd count carries its last node up unchanged (no duplication, so no
  CVE-2012-2459-style second tree with the same root).
- The 0x00/0x01 prefixes keep a leaf from ever being read as an inner node.

A version's root covers leaves in acceptance order: the first ``count`` accepted contributions.

The carry rule makes the root of ``n`` leaves a right fold of the roots of the perfect subtrees
(*peaks*) that ``n``'s binary digits cut the leaves into, largest first:
``root = node(P_1, node(P_2, ... node(P_k-1, P_k)))``. So the chain keeps one peak per level,
updated in O(log n) per accepted leaf (:func:`push_leaf`), and a version's root costs O(log n)
reads (:func:`root_from_peaks`) however many contributions a datanet holds.
"""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(datanet_id: int, contribution_id: int, contributor: bytes, content_hash: bytes,
              size: int, metadata_hash: bytes) -> bytes:
    """The leaf of one contribution (see module docstring)."""
    body = encode(["uint256", "uint256", "address", "bytes32", "uint256", "bytes32"],
                  [datanet_id, contribution_id, "0x" + bytes(contributor).hex(), content_hash,
                   size, metadata_hash])
    return keccak(LEAF_PREFIX + body)


def hash_pair(a: bytes, b: bytes) -> bytes:
    lo, hi = (a, b) if a <= b else (b, a)
    return keccak(NODE_PREFIX + lo + hi)


def merkle_root(leaves: list[bytes]) -> bytes:
    """Root of ``leaves``; the root of one leaf is the leaf itself."""
    if not leaves:
        raise ValueError("empty tree")
    level = list(leaves)
    while len(level) > 1:
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def push_leaf(peaks: dict[int, bytes], n: int, leaf: bytes) -> dict[int, bytes]:
    """Peaks to write when ``leaf`` becomes leaf number ``n`` (0-based) of a tree whose peaks
    (level -> root of a perfect subtree of ``2**level`` leaves) are read from ``peaks``."""
    node, level = leaf, 0
    while n >> level & 1:
        node = hash_pair(peaks[level], node)
        level += 1
    return {level: node}


def root_from_peaks(peaks: dict[int, bytes], n: int) -> bytes:
    """Root of ``n`` leaves from their peaks (the levels of ``n``'s set bits)."""
    if n <= 0:
        raise ValueError("empty tree")
    levels = [lv for lv in range(n.bit_length()) if n >> lv & 1]
    node = peaks[levels[0]]
    for lv in levels[1:]:
        node = hash_pair(peaks[lv], node)
    return node


def merkle_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf ``index`` up to the root (levels where it is carried are skipped)."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    proof: list[bytes] = []
    level, i = list(leaves), index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        nxt = [hash_pair(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, i = nxt, i // 2
    return proof


def verify_proof(leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """True when ``proof`` links ``leaf`` to ``root``."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
