"""Frames and messages of the p2p wire: round trips, size caps, and typed errors on garbage."""

import pytest
import rlp
import trio

from p2p.wire import (
    MAX_FRAME,
    BlobRequest,
    BlocksRequest,
    BlockWithCommit,
    FrameReader,
    Status,
    WireError,
    decode_size,
    encode_frame,
    encode_size,
)


class Chunks:
    """A stream whose reads return the bytes in arbitrary pieces, as libp2p's do."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece = data, piece

    async def read(self, n=None):
        out, self.data = self.data[: self.piece], self.data[self.piece :]
        return out


def frames(data: bytes, piece: int, limit: int = MAX_FRAME) -> list[bytes]:
    async def collect():
        reader = FrameReader(Chunks(data, piece), limit)
        out = []
        while (f := await reader.next()) is not None:
            out.append(f)
        return out

    return trio.run(collect)


@pytest.mark.parametrize("piece", [1, 3, 1000, 10**7])
def test_frames_survive_any_chunking(piece):
    payloads = [b"", b"a", b"x" * 127, b"y" * 128, b"z" * 70000]
    assert frames(b"".join(encode_frame(p) for p in payloads), piece) == payloads


def test_frame_caps():
    with pytest.raises(WireError):
        encode_frame(b"x" * (MAX_FRAME + 1))
    with pytest.raises(WireError, match="exceeds the limit"):
        frames(encode_frame(b"x" * 300), 1000, limit=256)
    with pytest.raises(WireError, match="varint"):
        frames(b"\xff\xff\xff\xff\xff\x01", 10)
    with pytest.raises(WireError, match="inside a frame"):
        frames(encode_frame(b"abc")[:-1], 10)


def test_messages_round_trip():
    status = Status(31416, b"\x01" * 32, 7, b"\x02" * 32)
    assert Status.decode(status.encode()) == status
    assert BlocksRequest.decode(BlocksRequest(5, 64).encode()) == BlocksRequest(5, 64)
    item = BlockWithCommit(b"block", b"commit")
    assert BlockWithCommit.decode(item.encode()) == item
    assert BlobRequest.decode(BlobRequest(b"\x03" * 32).encode()).content_hash == b"\x03" * 32
    assert decode_size(encode_size(1000), 2000) == 1000


@pytest.mark.parametrize("raw", [b"", b"\xff\x00garbage", rlp.encode([1, 2]), rlp.encode([[1], 2, 3, 4, 5]),
                                 rlp.encode([1, 31416, b"short", 7, b"\x02" * 32]), rlp.encode([2, 1, b"\x01" * 32, 1, b"\x02" * 32]),
                                 rlp.encode([1, 1, b"\x01" * 32, b"\x00\x01", b"\x02" * 32])])
def test_bad_status_is_a_wire_error(raw):
    with pytest.raises(WireError):
        Status.decode(raw)


def test_bad_requests_are_wire_errors():
    with pytest.raises(WireError):
        BlocksRequest.decode(BlocksRequest(1, 65).encode())  # over the per-request cap
    with pytest.raises(WireError):
        BlocksRequest.decode(rlp.encode([1, 0]))
    with pytest.raises(WireError):
        BlobRequest.decode(rlp.encode([b"\x01" * 31]))
    with pytest.raises(WireError):
        BlockWithCommit.decode(rlp.encode([[b"a"], b"b"]))
    with pytest.raises(WireError):
        decode_size(encode_size(3000), 2000)


def test_transaction_batches_round_trip_and_bad_ones_are_wire_errors():
    import rlp

    from p2p.wire import MAX_TX_BATCH, decode_tx_batch, encode_tx_batch

    typed, legacy = b"\x02" + b"x" * 100, rlp.encode([b"a", b"b"])
    assert encode_tx_batch([typed]) == typed and decode_tx_batch(typed) == [typed]
    assert decode_tx_batch(legacy) == [legacy]
    assert decode_tx_batch(encode_tx_batch([typed, legacy, typed])) == [typed, legacy, typed]
    for bad in (b"\x00", b"\x00\xff", b"\x00" + rlp.encode([typed]), b"\x00" + rlp.encode([typed, b""]),
                b"\x00" + rlp.encode([typed, [b"x"]]), b"\x00" + rlp.encode([typed] * (MAX_TX_BATCH + 1))):
        with pytest.raises(WireError):
            decode_tx_batch(bad)


def test_a_stream_that_ends_is_not_a_wire_error():
    """A clean end of stream before the message is the peer going away (a SIGSTOPped validator
    resuming ends its stale streams so): StreamEnded, which nobody scores, never the WireError
    that bans."""
    from p2p.wire import StreamEnded

    async def main():
        with pytest.raises(StreamEnded):
            await FrameReader(Chunks(b"", 1)).one()
        assert await FrameReader(Chunks(b"", 1)).next() is None
        assert not issubclass(StreamEnded, WireError)

    trio.run(main)
