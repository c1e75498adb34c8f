"""The bytes on the wire: length-prefixed frames with a size cap, and the RLP messages of
each protocol (status, blocks by range, blobs by hash).

Every decoder here takes bytes from a stranger: it checks sizes before it allocates and
raises :class:`WireError` (never anything else) on bad input, so the caller can score the
peer that sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import rlp

#: Largest frame on any request/response stream. py-libp2p's own ``read_exactly`` gives
#: up after 100 partial reads (~6.5 MB), and 1 MiB keeps one peer's cost bounded.
MAX_FRAME = 1024 * 1024
#: Most blocks one blocks-by-range request may ask for.
MAX_BLOCKS_PER_REQUEST = 64
#: Largest request frame (a request is a few integers and hashes).
MAX_REQUEST = 256
#: Protocol ids: one handler per protocol, versioned.
STATUS_PROTOCOL = "/ailedger/status/1"
BLOCKS_PROTOCOL = "/ailedger/blocks-by-range/1"
BLOBS_PROTOCOL = "/ailedger/blob-by-hash/1"
#: Consensus frames between validators, over one long-lived stream per direction
#: (``p2p.links.StreamLinks``); frames of at most :data:`MAX_FRAME`, each one engine message
#: (``consensus.engine.encode_message``).
CONSENSUS_PROTOCOL = "/ailedger/consensus/1"
WIRE_VERSION = 1


class WireError(ValueError):
    """A peer sent bytes that do not decode to a valid message of the protocol."""


class StreamEnded(EOFError):
    """The stream ended cleanly, on a frame boundary, before the message: the peer went away.
    Never misbehaviour (a peer resuming from SIGSTOP ends its stale streams this way); a stream
    that ends inside a frame is truncated bytes, a :class:`WireError`."""


class Readable(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...


def encode_frame(payload: bytes) -> bytes:
    """``payload`` behind its unsigned-varint length."""
    if len(payload) > MAX_FRAME:
        raise WireError(f"frame of {len(payload)} bytes exceeds {MAX_FRAME}")
    n = len(payload)
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    return bytes(out) + payload


class FrameReader:
    """Reads frames from a stream whose reads return arbitrary chunks (writes coalesce).

    A frame longer than ``limit`` or a varint longer than 4 bytes is a :class:`WireError`
    before any of its body is buffered.
    """

    def __init__(self, stream: Readable, limit: int = MAX_FRAME) -> None:
        self.stream = stream
        self.limit = limit
        self.buffer = bytearray()
        self.eof = False

    async def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = await self.stream.read(MAX_FRAME)
        except EOFError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def _parse(self) -> bytes | None:
        n = shift = pos = 0
        while True:
            if pos >= len(self.buffer):
                return None
            if pos >= 4:
                raise WireError("frame length varint too long")
            b = self.buffer[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if n > self.limit:
            raise WireError(f"frame of {n} bytes exceeds the limit of {self.limit}")
        if len(self.buffer) - pos < n:
            return None
        frame = bytes(self.buffer[pos : pos + n])
        del self.buffer[: pos + n]
        return frame

    async def next(self) -> bytes | None:
        """The next frame, or None at a clean end of stream."""
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            if not await self._fill():
                if self.buffer:
                    raise WireError("stream ended inside a frame")
                return None

    async def one(self) -> bytes:
        """The one message of a request or answer; :class:`StreamEnded` if the stream ends first."""
        frame = await self.next()
        if frame is None:
            raise StreamEnded("stream ended before the message")
        return frame


def _decode_list(raw: bytes, length: int, what: str) -> list[Any]:
    try:
        items = rlp.decode(raw)
    except Exception as e:
        raise WireError(f"{what}: undecodable rlp ({e})") from None
    if not isinstance(items, list) or len(items) != length:
        raise WireError(f"{what}: expected a list of {length} items")
    return items


def _int(item: Any, what: str, max_bytes: int = 8) -> int:
    if not isinstance(item, bytes) or len(item) > max_bytes or item[:1] == b"\x00":
        raise WireError(f"{what}: not a canonical integer")
    return int.from_bytes(item, "big")


def _hash(item: Any, what: str) -> bytes:
    if not isinstance(item, bytes) or len(item) != 32:
        raise WireError(f"{what}: not a 32-byte hash")
    return item


@dataclass(frozen=True)
class Status:
    """What two peers tell each other on connect, to check they follow the same chain."""

    chain_id: int
    """EIP-155 chain id."""
    genesis_hash: bytes
    """Hash of block 0: two chains with one chain id but different genesis never mix."""
    head_number: int
    """Number of the sender's head block."""
    head_hash: bytes
    """Hash of the sender's head block."""

    def encode(self) -> bytes:
        return rlp.encode([WIRE_VERSION, self.chain_id, self.genesis_hash, self.head_number, self.head_hash])

    @classmethod
    def decode(cls, raw: bytes) -> Status:
        version, chain_id, genesis_hash, number, head_hash = _decode_list(raw, 5, "status")
        if _int(version, "status version") != WIRE_VERSION:
            raise WireError("status: unsupported wire version")
        return cls(
            _int(chain_id, "status chain id"), _hash(genesis_hash, "status genesis"),
            _int(number, "status head number"), _hash(head_hash, "status head hash"),
        )


@dataclass(frozen=True)
class BlocksRequest:
    """Ask for ``count`` consecutive canonical blocks from ``start``, each with its commit."""

    start: int
    """First block number."""
    count: int
    """How many blocks, at most :data:`MAX_BLOCKS_PER_REQUEST`."""

    def encode(self) -> bytes:
        return rlp.encode([self.start, self.count])

    @classmethod
    def decode(cls, raw: bytes) -> BlocksRequest:
        start, count = _decode_list(raw, 2, "blocks request")
        request = cls(_int(start, "start"), _int(count, "count"))
        if not 0 < request.count <= MAX_BLOCKS_PER_REQUEST:
            raise WireError(f"blocks request: count must be 1..{MAX_BLOCKS_PER_REQUEST}")
        return request


@dataclass(frozen=True)
class BlockWithCommit:
    """A block (RLP) and the encoded consensus commit that makes it final."""

    block: bytes
    """The block's RLP encoding (header, transactions, uncles, withdrawals)."""
    commit: bytes
    """The encoded :class:`consensus.Commit` stored beside the block."""

    def encode(self) -> bytes:
        return rlp.encode([self.block, self.commit])

    @classmethod
    def decode(cls, raw: bytes) -> BlockWithCommit:
        block, commit = _decode_list(raw, 2, "block")
        if not isinstance(block, bytes) or not isinstance(commit, bytes):
            raise WireError("block: block and commit must be byte strings")
        return cls(block, commit)


@dataclass(frozen=True)
class BlobRequest:
    """Ask for the blob whose keccak-256 is ``content_hash``."""

    content_hash: bytes
    """keccak-256 of the whole blob."""

    def encode(self) -> bytes:
        return rlp.encode([self.content_hash])

    @classmethod
    def decode(cls, raw: bytes) -> BlobRequest:
        (content_hash,) = _decode_list(raw, 1, "blob request")
        return cls(_hash(content_hash, "blob request"))


#: First byte of a gossip message that carries several transactions: no transaction starts with
#: it (a typed one starts with its type, 0x01-0x7f; a legacy one with an RLP list, >= 0xc0).
TX_BATCH_PREFIX = b"\x00"
#: Most transactions in one gossip message.
MAX_TX_BATCH = 1000


def encode_tx_batch(raws: list[bytes]) -> bytes:
    """Several raw transactions as one gossip message (a single one stays as it is)."""
    if len(raws) == 1:
        return raws[0]
    return TX_BATCH_PREFIX + bytes(rlp.encode(raws))


def decode_tx_batch(raw: bytes) -> list[bytes]:
    """The raw transactions of a gossip message (one, or a batch)."""
    if not raw.startswith(TX_BATCH_PREFIX):
        return [raw]
    try:
        items = rlp.decode(raw[1:])
    except Exception as e:
        raise WireError(f"transaction batch: undecodable rlp ({e})") from None
    if not isinstance(items, list) or not 1 < len(items) <= MAX_TX_BATCH or not all(
            isinstance(i, bytes) and i for i in items):
        raise WireError(f"transaction batch: expected 2..{MAX_TX_BATCH} non-empty byte strings")
    return items


def encode_size(size: int) -> bytes:
    return rlp.encode(size)


def decode_size(raw: bytes, limit: int) -> int:
    try:
        item = rlp.decode(raw)
    except Exception as e:
        raise WireError(f"blob size: undecodable rlp ({e})") from None
    size = _int(item, "blob size")
    if size > limit:
        raise WireError(f"blob of {size} bytes exceeds the limit of {limit}")
    return size
