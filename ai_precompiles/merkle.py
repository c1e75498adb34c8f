"""Merkle trees over accepted contributions: leaf encoding, roots, proofs, verification.

Pure Python with no node state, so a script can check a proof without trusting the node:

- leaf  = keccak256(0x00 ++ abi.encode(uint256 datanetId, uint256 contributionId,
  address contributor, bytes32 contentHash, uint256 size, bytes32 metadataHash))
- node  = keccak256(0x01 ++ min(a, b) ++ max(a, b))   (sorted pair: proofs need no left/right bits)
- a level with an odd count carries its last node up unchanged (no duplication, so no
  CVE-2012-2459-style second tree with the same root).
- The 0x00/0x01 prefixes keep a leaf from ever being read as an inner node.

A version's root covers leaves in acceptance order: the first ``count`` accepted contributions.
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
