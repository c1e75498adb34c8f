"""Attacks on the blob upload of a real node, made over JSON-RPC from several client
addresses (127.0.0.2 is the attacker, 127.0.0.1 the honest uploader): overlapping chunks,
begin-only lockout, touching another client's upload, finishing with a gap. Each fails
with a clear error, the node stays up, and an honest upload works throughout."""


import pytest
from eth_hash.auto import keccak

from node.blobstore import MAX_BLOB_SIZE, MAX_CLIENT_UPLOADS, MAX_UPLOADS
from tests.support.procs import rpc, start_ailedger

pytestmark = [pytest.mark.slow]
MiB = 1024 * 1024
ATTACKER = "127.0.0.2"
HONEST = "127.0.0.1"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    proc = start_ailedger([], tmp_path_factory.mktemp("blob-attacks"))
    yield proc
    proc.kill()


def call(node, source, method, *params):
    """One JSON-RPC call from the local address ``source``; returns the whole response."""
    return rpc(node.url, method, list(params), timeout=60, source=source)


def ok(node, source, method, *params):
    answer = call(node, source, method, *params)
    assert "result" in answer, answer
    return answer["result"]


def error(node, source, method, *params):
    answer = call(node, source, method, *params)
    assert "error" in answer, answer
    return answer["error"]["message"]


def honest_upload(node, data, chunk=MiB):
    uid = ok(node, HONEST, "ai_beginBlob", hex(len(data)), "0x" + keccak(data).hex())
    for offset in range(0, len(data), chunk):
        ok(node, HONEST, "ai_putBlobChunk", uid, hex(offset), "0x" + data[offset : offset + chunk].hex())
    result = ok(node, HONEST, "ai_finishBlob", uid)
    assert result == {"hash": "0x" + keccak(data).hex(), "size": hex(len(data))}
    got = b""
    while len(got) < len(data):  # one answer carries at most 2 MiB
        got += bytes.fromhex(ok(node, HONEST, "ai_getBlob", result["hash"], hex(len(got)))["data"][2:])
    assert got == data


def test_overlapping_chunks_cannot_hold_more_than_the_announced_size(node):
    uid = ok(node, ATTACKER, "ai_beginBlob", hex(4 * MiB), "0x" + "11" * 32)
    first = "0x" + (b"a" * MiB).hex()
    assert ok(node, ATTACKER, "ai_putBlobChunk", uid, "0x0", first) == hex(MiB)
    # The old attack: the same offsets again and again, each stored anew.
    for offset in ("0x0", hex(MiB // 2), hex(MiB - 1)):
        assert "overlaps bytes already received" in error(node, ATTACKER, "ai_putBlobChunk", uid, offset, "0x" + (b"b" * MiB).hex())
    assert "overruns the announced size" in error(node, ATTACKER, "ai_putBlobChunk", uid, hex(4 * MiB - 1), "0x6262")
    assert ok(node, ATTACKER, "ai_putBlobChunk", uid, "0x0", first) == hex(MiB)  # an identical retry adds nothing
    assert ok(node, ATTACKER, "ai_putBlobChunk", uid, hex(MiB), "0x" + (b"c" * MiB).hex()) == hex(2 * MiB)
    assert ok(node, ATTACKER, "ai_abortBlob", uid) is True
    honest_upload(node, bytes(range(256)) * (3 * MiB // 256))


def test_announced_sizes_reserve_nothing_and_a_client_has_a_cap(node):
    # The old attack: four begins of the largest size, no data, locked every uploader out.
    ids = [ok(node, ATTACKER, "ai_beginBlob", hex(MAX_BLOB_SIZE), "0x" + "22" * 32) for _ in range(MAX_CLIENT_UPLOADS)]
    assert "too many unfinished uploads from this client" in error(
        node, ATTACKER, "ai_beginBlob", hex(MAX_BLOB_SIZE), "0x" + "22" * 32)
    assert "exceeds the limit" in error(node, ATTACKER, "ai_beginBlob", hex(MAX_BLOB_SIZE + 1), "0x" + "22" * 32)
    honest_upload(node, b"honest bytes " * 200_000)
    for uid in ids:
        assert ok(node, ATTACKER, "ai_abortBlob", uid) is True
    again = ok(node, ATTACKER, "ai_beginBlob", hex(10), "0x" + "22" * 32)
    assert ok(node, ATTACKER, "ai_abortBlob", again) is True


def test_an_upload_belongs_to_the_client_that_began_it(node):
    data = b"mine, not yours" * 1000
    uid = ok(node, HONEST, "ai_beginBlob", hex(len(data)), "0x" + keccak(data).hex())
    assert "unknown upload" in error(node, ATTACKER, "ai_putBlobChunk", uid, "0x0", "0x" + data.hex())
    assert "unknown upload" in error(node, ATTACKER, "ai_finishBlob", uid)
    assert ok(node, ATTACKER, "ai_abortBlob", uid) is False
    ok(node, HONEST, "ai_putBlobChunk", uid, "0x0", "0x" + data.hex())
    assert ok(node, HONEST, "ai_finishBlob", uid)["hash"] == "0x" + keccak(data).hex()


def test_finishing_with_a_missing_chunk_is_an_error_that_loses_nothing(node):
    data = bytes(range(256)) * (2 * MiB // 256) + b"tail"
    digest = "0x" + keccak(data).hex()
    uid = ok(node, HONEST, "ai_beginBlob", hex(len(data)), digest)
    ok(node, HONEST, "ai_putBlobChunk", uid, "0x0", "0x" + data[:MiB].hex())
    ok(node, HONEST, "ai_putBlobChunk", uid, hex(2 * MiB), "0x" + data[2 * MiB :].hex())
    message = error(node, HONEST, "ai_finishBlob", uid)
    assert f"upload incomplete: {MiB + 4} of {len(data)} bytes received; missing bytes from offset {MiB}" in message
    assert rpc(node.url, "ai_getBlob", [digest])["error"]["message"].startswith("unknown blob")
    ok(node, HONEST, "ai_putBlobChunk", uid, hex(MiB), "0x" + data[MiB : 2 * MiB].hex())
    assert ok(node, HONEST, "ai_finishBlob", uid)["hash"] == digest
    assert ok(node, HONEST, "ai_getBlob", digest, hex(2 * MiB))["data"] == "0x" + b"tail".hex()
    assert "result" in rpc(node.url, "eth_blockNumber")


def test_many_clients_filling_the_node_cannot_lock_a_newcomer_out(node):
    # Sixteen attacker addresses, each at its own cap, fill the node's upload table.
    attackers = [f"127.0.0.{10 + i}" for i in range(MAX_UPLOADS // MAX_CLIENT_UPLOADS)]
    for source in attackers:
        for _ in range(MAX_CLIENT_UPLOADS):
            ok(node, source, "ai_beginBlob", hex(MAX_BLOB_SIZE), "0x" + "33" * 32)
    # The newcomer takes the place of the most idle upload of a client holding the most.
    data = b"newcomer" * 300_000
    uid = ok(node, HONEST, "ai_beginBlob", hex(len(data)), "0x" + keccak(data).hex())
    # The table is full again, and an attacker already holding the most gets nothing more.
    assert "too many unfinished uploads" in error(
        node, attackers[0], "ai_beginBlob", hex(10), "0x" + "33" * 32)
    for offset in range(0, len(data), MiB):
        ok(node, HONEST, "ai_putBlobChunk", uid, hex(offset), "0x" + data[offset : offset + MiB].hex())
    assert ok(node, HONEST, "ai_finishBlob", uid)["hash"] == "0x" + keccak(data).hex()
