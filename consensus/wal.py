"""The write-ahead log of a validator's own signed messages, and the signer that guards it.

Rule (docs/consensus.md §6): a signed vote or proposal is appended and fsynced *before* it is
returned for sending, and the signer never signs a second, different message for one
``(height, round, step)``. Killed at any instant, a validator restarts from its WAL knowing
everything it may have sent, so it cannot double-sign, and the driver restarts locked where it
was locked.

A record is ``length (4 bytes, big-endian) || crc32 (4 bytes) || payload``; the payload is
``rlp([kind, body])``. Replay reads records until the first truncated or corrupt one and cuts
the file there: that record's fsync never returned, so its message was never sent.
"""

from __future__ import annotations

import enum
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import rlp
from eth_keys import keys

from consensus.messages import MessageError, Proposal, Vote, VoteType

#: Largest record payload accepted on replay (a vote or proposal is under 256 bytes).
MAX_RECORD_BYTES = 1024
#: The log is rewritten without decided heights once it grows past this size (not at every
#: height: a rewrite costs two fsyncs, and fsync is most of a validator's time per height).
ROTATE_BYTES = 64 * 1024
_HEADER = struct.Struct(">II")


class WALError(RuntimeError):
    """The WAL cannot be written; the validator must stop signing."""


class DoubleSignRefused(RuntimeError):
    """Asked to sign a second, different message for a height/round/step already signed: a bug
    or a replayed state would have made us equivocate, and the signer refuses."""


class RecordKind(enum.IntEnum):
    VOTE = 1
    """Our own signed vote."""
    PROPOSAL = 2
    """Our own signed proposal."""
    HEIGHT = 3
    """A height was decided and committed: older records are no longer needed."""


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    body: bytes

    def encode(self) -> bytes:
        payload = rlp.encode([int(self.kind), self.body])
        return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _read_records(data: bytes) -> tuple[list[Record], int]:
    """The records of ``data`` up to the first bad one, and the offset where good data ends."""
    out: list[Record] = []
    pos = 0
    while pos + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        if length > MAX_RECORD_BYTES or start + length > len(data):
            break
        payload = data[start:start + length]
        if zlib.crc32(payload) != crc:
            break
        try:
            kind, body = rlp.decode(payload)
            record = Record(RecordKind(int.from_bytes(kind, "big")), body)
        except (rlp.exceptions.DecodingError, ValueError, TypeError):
            break
        out.append(record)
        pos = start + length
    return out, pos


class WAL:
    """An append-only, fsynced log file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = self.path.read_bytes() if self.path.exists() else b""
        self.records, good = _read_records(data)
        self.truncated = len(data) - good
        """Bytes of a torn or corrupt tail cut off on open."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if self.truncated:
            os.ftruncate(self._fd, good)
            os.fsync(self._fd)
        os.lseek(self._fd, good, os.SEEK_SET)
        _fsync_dir(self.path.parent)
        self.size = good
        """Bytes in the log file."""

    def append(self, record: Record, sync: bool = True) -> None:
        """Write ``record`` and fsync it; only then is the message it holds allowed out.

        ``sync=False`` is for records whose loss is harmless (a decided-height marker: the block
        database is the truth for heights); the next synced append makes it durable too.
        """
        raw = record.encode()
        try:
            written = os.write(self._fd, raw)
            if written != len(raw):
                raise WALError(f"short write to {self.path}")
            if sync:
                os.fsync(self._fd)
        except OSError as e:
            raise WALError(f"cannot write {self.path}: {e}") from e
        self.records.append(record)
        self.size += len(raw)

    def rotate(self, keep: list[Record]) -> None:
        """Replace the log with ``keep`` (written, fsynced, then renamed over it)."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(r.encode() for r in keep))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR)
        self.size = os.lseek(self._fd, 0, os.SEEK_END)
        self.records = list(keep)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GuardedSigner:
    """The validator's key behind the WAL: signs each (height, round, step) at most one way."""

    def __init__(self, private_key: bytes, chain_id: int, wal: WAL) -> None:
        self._key = keys.PrivateKey(private_key)
        self.address = bytes(self._key.public_key.to_canonical_address())
        self.chain_id = chain_id
        self.wal = wal
        self.decided_height = 0
        """Highest height recorded as decided: nothing at or below it is ever signed again."""
        self._signed: dict[tuple[int, int, int], Vote | Proposal] = {}
        for record in wal.records:
            self._replay(record)

    def _replay(self, record: Record) -> None:
        if record.kind == RecordKind.HEIGHT:
            self.decided_height = max(self.decided_height, int.from_bytes(record.body, "big"))
            return
        try:
            msg: Vote | Proposal = (Vote.decode(record.body) if record.kind == RecordKind.VOTE
                                    else Proposal.decode(record.body))
        except MessageError:
            return
        self._signed[_key_of(msg)] = msg

    def own_messages(self, height: int) -> list[Vote | Proposal]:
        """What we signed at ``height`` (for :meth:`Driver.start` after a restart)."""
        return [m for (h, _, _), m in sorted(self._signed.items(), key=lambda kv: kv[0]) if h == height]

    def sign_vote(self, vote: Vote) -> Vote:
        """``vote`` signed, logged and fsynced; the same vote again if it was signed before."""
        held = self._check(vote, vote.block_hash)
        if held is not None:
            assert isinstance(held, Vote)
            return held
        signed = vote.signed(self.chain_id, self._key.to_bytes())
        self.wal.append(Record(RecordKind.VOTE, signed.encode()))
        self._signed[_key_of(signed)] = signed
        return signed

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        """``proposal`` signed, logged and fsynced (the same one again if asked twice)."""
        held = self._check(proposal, proposal.block_hash)
        if held is not None:
            assert isinstance(held, Proposal)
            if held.pol_round != proposal.pol_round:
                raise DoubleSignRefused("a different proposal was signed for this height and round")
            return held
        signed = proposal.signed(self.chain_id, self._key.to_bytes())
        self.wal.append(Record(RecordKind.PROPOSAL, signed.encode()))
        self._signed[_key_of(signed)] = signed
        return signed

    def _check(self, msg: Vote | Proposal, block_hash: bytes) -> Vote | Proposal | None:
        signer = msg.validator if isinstance(msg, Vote) else msg.proposer
        if signer != self.address:
            raise DoubleSignRefused("asked to sign for another validator")
        if msg.height <= self.decided_height:
            raise DoubleSignRefused(f"height {msg.height} is already decided")
        held = self._signed.get(_key_of(msg))
        if held is not None and held.block_hash != block_hash:
            raise DoubleSignRefused(
                f"already signed another {_key_of(msg)[2]} for height {msg.height} round {msg.round}")
        return held

    def mark_decided(self, height: int) -> None:
        """Record that ``height`` is committed (after its block is in the database), and drop
        what is no longer needed."""
        self.wal.append(Record(RecordKind.HEIGHT, height.to_bytes(8, "big")), sync=False)
        self.decided_height = max(self.decided_height, height)
        self._signed = {k: m for k, m in self._signed.items() if k[0] > height}
        if self.wal.size < ROTATE_BYTES:
            return
        keep = [Record(RecordKind.HEIGHT, self.decided_height.to_bytes(8, "big"))]
        keep += [Record(RecordKind.VOTE if isinstance(m, Vote) else RecordKind.PROPOSAL, m.encode())
                 for _, m in sorted(self._signed.items(), key=lambda kv: kv[0])]
        self.wal.rotate(keep)


def _key_of(msg: Vote | Proposal) -> tuple[int, int, int]:
    return (msg.height, msg.round, int(msg.type) if isinstance(msg, Vote) else int(VoteType.PROPOSAL))
