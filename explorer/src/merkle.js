// A contribution's Merkle proof, checked in the page: the leaf is hashed here from the
// contribution's own fields and folded with the proof's siblings, so the page trusts the node
// for the data but not for the arithmetic. The rule is ai_precompiles/merkle.py's:
//   leaf = keccak256(0x00 ++ abi.encode(uint256 datanetId, uint256 contributionId, address contributor,
//                                        bytes32 contentHash, uint256 size, bytes32 metadataHash))
//   node = keccak256(0x01 ++ min(a, b) ++ max(a, b))

import { concatHex, encodeAbiParameters, keccak256 } from 'viem';

const LEAF_PREFIX = '0x00';
const NODE_PREFIX = '0x01';

/** The leaf of a contribution as ai_getContribution answers it. */
export function leafHash(c) {
  const body = encodeAbiParameters(
    [{ type: 'uint256' }, { type: 'uint256' }, { type: 'address' }, { type: 'bytes32' }, { type: 'uint256' }, { type: 'bytes32' }],
    [BigInt(c.datanetId), BigInt(c.id), c.contributor, c.contentHash, BigInt(c.size), c.metadataHash],
  );
  return keccak256(concatHex([LEAF_PREFIX, body]));
}

/** The parent of two nodes: sorted pair, so a proof needs no left/right bits. */
export function hashPair(a, b) {
  const [lo, hi] = a.toLowerCase() <= b.toLowerCase() ? [a, b] : [b, a];
  return keccak256(concatHex([NODE_PREFIX, lo, hi]));
}

/**
 * Fold `proof` from `leaf` up; returns every step (the running node after each sibling) and
 * whether the last equals `root`.
 */
export function verifyProof(leaf, proof, root) {
  const steps = [];
  let node = leaf;
  for (const sibling of proof) {
    node = hashPair(node, sibling);
    steps.push(node);
  }
  return { steps, valid: node.toLowerCase() === root.toLowerCase() };
}
