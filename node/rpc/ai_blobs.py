"""The ``ai_`` blob methods: the node's content-addressed blob store over JSON-RPC.

Data contributions, adapter weights and inference outputs are blobs the chain names by
keccak-256. A blob up to the body limit goes up in one ``ai_putBlob``; a larger one in
chunks (``ai_beginBlob``, ``ai_putBlobChunk``, ``ai_finishBlob``), and only the client
(remote address) that began an upload may add to it. The store enforces its own quotas; its
refusals are -32000. ``ai_getBlob`` reads at most MAX_BLOB_READ bytes a call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from node.blobstore import BlobError
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import ResourceNotFound, ServerError
from node.rpc.format import hex_data, hex_quantity
from node.rpc.registry import Params, args, current_client, rpc

T = TypeVar("T")

#: Largest blob slice one ai_getBlob answer carries (hex doubles it; the body limit is 5 MiB).
MAX_BLOB_READ = 2 * 1024 * 1024


def _blob_call(fn: Callable[..., T], *a: object) -> T:
    """``fn(*a)`` with the blob store's refusal as -32000."""
    try:
        return fn(*a)
    except BlobError as e:
        raise ServerError(str(e)) from None


@rpc("ai_putBlob", max_params=2)
def ai_put_blob(ctx: NodeContext, params: Params) -> dict[str, Any]:
    data_raw, expected = args(params, 1, 1)
    data = p.data(data_raw, "0")
    digest = _blob_call(ctx.core.blobs.put, data, p.hash32(expected, "1") if expected is not None else None)
    return {"hash": hex_data(digest), "size": hex_quantity(len(data))}


@rpc("ai_beginBlob", max_params=2)
def ai_begin_blob(ctx: NodeContext, params: Params) -> str:
    """Open a chunked upload; only the client (remote address) that opened it may use it."""
    size, content_hash = args(params, 2)
    return hex_quantity(_blob_call(ctx.core.blobs.begin, p.quantity(size, "0"), p.hash32(content_hash, "1"), current_client() or None))


@rpc("ai_putBlobChunk", max_params=3)
def ai_put_blob_chunk(ctx: NodeContext, params: Params) -> str:
    upload, offset, data = args(params, 3)
    return hex_quantity(_blob_call(
        ctx.core.blobs.put_chunk, p.quantity(upload, "0"), p.quantity(offset, "1"), p.data(data, "2"), current_client() or None
    ))


@rpc("ai_finishBlob", max_params=1)
def ai_finish_blob(ctx: NodeContext, params: Params) -> dict[str, Any]:
    (upload,) = args(params, 1)
    digest = _blob_call(ctx.core.blobs.finish, p.quantity(upload, "0"), current_client() or None)
    return {"hash": hex_data(digest), "size": hex_quantity(ctx.core.blobs.size(digest) or 0)}


@rpc("ai_abortBlob", max_params=1)
def ai_abort_blob(ctx: NodeContext, params: Params) -> bool:
    """Drop an unfinished upload (its bytes are freed); False when there is none to drop."""
    (upload,) = args(params, 1)
    return bool(ctx.core.blobs.abort(p.quantity(upload, "0"), current_client() or None))


@rpc("ai_getBlob", max_params=3)
def ai_get_blob(ctx: NodeContext, params: Params) -> dict[str, Any]:
    digest_raw, offset, length = args(params, 1, 2)
    digest = p.hash32(digest_raw, "0")
    size = ctx.core.blobs.size(digest)
    if size is None:
        if ctx.core.fetch_lazily(digest):  # a state-synced node lacks what came before its pivot
            raise ResourceNotFound(f"blob {hex_data(digest)} is not on this node; it is being fetched from "
                                   "its peers: ask again in a few seconds")
        raise ResourceNotFound(f"unknown blob {digest_raw}")
    start = p.quantity(offset, "1") if offset is not None else 0
    n = min(p.quantity(length, "2") if length is not None else size, MAX_BLOB_READ)
    return {"hash": hex_data(digest), "size": hex_quantity(size), "offset": hex_quantity(start),
            "data": hex_data(_blob_call(ctx.core.blobs.get, digest, start, n))}
