"""The ASGI side of the JSON-RPC server: HTTP POST and WebSocket on one port, as hypercorn
serves them on the node's trio loop.

The transport's own limits come first, before any call runs: a body over MAX_BODY gets
HTTP 413 (read up to MAX_DRAIN first, so a client still writing it reads the status instead
of a reset connection); a request from a browser origin the node does not list gets 403 and
runs nothing, and a WebSocket from one is closed (browsers open WebSockets to any origin
without asking). A client that hangs up cancels its request: jobs not yet started never run.

On a node that serves the explorer (``explorer.py``), a GET under ``/explorer`` is answered from
the shipped bundle instead, and the explorer's own page (an Origin equal to the address it was
sent to, an IP or localhost) may call like a listed origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import trio

from node.rpc.errors import InvalidRequest
from node.rpc.explorer import ExplorerBundle, is_explorer_path, own_page_origin, serve_explorer
from node.rpc.namespaces import origin_allowed
from node.rpc.subscriptions import Subscriptions, WebSocketConnection


class _Settings(Protocol):
    @property
    def cors_origins(self) -> Iterable[str]: ...


class RPCServer(Protocol):
    """What the transport needs of the JSON-RPC server (``node.rpc.server.RPCServer``)."""

    @property
    def settings(self) -> _Settings: ...

    @property
    def subscriptions(self) -> Subscriptions: ...

    @property
    def explorer(self) -> ExplorerBundle | None:
        """The explorer's bundle when this node serves it."""

    async def handle_text(self, body: bytes | str, conn: WebSocketConnection | None = None,
                          client: str = "") -> str | None: ...

#: Largest request body (HTTP) or message (WebSocket), as geth's.
MAX_BODY = 5 * 1024 * 1024
#: An oversized body up to this size is read and dropped before the 413 is sent; a larger
#: one is answered at once and the connection closed.
MAX_DRAIN = 64 * 1024 * 1024

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


async def serve_asgi(server: RPCServer, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Serve one ASGI connection: an HTTP request, a WebSocket, or the lifespan protocol."""
    if scope["type"] == "http":
        await _http(server, scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(server, scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _cors(server: RPCServer, scope: dict[str, Any]) -> tuple[bool, list[tuple[bytes, bytes]]]:
    """(allowed, CORS response headers) for a request: allowed when it carries no
    Origin (not a browser) or a listed one; headers grant only a listed origin."""
    origin_raw = dict(scope.get("headers", [])).get(b"origin")
    if origin_raw is None:
        return True, []
    origin = origin_raw.decode("latin-1")
    if server.explorer is not None:
        host = dict(scope.get("headers", [])).get(b"host")
        if own_page_origin(origin, host.decode("latin-1") if host is not None else None):
            return True, []  # the explorer's own page: same origin, no CORS headers needed
    if not origin_allowed(origin, server.settings.cors_origins):
        return False, []
    return True, [
        (b"access-control-allow-origin", origin_raw),
        (b"vary", b"Origin"),
        (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
        (b"access-control-allow-headers", b"content-type"),
        (b"access-control-max-age", b"600"),
    ]


async def _http(server: RPCServer, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if server.explorer is not None and is_explorer_path(scope["path"]):
        # Static public files, the same for every caller: no Origin check, no body read.
        await serve_explorer(server.explorer, scope, send)
        return
    allowed, cors = _cors(server, scope)
    if not allowed:
        await _respond(send, 403, b"origin not allowed; start the node with --cors-origins to allow it\n", "text/plain")
        return
    if scope["method"] == "OPTIONS":
        await _respond(send, 204, b"", extra=cors)
        return
    if scope["method"] != "POST":
        hint = "; the explorer is at /explorer/" if server.explorer is not None else ""
        await _respond(send, 405, f"JSON-RPC: send a POST with a JSON body{hint}\n".encode(), "text/plain", cors)
        return
    headers = dict(scope.get("headers", []))
    length = headers.get(b"content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    if declared is not None and declared > MAX_DRAIN:
        await _respond(send, 413, f"content length too large: {declared} > {MAX_BODY}\n".encode(), "text/plain", cors)
        return
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_DRAIN:
            break
        if size <= MAX_BODY:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if size > MAX_BODY:
        # The body was read (up to MAX_DRAIN) before answering, so that a client still
        # writing it reads the 413 instead of a reset connection.
        await _respond(send, 413, f"content length too large: {size} > {MAX_BODY}\n".encode(), "text/plain", cors)
        return
    response = None
    hung_up = False
    # A client that hangs up cancels its request: jobs not yet started never run.
    async with trio.open_nursery() as nursery:

        async def watch_disconnect() -> None:
            nonlocal hung_up
            while (await receive())["type"] != "http.disconnect":
                pass
            hung_up = True
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_disconnect)
        response = await server.handle_text(b"".join(chunks), None, _client_of(scope))
        nursery.cancel_scope.cancel()
    if hung_up:
        return
    await _respond(send, 200, (response or "").encode(), extra=cors)


async def _websocket(server: RPCServer, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if not _cors(server, scope)[0]:
        # Browsers open WebSockets to any origin without asking: the check is ours.
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    client = _client_of(scope)
    conn = WebSocketConnection()

    async def writer() -> None:
        async for text in conn.inbox:
            await send({"type": "websocket.send", "text": text})

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                body = message.get("text")
                if body is None:
                    body = message.get("bytes") or b""
                if len(body) > MAX_BODY:
                    conn.push({"jsonrpc": "2.0", "id": None, "error": InvalidRequest("message too large").to_json()})
                    continue
                response = await server.handle_text(body, conn, client)
                if response is not None and not conn.closed:
                    await conn.outbox.send(response)
            nursery.cancel_scope.cancel()
    finally:
        server.subscriptions.drop_connection(conn)


def _client_of(scope: dict[str, Any]) -> str:
    """The caller's address, for per-client limits."""
    client = scope.get("client")
    return str(client[0]) if client else ""


async def _respond(
    send: Send, status: int, body: bytes, content_type: str = "application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
