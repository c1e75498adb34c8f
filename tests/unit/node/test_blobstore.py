"""The blob store's chunked uploads against hostile callers: bytes counted as held, no
overlaps, quotas per client and per node, idle uploads expire, and nothing is lost by a
refused call."""

import pytest
from eth_hash.auto import keccak

from node import blobstore
from node.blobstore import BlobError, BlobStore
from state import MemoryStore

MiB = 1024 * 1024


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(clock):
    return BlobStore(MemoryStore(), clock=clock, idle_timeout=60)


def upload(store, data, client=None, chunk=MiB, order=None):
    uid = store.begin(len(data), keccak(data), client)
    offsets = list(range(0, len(data), chunk))
    for o in order(offsets) if order else offsets:
        store.put_chunk(uid, o, data[o : o + chunk], client)
    return store.finish(uid, client)


def test_chunks_in_any_order_and_retries_make_the_blob(store):
    data = bytes(range(256)) * (3 * MiB // 256 + 7)
    digest = upload(store, data, chunk=700_000, order=lambda o: list(reversed(o)))
    assert store.get(digest) == data and store.uploads == {}
    uid = store.begin(10, keccak(b"0123456789"))
    assert store.put_chunk(uid, 0, b"01234") == 5
    assert store.put_chunk(uid, 0, b"01234") == 5  # a retried chunk is harmless
    store.put_chunk(uid, 5, b"56789")
    assert store.get(store.finish(uid)) == b"0123456789"


def test_overlapping_chunks_cannot_hold_more_than_the_size(store):
    uid = store.begin(4 * MiB, b"\x01" * 32)
    store.put_chunk(uid, 0, b"a" * MiB)
    for offset, data in ((0, b"b" * MiB), (MiB - 1, b"x" * 2), (10, b"y"), (MiB // 2, b"z" * MiB)):
        with pytest.raises(BlobError, match="overlaps"):
            store.put_chunk(uid, offset, data)
    with pytest.raises(BlobError, match="overruns"):
        store.put_chunk(uid, 4 * MiB - 1, b"zz")
    with pytest.raises(BlobError, match="empty chunk"):
        store.put_chunk(uid, MiB, b"")
    assert store.uploads[uid].received == MiB == store.held


def test_a_missing_chunk_is_an_error_and_the_upload_survives_it(store):
    data = b"q" * (3 * MiB)
    uid = store.begin(len(data), keccak(data))
    store.put_chunk(uid, 0, data[:MiB])
    store.put_chunk(uid, 2 * MiB, data[2 * MiB :])
    with pytest.raises(BlobError, match=f"incomplete: {2 * MiB} of {3 * MiB} bytes received; missing bytes from offset {MiB}"):
        store.finish(uid)
    store.put_chunk(uid, MiB, data[MiB : 2 * MiB])
    assert store.get(store.finish(uid)) == data


def test_a_wrong_hash_is_refused_and_nothing_stored(store):
    uid = store.begin(3, b"\x00" * 32)
    store.put_chunk(uid, 0, b"abc")
    with pytest.raises(BlobError, match="content hash mismatch"):
        store.finish(uid)
    assert store.size(keccak(b"abc")) is None and store.uploads == {}


def test_announcing_a_size_reserves_nothing(store):
    # The old attack: four begins of 64 MiB locked out every other uploader.
    for _ in range(blobstore.MAX_CLIENT_UPLOADS):
        store.begin(blobstore.MAX_BLOB_SIZE, b"\x02" * 32, "10.0.0.1")
    assert store.held == 0
    assert upload(store, b"honest" * 1000, client="10.0.0.2")


def test_per_client_caps(store, monkeypatch):
    for _ in range(blobstore.MAX_CLIENT_UPLOADS):
        store.begin(MiB, b"\x03" * 32, "10.0.0.1")
    with pytest.raises(BlobError, match="too many unfinished uploads from this client"):
        store.begin(MiB, b"\x03" * 32, "10.0.0.1")
    monkeypatch.setattr(blobstore, "MAX_CLIENT_UPLOAD_BYTES", 2 * MiB)
    a, b, c = store.client_uploads("10.0.0.1")[:3]
    store.put_chunk(a, 0, b"x" * MiB, "10.0.0.1")
    store.put_chunk(b, 0, b"x" * MiB, "10.0.0.1")
    with pytest.raises(BlobError, match="this client's unfinished uploads would hold"):
        store.put_chunk(c, 0, b"x", "10.0.0.1")
    assert store.client_held("10.0.0.1") == 2 * MiB


def test_an_upload_belongs_to_its_client(store):
    uid = store.begin(3, keccak(b"abc"), "10.0.0.1")
    for call in (lambda: store.put_chunk(uid, 0, b"abc", "10.0.0.9"), lambda: store.finish(uid, "10.0.0.9")):
        with pytest.raises(BlobError, match="unknown upload"):
            call()
    assert store.abort(uid, "10.0.0.9") is False
    store.put_chunk(uid, 0, b"abc", "10.0.0.1")
    assert store.finish(uid, "10.0.0.1") == keccak(b"abc")


def test_idle_uploads_expire(store, clock):
    uid = store.begin(4, keccak(b"abcd"), "10.0.0.1")
    store.put_chunk(uid, 0, b"ab", "10.0.0.1")
    clock.now += 59
    store.put_chunk(uid, 2, b"c", "10.0.0.1")  # activity keeps it alive
    clock.now += 59
    assert store.expire() == []
    clock.now += 2
    assert store.expire() == [uid] and store.held == 0
    with pytest.raises(BlobError, match="unknown upload"):
        store.put_chunk(uid, 3, b"d", "10.0.0.1")


def test_a_full_node_makes_room_for_a_client_holding_less(store, clock, monkeypatch):
    monkeypatch.setattr(blobstore, "MAX_UPLOADS", 4)
    monkeypatch.setattr(blobstore, "MAX_UPLOAD_BYTES", 3 * MiB)
    hog = [store.begin(2 * MiB, b"\x04" * 32, "10.0.0.1") for _ in range(3)]
    clock.now += 1
    store.put_chunk(hog[0], 0, b"h" * MiB, "10.0.0.1")
    clock.now += 1
    store.put_chunk(hog[1], 0, b"h" * MiB, "10.0.0.1")
    other = store.begin(2 * MiB, b"\x05" * 32, "10.0.0.2")
    store.put_chunk(other, 0, b"o" * MiB, "10.0.0.2")
    # Four uploads, 3 MiB held: the node is full both ways.
    data = b"n" * MiB
    honest = store.begin(len(data), keccak(data), "10.0.0.3")  # the hog's most idle upload goes
    assert hog[2] not in store.uploads and len(store.uploads) == 4
    store.put_chunk(honest, 0, data, "10.0.0.3")  # the hog gives up bytes too
    assert hog[0] not in store.uploads and hog[1] in store.uploads and other in store.uploads
    assert store.finish(honest, "10.0.0.3") == keccak(data)
    # A client already holding the most gets no room from the others.
    store.begin(2 * MiB, b"\x06" * 32, "10.0.0.2")
    uid = store.begin(2 * MiB, b"\x06" * 32, "10.0.0.2")
    with pytest.raises(BlobError, match="node's limit"):
        store.put_chunk(uid, 0, b"o" * (2 * MiB), "10.0.0.2")
    assert store.uploads[other].received == MiB


def test_a_client_holding_nothing_always_gets_in_and_the_most_idle_upload_goes(store, clock):
    """Issue 19: 64 clients each holding one upload, kept alive by a byte a minute, filled the
    node; among equals nobody held "more", so a newcomer was refused."""
    ids = {}
    for i in range(blobstore.MAX_UPLOADS):
        clock.now += 0.25
        ids[i] = store.begin(MiB, b"\x44" * 32, f"sybil-{i}")
        store.put_chunk(ids[i], 0, b"x", f"sybil-{i}")
    clock.now += 0.25
    data = b"honest" * 1000
    uid = store.begin(len(data), keccak(data), "honest")
    assert ids[0] not in store.uploads and len(store.uploads) == blobstore.MAX_UPLOADS  # the most idle went
    # The sybil comes back (it holds nothing now): the most idle of the others goes, not the
    # honest upload, which is moving.
    for i in (0, 1, 2):
        clock.now += 0.25
        store.put_chunk(uid, 0, data[:100], "honest")
        clock.now += 0.25
        store.begin(MiB, b"\x44" * 32, f"sybil-{i}")
    assert uid in store.uploads
    store.put_chunk(uid, 100, data[100:], "honest")
    assert store.finish(uid, "honest") == keccak(data)
    # A client that already holds one gets a second only from someone holding more than two.
    store.begin(MiB, b"\x44" * 32, "sybil-64")  # the honest upload's place
    assert len(store.uploads) == blobstore.MAX_UPLOADS and len(store.client_uploads("sybil-5")) == 1
    with pytest.raises(BlobError, match="too many unfinished uploads on this node"):
        store.begin(MiB, b"\x44" * 32, "sybil-5")


def test_a_damaged_blob_is_an_error_not_empty_bytes(store):
    digest = store.put(b"z" * (2 * MiB + 5))
    store.store.write({b"blobc:" + digest + (1).to_bytes(4, "big"): None})
    assert store.get(digest, 0, 10) == b"z" * 10
    with pytest.raises(BlobError, match="chunk 1 is missing"):
        store.get(digest)


def test_wanted_blobs_survive_a_restart_and_leave_when_put(tmp_path):
    """What the chain names and this node lacks is remembered on disk until the bytes arrive."""
    from state import LevelDBStore

    data = b"an adapter's manifest"
    digest = keccak(data)
    db = LevelDBStore(tmp_path / "blobs")
    store = BlobStore(db)
    assert store.want(digest) is True
    assert store.want(digest) is False  # already wanted
    assert store.want(keccak(b"given up")) is True
    store.unwant(keccak(b"given up"))
    db.close()
    db = LevelDBStore(tmp_path / "blobs")
    store = BlobStore(db)
    assert store.wanted(10) == [digest]
    store.put(data, digest)
    assert store.wanted(10) == []
    assert store.want(digest) is False  # held
    db.close()


def test_wanted_is_read_a_page_at_a_time():
    store = BlobStore(MemoryStore())
    digests = [keccak(bytes([i])) for i in range(10)]
    for d in digests:
        store.want(d)
    assert len(store.wanted(4)) == 4 and sorted(store.wanted(100)) == sorted(digests)
