"""The blob store: contribution bytes, hyper-parameter JSON and other content that the
chain refers to only by hash.

Blobs live in the node's own store (LevelDB on disk), content-addressed by keccak-256, in
1 MiB chunks under a small manifest. A blob larger than one JSON-RPC body is uploaded in
chunks (begin, put chunk..., finish) and only becomes visible once its whole content hashes
to the hash announced at the start: nothing half-uploaded is ever served.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from eth_hash.auto import keccak

from state.db import KeyValueStore

CHUNK = 1024 * 1024
#: Largest blob the node keeps.
MAX_BLOB_SIZE = 64 * 1024 * 1024
#: Bytes all unfinished uploads may hold in memory together.
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
_MANIFEST = b"blob:"
_CHUNK = b"blobc:"


class BlobError(ValueError):
    """A blob that cannot be stored or found; the message says why."""


@dataclass
class Upload:
    size: int
    content_hash: bytes
    parts: dict[int, bytes] = field(default_factory=dict)

    @property
    def received(self) -> int:
        return sum(len(p) for p in self.parts.values())


class BlobStore:
    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self.uploads: dict[int, Upload] = {}
        self._ids = itertools.count(1)

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
            self.store.write(changes)  # manifest and chunks in one atomic batch
        return bytes(digest)

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
            chunk = self.store.get(_CHUNK + digest + index.to_bytes(4, "big")) or b""
            start = index * CHUNK
            out += chunk[max(0, offset - start) : end - start]
        return bytes(out)

    # -- chunked uploads ----------------------------------------------------------------------

    def begin(self, size: int, content_hash: bytes) -> int:
        if size > MAX_BLOB_SIZE:
            raise BlobError(f"blob of {size} bytes exceeds the limit of {MAX_BLOB_SIZE}")
        pending = sum(u.size for u in self.uploads.values())
        if pending + size > MAX_UPLOAD_BYTES:
            raise BlobError("too many unfinished uploads; finish or abort some first")
        upload_id = next(self._ids)
        self.uploads[upload_id] = Upload(size, content_hash)
        return upload_id

    def put_chunk(self, upload_id: int, offset: int, data: bytes) -> int:
        upload = self.uploads.get(upload_id)
        if upload is None:
            raise BlobError(f"unknown upload {upload_id}")
        if offset < 0 or offset + len(data) > upload.size:
            raise BlobError(f"chunk at {offset} of {len(data)} bytes overruns the announced size {upload.size}")
        upload.parts[offset] = data
        return upload.received

    def finish(self, upload_id: int) -> bytes:
        upload = self.uploads.pop(upload_id, None)
        if upload is None:
            raise BlobError(f"unknown upload {upload_id}")
        data = b"".join(upload.parts[o] for o in sorted(upload.parts))
        if len(data) != upload.size:
            raise BlobError(f"upload incomplete: {len(data)} of {upload.size} bytes received")
        return self.put(data, upload.content_hash)

    def abort(self, upload_id: int) -> bool:
        return self.uploads.pop(upload_id, None) is not None
