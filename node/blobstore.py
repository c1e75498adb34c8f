"""The blob store: contribution bytes, hyper-parameter JSON and other content that the
chain refers to only by hash.

Blobs live in the node's own store (LevelDB on disk), content-addressed by keccak-256, in
1 MiB chunks under a small manifest. A blob larger than one JSON-RPC body is uploaded in
chunks (begin, put chunk..., finish) and only becomes visible once its whole content hashes
to the hash announced at the start: nothing half-uploaded is ever served.

Unfinished uploads are held in memory, so they are bounded the way a hostile caller needs:
only bytes really received count (an announced size reserves nothing), chunks may not
overlap, and both the node and each client (the RPC connection's remote address) have caps
on concurrent uploads and held bytes. An upload idle for :data:`UPLOAD_IDLE_TIMEOUT` is
aborted. When the node is full, the fair share rule (geth's, for its pool) makes room: a client
holding nothing always gets in, and any other client gets more only from one that would still
hold more than it; the room is the most idle upload among the clients holding the most. So 64
addresses holding one upload each (refreshed with a byte a minute) cannot lock a newcomer out,
and an upload that is really moving is never the one to go.
"""

from __future__ import annotations

import bisect
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_hash.auto import keccak

from node import metrics
from state.db import KeyValueStore

CHUNK = 1024 * 1024
#: Largest blob the node keeps.
MAX_BLOB_SIZE = 64 * 1024 * 1024
#: Bytes all unfinished uploads may hold in memory together.
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
#: Bytes one client's unfinished uploads may hold (room for one blob of the largest size).
MAX_CLIENT_UPLOAD_BYTES = 2 * MAX_BLOB_SIZE
#: Unfinished uploads on the node, and per client.
MAX_UPLOADS = 64
MAX_CLIENT_UPLOADS = 4
#: Separate chunks one upload may hold (bounds the bookkeeping of tiny chunks).
MAX_UPLOAD_PARTS = 4096
#: Seconds an upload may go without a chunk before it is aborted.
UPLOAD_IDLE_TIMEOUT = 120.0
_MANIFEST = b"blob:"
_CHUNK = b"blobc:"
#: Hashes of blobs the chain names that this node does not hold yet (fetched from peers; kept
#: on disk so a restarted node goes on fetching).
_WANTED = b"blobw:"


class BlobError(ValueError):
    """A blob that cannot be stored or found; the message says why."""


@dataclass
class Upload:
    size: int
    content_hash: bytes
    client: str | None
    """Who began it (remote address); only that client may touch it."""
    last_active: float
    parts: dict[int, bytes] = field(default_factory=dict)
    """Received chunks by offset; never overlapping."""
    starts: list[int] = field(default_factory=list)
    """The offsets of ``parts``, sorted."""
    received: int = 0
    """Bytes held (the sum of the parts' lengths)."""

    def first_gap(self) -> int:
        """The offset of the first byte not received yet (``size`` when complete)."""
        at = 0
        for start in self.starts:
            if start > at:
                return at
            at = start + len(self.parts[start])
        return at


class BlobStore:
    def __init__(
        self,
        store: KeyValueStore,
        clock: Callable[[], float] = time.monotonic,
        idle_timeout: float = UPLOAD_IDLE_TIMEOUT,
    ) -> None:
        self.store = store
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.uploads: dict[int, Upload] = {}

    def put(self, data: bytes, expected_hash: bytes | None = None) -> bytes:
        """Store ``data``; returns its keccak-256. Refuses a mismatching ``expected_hash``."""
        if len(data) > MAX_BLOB_SIZE:
            raise BlobError(f"blob of {len(data)} bytes exceeds the limit of {MAX_BLOB_SIZE}")
        digest = keccak(data)
        if expected_hash is not None and digest != expected_hash:
            raise BlobError(
                f"content hash mismatch: expected 0x{expected_hash.hex()}, data hashes to 0x{digest.hex()}"
            )
        if self.size(digest) is None:
            changes: dict[bytes, bytes | None] = {
                _CHUNK + digest + i.to_bytes(4, "big"): data[o : o + CHUNK]
                for i, o in enumerate(range(0, len(data), CHUNK))
            }
            changes[_MANIFEST + digest] = len(data).to_bytes(8, "big")
            changes[_WANTED + digest] = None
            self.store.write(changes)  # manifest, chunks and the fetch done in one atomic batch
            metrics.AI_BLOB_BYTES.inc(len(data))
        return bytes(digest)

    # -- blobs the chain names and this node lacks -------------------------------------------

    def want(self, digest: bytes) -> bool:
        """Remember to fetch ``digest`` (until it is put or given up); False when it is held or
        already wanted."""
        if self.size(digest) is not None or self.store.get(_WANTED + digest) is not None:
            return False
        self.store.write({_WANTED + digest: b"\x01"})
        return True

    def unwant(self, digest: bytes) -> None:
        """Give up fetching ``digest`` (no peer has it)."""
        self.store.write({_WANTED + digest: None})

    def wanted(self, limit: int) -> list[bytes]:
        """At most ``limit`` of the blob hashes still to fetch."""
        out: list[bytes] = []
        for key, _ in self.store.iterate_prefix(_WANTED):
            if len(out) >= limit:
                break
            out.append(bytes(key[len(_WANTED):]))
        return out

    def size(self, digest: bytes) -> int | None:
        manifest = self.store.get(_MANIFEST + digest)
        return None if manifest is None else int.from_bytes(manifest, "big")

    def get(self, digest: bytes, offset: int = 0, length: int | None = None) -> bytes:
        size = self.size(digest)
        if size is None:
            raise BlobError(f"unknown blob 0x{digest.hex()}")
        end = size if length is None else min(size, offset + length)
        out = bytearray()
        for index in range(offset // CHUNK, (end + CHUNK - 1) // CHUNK):
            chunk = self.store.get(_CHUNK + digest + index.to_bytes(4, "big"))
            if chunk is None:
                raise BlobError(f"blob 0x{digest.hex()} is damaged: chunk {index} is missing from the store")
            start = index * CHUNK
            out += chunk[max(0, offset - start) : end - start]
        return bytes(out)

    # -- chunked uploads ----------------------------------------------------------------------

    @property
    def held(self) -> int:
        """Bytes all unfinished uploads hold."""
        return sum(u.received for u in self.uploads.values())

    def client_uploads(self, client: str | None) -> list[int]:
        return [i for i, u in self.uploads.items() if u.client == client]

    def client_held(self, client: str | None) -> int:
        return sum(u.received for u in self.uploads.values() if u.client == client)

    def expire(self) -> list[int]:
        """Abort every upload idle for longer than the timeout; returns their ids."""
        cutoff = self.clock() - self.idle_timeout
        gone = [i for i, u in self.uploads.items() if u.last_active < cutoff]
        for i in gone:
            del self.uploads[i]
        return gone

    def begin(self, size: int, content_hash: bytes, client: str | None = None) -> int:
        """Open an upload of ``size`` bytes that must hash to ``content_hash``; returns its
        id (random, so that nobody can guess another client's)."""
        self.expire()
        if size <= 0:
            raise BlobError("blob size must be at least 1 byte")
        if size > MAX_BLOB_SIZE:
            raise BlobError(f"blob of {size} bytes exceeds the limit of {MAX_BLOB_SIZE}")
        mine = self.client_uploads(client)
        if len(mine) >= MAX_CLIENT_UPLOADS:
            raise BlobError(
                f"too many unfinished uploads from this client ({len(mine)}, limit {MAX_CLIENT_UPLOADS}); "
                "finish or abort one first"
            )
        if len(self.uploads) >= MAX_UPLOADS:
            self._evict_for(client, lambda c: len(self.client_uploads(c)), len(mine) + 1,
                            f"too many unfinished uploads on this node (limit {MAX_UPLOADS}); try again later",
                            newcomer=not mine)
        upload_id = secrets.randbits(62) + 1
        while upload_id in self.uploads:
            upload_id = secrets.randbits(62) + 1
        self.uploads[upload_id] = Upload(size, content_hash, client, self.clock())
        return upload_id

    def put_chunk(self, upload_id: int, offset: int, data: bytes, client: str | None = None) -> int:
        """Add ``data`` at ``offset``; returns the bytes the upload now holds. Sending the same
        chunk again (a retry) is harmless; a chunk overlapping other bytes is refused."""
        self.expire()
        upload = self._upload(upload_id, client)
        if not data:
            raise BlobError("empty chunk")
        end = offset + len(data)
        if offset < 0 or end > upload.size:
            raise BlobError(f"chunk at {offset} of {len(data)} bytes overruns the announced size {upload.size}")
        if upload.parts.get(offset) == data:
            upload.last_active = self.clock()
            return upload.received
        i = bisect.bisect_right(upload.starts, offset)
        before = upload.starts[i - 1] if i > 0 else None
        after = upload.starts[i] if i < len(upload.starts) else None
        if (before is not None and before + len(upload.parts[before]) > offset) or (after is not None and after < end):
            raise BlobError(f"chunk at {offset} of {len(data)} bytes overlaps bytes already received")
        if len(upload.parts) >= MAX_UPLOAD_PARTS:
            raise BlobError(f"upload holds {MAX_UPLOAD_PARTS} chunks already; send larger chunks")
        mine = self.client_held(client) + len(data)
        if mine > MAX_CLIENT_UPLOAD_BYTES:
            raise BlobError(
                f"this client's unfinished uploads would hold {mine} bytes, over the limit of "
                f"{MAX_CLIENT_UPLOAD_BYTES}; finish or abort one first"
            )
        while self.held + len(data) > MAX_UPLOAD_BYTES:
            self._evict_for(client, self.client_held, mine,
                            f"unfinished uploads hold {MAX_UPLOAD_BYTES} bytes, the node's limit; try again later",
                            keep=upload_id)
        upload.parts[offset] = bytes(data)
        upload.starts.insert(i, offset)
        upload.received += len(data)
        upload.last_active = self.clock()
        return upload.received

    def finish(self, upload_id: int, client: str | None = None) -> bytes:
        """Store the upload as a blob once every byte is in and hashes right."""
        self.expire()
        upload = self._upload(upload_id, client)
        if upload.received != upload.size:
            raise BlobError(
                f"upload incomplete: {upload.received} of {upload.size} bytes received; "
                f"missing bytes from offset {upload.first_gap()}"
            )
        data = b"".join(upload.parts[o] for o in upload.starts)
        del self.uploads[upload_id]  # bytes that hash wrong can never become right: start again
        return self.put(data, upload.content_hash)

    def abort(self, upload_id: int, client: str | None = None) -> bool:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.client != client:
            return False
        del self.uploads[upload_id]
        return True

    def _upload(self, upload_id: int, client: str | None) -> Upload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.client != client:
            raise BlobError(f"unknown upload {upload_id} (finished, aborted, or idle for over {self.idle_timeout:.0f} s)")
        return upload

    def _evict_for(
        self, client: str | None, usage: Callable[[str | None], int], wanted: int, refusal: str,
        keep: int | None = None, newcomer: bool = False,
    ) -> None:
        """Make room for ``client`` (who would then use ``wanted`` by ``usage``) by aborting the
        most idle upload among the clients using the most, if they would still use more than
        ``client`` wants to, or if ``client`` is a ``newcomer`` holding nothing (it always gets
        in: among equals, the most idle upload goes); else refuse with ``refusal``."""
        held: dict[str | None, int] = {}
        for i, u in self.uploads.items():
            if u.client != client and i != keep and u.client not in held:
                held[u.client] = usage(u.client)
        if held:
            most = max(held.values())
            if most > wanted or (newcomer and most > 0):
                victim = min(
                    (i for i, u in self.uploads.items() if i != keep and held.get(u.client, -1) == most),
                    key=lambda i: self.uploads[i].last_active,
                )
                del self.uploads[victim]
                return
        raise BlobError(refusal)
