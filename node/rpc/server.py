"""JSON-RPC 2.0 over HTTP and WebSocket on one port (an ASGI app served by hypercorn on
the node's trio loop), with geth's transport limits: a body over 5 MiB gets HTTP 413 and
a batch of more than 1,000 calls gets -32600.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from node import metrics
from node.core import ChainCore, matches

# Imported for their side effect: each module registers its namespace's methods.
from node.rpc import ai_methods, anvil_methods, debug_methods, eth_extra  # noqa: F401
from node.rpc import params as p
from node.rpc.arity import MAX_PARAMS
from node.rpc.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RPCError,
)
from node.rpc.format import d, format_transaction
from node.rpc.methods import METHODS
from node.worker import ChainWorker

log = logging.getLogger("ailedger.rpc")

MAX_BODY = 5 * 1024 * 1024
MAX_BATCH = 1000
#: An oversized body up to this size is read and dropped before the 413 is sent; a larger
#: one is answered at once and the connection closed.
MAX_DRAIN = 64 * 1024 * 1024
#: Notifications a slow WebSocket client may leave unread before it is dropped.
SUBSCRIPTION_BUFFER = 10_000

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class Subscription:
    def __init__(self, sid: str, kind: str, conn: WebSocketConnection, options: Any) -> None:
        self.id = sid
        self.kind = kind
        self.conn = conn
        self.options = options


class WebSocketConnection:
    def __init__(self) -> None:
        self.outbox, self.inbox = trio.open_memory_channel[str](SUBSCRIPTION_BUFFER)
        self.subscriptions: dict[str, Subscription] = {}
        self.closed = False

    def push(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.outbox.send_nowait(json.dumps(message))
        except (trio.WouldBlock, trio.ClosedResourceError):
            self.closed = True  # a client that stops reading loses its subscriptions


class RPCServer:
    """Dispatches JSON-RPC payloads to the chain worker and feeds subscriptions."""

    def __init__(self, core: ChainCore, worker: ChainWorker) -> None:
        self.core = core
        self.worker = worker
        self.subscriptions: dict[str, Subscription] = {}
        self._next_sub = 1

    # -- dispatch -------------------------------------------------------------------------

    async def handle_text(self, body: bytes | str, conn: WebSocketConnection | None = None) -> str | None:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return json.dumps(_error(None, ParseError(f"parse error: {e}")))
        if isinstance(payload, list):
            if not payload:
                return json.dumps(_error(None, InvalidRequest("empty batch")))
            if len(payload) > MAX_BATCH:
                return json.dumps(_error(None, InvalidRequest(f"batch too large: {len(payload)} calls, limit {MAX_BATCH}")))
            if any(isinstance(c, dict) and c.get("method") in _CONNECTION_METHODS for c in payload):
                results = [await self.handle_call(item, conn) for item in payload]
            else:
                # One hand-off to the chain worker for the whole batch.
                try:
                    results = await self.worker.run(self._dispatch_batch, payload)
                finally:
                    self.pump_events()
            responses = [r for r in results if r is not None]
            return json.dumps(responses) if responses else None
        response = await self.handle_call(payload, conn)
        return json.dumps(response) if response is not None else None

    async def handle_call(self, call: Any, conn: WebSocketConnection | None) -> dict[str, Any] | None:
        if isinstance(call, dict) and call.get("method") in _CONNECTION_METHODS:
            return await self._connection_call(call, conn)
        try:
            return await self.worker.run(self.dispatch, call)
        finally:
            self.pump_events()

    def _dispatch_batch(self, calls: list[Any]) -> list[dict[str, Any] | None]:
        return [self.dispatch(call) for call in calls]

    def dispatch(self, call: Any) -> dict[str, Any] | None:
        """Answer one call (on the chain worker thread): validate, run, shape the response."""
        checked = _check_call(call)
        if isinstance(checked, dict):
            return checked
        call_id, method, params = checked
        started = time.perf_counter()
        handler = METHODS.get(method)
        try:
            if handler is None:
                raise MethodNotFound(f"the method {method} does not exist/is not available")
            limit = MAX_PARAMS.get(method)
            if limit is not None and len(params) > limit:
                raise InvalidParams(f"too many arguments, want at most {limit}")
            response: dict[str, Any] = {"jsonrpc": "2.0", "id": call_id, "result": handler(self.core, params)}
            outcome = "ok"
        except RPCError as e:
            outcome = "error"
            response = _error(call_id, e)
        except Exception as e:  # a bug must not take the node down: report it as -32603
            log.exception("internal error in %s", method)
            outcome = "error"
            response = _error(call_id, InternalError(f"internal error: {type(e).__name__}: {e}"))
        label = method if handler is not None else "unknown"
        metrics.RPC_REQUESTS.labels(label, outcome).inc()
        metrics.RPC_SECONDS.labels(label).observe(time.perf_counter() - started)
        return response if "id" in call else None  # notifications get no response

    async def _connection_call(self, call: dict[str, Any], conn: WebSocketConnection | None) -> dict[str, Any] | None:
        checked = _check_call(call)
        if isinstance(checked, dict):
            return checked
        call_id, method, params = checked
        try:
            if method == "eth_subscribe":
                result: Any = await self.subscribe(params, conn)
            else:
                result = self.unsubscribe(params, conn)
        except RPCError as e:
            metrics.RPC_REQUESTS.labels(method, "error").inc()
            return _error(call_id, e)
        metrics.RPC_REQUESTS.labels(method, "ok").inc()
        return {"jsonrpc": "2.0", "id": call_id, "result": result} if "id" in call else None

    # -- subscriptions --------------------------------------------------------------------

    async def subscribe(self, params: list[Any], conn: WebSocketConnection | None) -> str:
        if conn is None:
            raise MethodNotFound("notifications not supported")
        if not params or not isinstance(params[0], str):
            raise InvalidParams("invalid argument 0: expected a subscription name")
        kind = params[0]
        options: Any = None
        if kind == "logs":
            options = p.log_filter(params[1] if len(params) > 1 else {}, "1")
        elif kind == "newPendingTransactions":
            options = bool(params[1]) if len(params) > 1 else False
        elif kind == "syncing":
            options = None
        elif kind != "newHeads":
            raise InvalidParams(f"invalid argument 0: no \"{kind}\" subscription in eth namespace")
        sid = "0x" + (self._next_sub).to_bytes(16, "big").hex()
        self._next_sub += 1
        sub = Subscription(sid, kind, conn, options)
        conn.subscriptions[sid] = sub
        self.subscriptions[sid] = sub
        return sid

    def unsubscribe(self, params: list[Any], conn: WebSocketConnection | None) -> bool:
        if conn is None:
            raise MethodNotFound("notifications not supported")
        if not params or not isinstance(params[0], str):
            raise InvalidParams("invalid argument 0: expected a subscription id")
        sub = conn.subscriptions.pop(params[0], None)
        self.subscriptions.pop(params[0], None)
        return sub is not None

    def drop_connection(self, conn: WebSocketConnection) -> None:
        for sid in conn.subscriptions:
            self.subscriptions.pop(sid, None)
        conn.subscriptions.clear()
        conn.closed = True

    def pump_events(self) -> None:
        """Deliver the chain's new events to subscribers (runs on the trio loop)."""
        events = self.core.events
        while events:
            kind, payload = events.popleft()
            for sub in list(self.subscriptions.values()):
                if sub.kind != kind:
                    continue
                if kind == "logs":
                    for entry in payload:
                        if matches(entry, sub.options):
                            _notify(sub, entry)
                elif kind == "newPendingTransactions":
                    _notify(sub, format_transaction(payload) if sub.options else d(payload.hash))
                else:
                    _notify(sub, payload)

    async def pump_forever(self) -> None:
        while True:
            self.pump_events()
            await trio.sleep(0.05)

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, b"")
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b"JSON-RPC: send a POST with a JSON body\n", "text/plain")
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > MAX_DRAIN:
            await _respond(send, 413, f"content length too large: {declared} > {MAX_BODY}\n".encode(), "text/plain")
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
            await _respond(send, 413, f"content length too large: {size} > {MAX_BODY}\n".encode(), "text/plain")
            return
        response = await self.handle_text(b"".join(chunks))
        await _respond(send, 200, (response or "").encode())

    async def _websocket(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
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
                        conn.push(_error(None, InvalidRequest("message too large")))
                        continue
                    response = await self.handle_text(body, conn)
                    if response is not None and not conn.closed:
                        await conn.outbox.send(response)
                nursery.cancel_scope.cancel()
        finally:
            self.drop_connection(conn)


_CONNECTION_METHODS = ("eth_subscribe", "eth_unsubscribe")


def _check_call(call: Any) -> tuple[Any, str, list[Any]] | dict[str, Any]:
    """(id, method, params) of a well-formed call, or the error response for a bad one."""
    if not isinstance(call, dict):
        return _error(None, InvalidRequest("invalid request: expected an object"))
    call_id = call.get("id")
    if call_id is not None and (isinstance(call_id, bool) or not isinstance(call_id, (str, int, float))):
        return _error(None, InvalidRequest("invalid request: id must be a string or number"))
    method = call.get("method")
    if not isinstance(method, str) or call.get("jsonrpc", "2.0") != "2.0":
        return _error(call_id, InvalidRequest("invalid request"))
    params = call.get("params", [])
    if params is None:
        params = []
    if not isinstance(params, list):
        return _error(call_id, InvalidParams("invalid params: expected an array of positional arguments"))
    return call_id, method, params


def _notify(sub: Subscription, result: Any) -> None:
    sub.conn.push(
        {"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": sub.id, "result": result}}
    )


def _error(call_id: Any, error: RPCError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "error": error.to_json()}


async def _respond(send: Send, status: int, body: bytes, content_type: str = "application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
                (b"access-control-allow-headers", b"content-type"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
