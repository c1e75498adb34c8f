"""Bytes in and out of the node's blob store (``ai_putBlob`` ... ``ai_getBlob``), checked
against their keccak-256 names."""

from __future__ import annotations

from node.cli.client import Client
from node.cli.errors import CLIError
from node.cli.options import parse_hash

#: Bytes per ai_putBlobChunk call (hex doubles it under the 5 MiB body limit).
UPLOAD_CHUNK = 1024 * 1024


def upload(client: Client, data: bytes, label: str) -> bytes:
    """Put ``data`` in the node's blob store, in chunks with a progress bar when large."""
    from eth_hash.auto import keccak

    digest = keccak(data)
    if len(data) <= UPLOAD_CHUNK:
        client.call("ai_putBlob", "0x" + data.hex(), "0x" + digest.hex())
        return bytes(digest)
    from node.progress import Progress

    upload_id = client.call("ai_beginBlob", hex(len(data)), "0x" + digest.hex())
    with Progress(label, "B", total=len(data), unit_scale=True) as bar:
        for offset in range(0, len(data), UPLOAD_CHUNK):
            chunk = data[offset : offset + UPLOAD_CHUNK]
            client.call("ai_putBlobChunk", upload_id, hex(offset), "0x" + chunk.hex())
            bar.advance(len(chunk))
    client.call("ai_finishBlob", upload_id)
    return bytes(digest)


def fetch_blob(client: Client, content_hash: str) -> bytes:
    """A whole blob from the node, page by page, refused unless it hashes to its name."""
    from eth_hash.auto import keccak

    first = client.call("ai_getBlob", content_hash)
    data = bytearray(bytes.fromhex(first["data"][2:]))
    size = int(first["size"], 16)
    while len(data) < size:
        part = client.call("ai_getBlob", content_hash, hex(len(data)))
        data += bytes.fromhex(part["data"][2:])
    if keccak(bytes(data)) != parse_hash(content_hash):
        raise CLIError(f"blob {content_hash} does not hash to its name")
    return bytes(data)
