"""Contribution sketches: the MinHash signature of a contribution's shingles, its LSH bands, and
the similarity two sketches estimate (docs/ai_precompiles.md, "Near duplicates").

The chain only compares sketches (:func:`band_keys`, :func:`similarity_bp`: pure integer code,
the same on every node); computing one from a blob (:func:`compute_sketch`) needs the bytes,
so it runs where the bytes are: in the contributor's CLI, which sends it with the contribution,
and in every node that holds the blob, which checks it (``ai_getContribution``'s
``sketchMatches``). The MinHash itself is rensa's ``RMinHash`` (bench/ai/near_duplicates.py
measures it against datasketch), imported only when a sketch is computed.
"""

from __future__ import annotations

import re

from eth_utils import keccak

#: MinHash permutations; each minimum is one big-endian uint32 of the sketch.
NUM_PERM = 64
#: LSH layout: BANDS bands of ROWS minima (BANDS * ROWS == NUM_PERM). A pair with Jaccard
#: similarity s shares at least one band with probability 1 - (1 - s**ROWS)**BANDS: 99.98 % at
#: s = 0.8, 64 % at s = 0.5, 4.9 % at s = 0.25.
BANDS, ROWS = 16, 4
#: Candidates the chain compares a new sketch with, most shared bands first (each costs a
#: sketch read, SKETCH_BYTES // 32 words).
CANDIDATES = 2
#: Bytes of a sketch: NUM_PERM minima of 4 bytes.
SKETCH_BYTES = NUM_PERM * 4
#: Seed of the MinHash permutations; changing it (or the library's algorithm version) changes
#: every sketch, so it is part of the protocol (SKETCH_VERSION names the pair).
SEED = 1
SKETCH_VERSION = "rensa-RMinHash-v2/seed1/perm64/shingle5"
#: rensa's ``RMinHash.ALGORITHM_VERSION`` the sketches are made with.
RENSA_ALGORITHM = 2
#: Shingle width in bytes, after normalisation.
SHINGLE = 5
#: Bytes of a blob that are shingled: a sketch's work is bounded whatever the datanet's size cap
#: (about 0.2 s for a full 256 KiB on one core; a node checks each blob once, see node/rpc/ai.py).
MAX_SHINGLED = 1 << 18

_SPACE = re.compile(rb"\s+")


def shingles(data: bytes) -> list[bytes]:
    """The protocol's shingles of ``data``: its first MAX_SHINGLED bytes, ASCII lower-cased,
    every run of whitespace made one space, ends stripped; then every SHINGLE-byte window
    (the whole text when shorter). Byte windows rather than words, so any data shingles, and
    a one-byte edit changes at most SHINGLE shingles."""
    text = _SPACE.sub(b" ", data[:MAX_SHINGLED].lower()).strip()
    if len(text) <= SHINGLE:
        return [text]
    return [text[i:i + SHINGLE] for i in range(len(text) - SHINGLE + 1)]


def compute_sketch(data: bytes) -> bytes:
    """The sketch of ``data``: NUM_PERM MinHash minima of its shingles, each a big-endian uint32."""
    from rensa import RMinHash

    if RMinHash.ALGORITHM_VERSION != RENSA_ALGORITHM:
        raise RuntimeError(f"rensa's MinHash algorithm is version {RMinHash.ALGORITHM_VERSION}, not "
                           f"{RENSA_ALGORITHM}: its sketches would not match the chain's ({SKETCH_VERSION})")
    m = RMinHash(num_perm=NUM_PERM, seed=SEED)
    m.update(shingles(data))
    return b"".join(int(v).to_bytes(4, "big") for v in m.digest())


def minima(sketch: bytes) -> list[bytes]:
    return [sketch[i:i + 4] for i in range(0, SKETCH_BYTES, 4)]


def band_keys(sketch: bytes) -> list[bytes]:
    """One 32-byte key per band: ``keccak256(bandIndex ++ its ROWS minima)``, so equal minima
    in different bands never share a bucket."""
    step = ROWS * 4
    return [bytes(keccak(bytes([b]) + sketch[b * step:(b + 1) * step])) for b in range(BANDS)]


def similarity_bp(a: bytes, b: bytes) -> int:
    """Estimated Jaccard similarity of the two sketched texts, in basis points: the share of
    positions whose minima are equal (an unbiased estimate; its standard error at 64
    permutations is sqrt(s(1-s)/64), 5 points at s = 0.8)."""
    equal = sum(1 for x, y in zip(minima(a), minima(b), strict=True) if x == y)
    return equal * 10_000 // NUM_PERM
