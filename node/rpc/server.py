"""JSON-RPC 2.0 over HTTP and WebSocket on one port (an ASGI app served by hypercorn on
the node's trio loop), with geth's transport limits: a body over 5 MiB gets HTTP 413 and
a batch of more than 1,000 calls gets -32600.

Who may call what is the node's choice, made at start (:class:`RPCSettings`): the
namespaces it serves (a method outside them is 'method not found', exactly as one that
does not exist), and the browser origins it answers. A request that carries an
``Origin`` header (every browser POST and WebSocket does) from an origin not listed gets
HTTP 403 and runs nothing: CORS alone would only hide the answer from the page, after
the call had already run.

Each call of a batch is its own job on the worker, so other callers' work and block
production interleave with a long batch. Chain events reach subscriptions through the
trio token as they happen.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import trio

from node import errors as node_errors
from node import metrics
from node.core import ChainCore, matches
from node.errors import NodeError
from node.rpc import params as p
from node.rpc.ai_infer import ASYNC_METHODS, InferenceService
from node.rpc.errors import (
    InternalError,
    InvalidParams,
    InvalidRequest,
    LimitExceeded,
    MethodNotFound,
    ParseError,
    RPCError,
    from_node_error,
)
from node.rpc.format import d, format_transaction
from node.rpc.namespaces import ALL_NAMESPACES, DEFAULT_API, DEV_NAMESPACES
from node.rpc.registry import (
    CHAIN,
    READ,
    Continue,
    Handler,
    Lane,
    Method,
    client_context,
    method_table,
)
from node.worker import ChainWorker
from state import ReadTimeout, read_deadline

log = logging.getLogger("ailedger.rpc")

MAX_BODY = 5 * 1024 * 1024
MAX_BATCH = 1000
#: A batch's bounds as a whole (geth: --rpc.batch-response-max-size 25 MB): wall time,
#: and bytes of answers; calls past either are answered -32005 without running.
BATCH_SECONDS = 60.0
MAX_BATCH_RESPONSE = 25 * 1024 * 1024
#: An oversized body up to this size is read and dropped before the 413 is sent; a larger
#: one is answered at once and the connection closed.
MAX_DRAIN = 64 * 1024 * 1024
#: How long one worker job may keep taking calls of a batch before it hands back.
JOB_SECONDS = 0.05
#: Notifications a slow WebSocket client may leave unread before it is dropped.
SUBSCRIPTION_BUFFER = 10_000
#: Subscriptions one WebSocket connection may hold.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 1000
#: Browser origins a dev chain answers unless told otherwise: pages served from this
#: machine (a dApp's dev server), on any port. Never a remote site's page.


@dataclass(frozen=True)
class RPCSettings:
    """What one node's RPC serves, and to whom."""

    namespaces: tuple[str, ...] = DEFAULT_API
    """Method namespaces served (geth's --http.api): eth, net, web3, txpool, ai, ..."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call: exact origins, ``scheme://host:*`` for any port,
    or ``*`` for any. Empty: no browser page may call (non-browser clients send no
    Origin and are unaffected)."""
    read_timeout: float | None = 10.0
    """Wall-clock budget of one read-lane call (long reads, eth_call's state reads)."""


@dataclass(frozen=True)
class _Resume:
    """A call whose next step runs as a new worker job (see methods.Continue)."""

    run: Callable[[], dict[str, Any] | _Resume | None]


def parse_api(value: str | Iterable[str], dev: bool) -> tuple[str, ...]:
    """The namespaces of a ``--http-api`` value, checked: each must exist, and the dev
    namespaces only on a dev chain. Raises ValueError with a message for the operator."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    known = sorted(ALL_NAMESPACES)
    for name in names:
        if name not in ALL_NAMESPACES:
            raise ValueError(f"unknown API namespace {name!r}; known: {', '.join(known)}")
        if name in DEV_NAMESPACES and not dev:
            raise ValueError(
                f"the {name} namespace edits state or rewinds blocks and is served only by "
                "`ailedger dev`; a node on a real chain never serves it"
            )
    return tuple(dict.fromkeys(names))


def parse_origins(value: str | Iterable[str]) -> tuple[str, ...]:
    items = [o.strip().rstrip("/") for o in (value.split(",") if isinstance(value, str) else value) if o.strip()]
    for origin in items:
        if origin != "*" and not urlsplit(origin).scheme:
            raise ValueError(f"bad CORS origin {origin!r}: expected scheme://host[:port], scheme://host:* or *")
    return tuple(items)


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Whether a browser ``Origin`` matches an entry: ``*``, the exact origin, or
    ``scheme://host:*`` (that host on any port)."""
    origin = origin.rstrip("/")
    for entry in allowed:
        if entry == "*" or entry == origin:
            return True
        if entry.endswith(":*"):
            want, got = urlsplit(entry[:-2]), urlsplit(origin)
            try:
                got.port  # noqa: B018 - raises on a malformed port
            except ValueError:
                continue
            same_host = (want.scheme, want.hostname) == (got.scheme, got.hostname)
            if same_host and not got.path and not got.username and not got.query:
                return True
    return False


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

    def __init__(
        self, core: ChainCore, worker: ChainWorker, settings: RPCSettings | None = None,
        read_worker: ChainWorker | None = None,
    ) -> None:
        self.core = core
        self.worker = worker
        #: Runs READ-lane methods (eth_call, long reads) beside the chain thread.
        self.read_worker = read_worker or worker
        self.settings = settings or RPCSettings()
        self.methods: dict[str, Method] = method_table(self.settings.namespaces)
        #: Set when this node serves ai_infer (a sidecar and a validator key).
        self.inference: InferenceService | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self._next_sub = 1
        #: The trio loop chain events are handed to (None outside one: tools and tests
        #: that only dispatch calls).
        self._token: trio.lowlevel.TrioToken | None = None
        try:
            self._token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass

    # -- dispatch -------------------------------------------------------------------------

    async def handle_text(
        self, body: bytes | str, conn: WebSocketConnection | None = None, client: str = ""
    ) -> str | None:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return json.dumps(_error(None, ParseError(f"parse error: {e}")))
        if isinstance(payload, list):
            if not payload:
                return json.dumps(_error(None, InvalidRequest("empty batch")))
            if len(payload) > MAX_BATCH:
                return json.dumps(_error(None, InvalidRequest(f"batch too large: {len(payload)} calls, limit {MAX_BATCH}")))
            return await self._handle_batch(payload, conn, client)
        response = await self.handle_call(payload, conn, client)
        return json.dumps(response) if response is not None else None

    async def _handle_batch(self, calls: list[Any], conn: WebSocketConnection | None, client: str) -> str | None:
        """Answer a batch. Consecutive calls for one worker share a job, but a job stops
        taking calls after JOB_SECONDS, so a long batch never holds a worker for long and
        other callers' jobs and block production run in between. The batch as a whole
        has geth's bounds, a time budget and a response size: calls past either get an
        error instead of running."""
        deadline = time.monotonic() + BATCH_SECONDS
        responses: list[str] = []
        size = 0
        i = 0
        while i < len(calls):
            call = calls[i]
            worker = self.read_worker if self._lane_of(call) == READ else self.worker
            replies: list[dict[str, Any] | _Resume | None]
            if time.monotonic() > deadline or size > MAX_BATCH_RESPONSE:
                reason = "time budget" if size <= MAX_BATCH_RESPONSE else "response size limit"
                replies = [_error(
                    call.get("id") if isinstance(call, dict) else None,
                    LimitExceeded(f"batch {reason} exceeded ({BATCH_SECONDS:g} s, {MAX_BATCH_RESPONSE} bytes); call not run"),
                )]
            elif isinstance(call, dict) and call.get("method") in _CONNECTION_METHODS:
                replies = [await self._connection_call(call, conn)]
            else:
                try:
                    replies = await worker.run(self._dispatch_run, calls, i, self._lane_of(call), client)
                except NodeError as e:  # the worker refused the job (busy)
                    replies = [_error(call.get("id") if isinstance(call, dict) else None, from_node_error(e))]
            i += len(replies)
            for reply in replies:
                while isinstance(reply, _Resume):  # only a group's last reply; same worker
                    reply = await worker.run(reply.run)
                if reply is not None:
                    responses.append(json.dumps(reply))
                    size += len(responses[-1])
        return "[" + ", ".join(responses) + "]" if responses else None

    def _lane_of(self, call: Any) -> Lane:
        name = call.get("method") if isinstance(call, dict) else None
        method = self.methods.get(name) if isinstance(name, str) else None
        return method.lane if method is not None else CHAIN

    def _dispatch_run(self, calls: list[Any], start: int, lane: Lane, client: str) -> list[dict[str, Any] | _Resume | None]:
        """On a worker: answer ``calls[start:]`` while they belong to ``lane`` and the job
        is younger than JOB_SECONDS (at least one call)."""
        began = time.perf_counter()
        out = [self.dispatch(calls[start], client)]
        j = start + 1
        while j < len(calls) and time.perf_counter() - began < JOB_SECONDS and not isinstance(out[-1], _Resume):
            call = calls[j]
            if (isinstance(call, dict) and call.get("method") in _CONNECTION_METHODS) or self._lane_of(call) != lane:
                break
            out.append(self.dispatch(call, client))
            j += 1
        return out

    async def handle_call(
        self, call: Any, conn: WebSocketConnection | None, client: str = ""
    ) -> dict[str, Any] | None:
        if isinstance(call, dict) and call.get("method") in _CONNECTION_METHODS:
            return await self._connection_call(call, conn)
        if isinstance(call, dict) and call.get("method") in ASYNC_METHODS and self._serves(call["method"]):
            return await self._async_call(call)
        name = call.get("method") if isinstance(call, dict) else None
        method = self.methods.get(name) if isinstance(name, str) else None
        worker = self.read_worker if method is not None and method.lane == READ else self.worker
        try:
            reply = await worker.run(self.dispatch, call, client)
            while isinstance(reply, _Resume):  # long work, one short job at a time
                reply = await worker.run(reply.run)
        except NodeError as e:  # the worker refused the job (busy)
            return _error(call.get("id") if isinstance(call, dict) else None, from_node_error(e))
        return reply

    def dispatch(self, call: Any, client: str = "") -> dict[str, Any] | _Resume | None:
        """Answer one call (on a worker thread): validate, run, shape the response."""
        checked = _check_call(call)
        if isinstance(checked, dict):
            return checked
        call_id, method, params = checked
        entry = self.methods.get(method)
        if entry is None:
            metrics.RPC_REQUESTS.labels("unknown", "error").inc()
            error = MethodNotFound(f"the method {method} does not exist/is not available")
            return _error(call_id, error) if "id" in call else None
        if len(params) > entry.max_params:
            metrics.RPC_REQUESTS.labels(method, "error").inc()
            too_many = InvalidParams(f"too many arguments, want at most {entry.max_params}")
            return _error(call_id, too_many) if "id" in call else None
        handler = cast("Handler", entry.handler)
        return self._answer(entry, call_id, "id" in call, client, lambda: handler(self.core, params))

    def _answer(
        self, entry: Method, call_id: Any, wants_reply: bool, client: str, work: Callable[[], Any]
    ) -> dict[str, Any] | _Resume | None:
        """Run one step of a call under its limits and map what it raises, once."""
        started = time.perf_counter()
        deadline = None
        if entry.lane == READ and self.settings.read_timeout:
            deadline = time.monotonic() + self.settings.read_timeout
        try:
            with client_context(client), read_deadline(deadline):
                result = work()
            if isinstance(result, Continue):
                step = result.step
                return _Resume(lambda: self._answer(entry, call_id, wants_reply, client, step))
            response: dict[str, Any] = {"jsonrpc": "2.0", "id": call_id, "result": result}
            outcome = "ok"
        except RPCError as e:
            outcome = "error"
            response = _error(call_id, e)
        except NodeError as e:
            outcome = "error"
            response = _error(call_id, from_node_error(e))
        except ReadTimeout:
            outcome = "error"
            response = _error(call_id, from_node_error(node_errors.LimitExceeded(
                f"request aborted: it read past the node's {self.settings.read_timeout:g} s budget; "
                "ask for less (fewer blocks, a smaller page)"
            )))
        except Exception as e:  # a bug must not take the node down: report it as -32603
            log.exception("internal error in %s", entry.name)
            outcome = "error"
            response = _error(call_id, InternalError(f"internal error: {type(e).__name__}: {e}"))
        metrics.RPC_REQUESTS.labels(entry.name, outcome).inc()
        metrics.RPC_SECONDS.labels(entry.name).observe(time.perf_counter() - started)
        return response if wants_reply else None  # notifications get no response

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

    def _serves(self, method: str) -> bool:
        """Whether this node serves ``method``'s namespace (``--http-api``)."""
        return method.split("_", 1)[0] in self.settings.namespaces

    async def _async_call(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """A method that waits on more than the chain (ai_infer): it runs on the trio loop and
        hands only its chain steps to the worker, so blocks keep coming meanwhile."""
        checked = _check_call(call)
        if isinstance(checked, dict):
            return checked
        call_id, method, params = checked
        started = time.perf_counter()
        try:
            response: dict[str, Any] = {"jsonrpc": "2.0", "id": call_id,
                                        "result": await ASYNC_METHODS[method](self, params)}
            outcome = "ok"
        except RPCError as e:
            outcome, response = "error", _error(call_id, e)
        except NodeError as e:
            outcome, response = "error", _error(call_id, from_node_error(e))
        except Exception as e:
            log.exception("internal error in %s", method)
            outcome, response = "error", _error(call_id, InternalError(f"internal error: {type(e).__name__}: {e}"))
        metrics.RPC_REQUESTS.labels(method, outcome).inc()
        metrics.RPC_SECONDS.labels(method).observe(time.perf_counter() - started)
        return response if "id" in call else None

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
        if len(conn.subscriptions) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise LimitExceeded(f"too many subscriptions: at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} per connection")
        sid = "0x" + (self._next_sub).to_bytes(16, "big").hex()
        self._next_sub += 1
        sub = Subscription(sid, kind, conn, options)
        conn.subscriptions[sid] = sub
        self.subscriptions[sid] = sub
        self._sync_listener()
        return sid

    def unsubscribe(self, params: list[Any], conn: WebSocketConnection | None) -> bool:
        if conn is None:
            raise MethodNotFound("notifications not supported")
        if not params or not isinstance(params[0], str):
            raise InvalidParams("invalid argument 0: expected a subscription id")
        sub = conn.subscriptions.pop(params[0], None)
        self.subscriptions.pop(params[0], None)
        self._sync_listener()
        return sub is not None

    def drop_connection(self, conn: WebSocketConnection) -> None:
        for sid in conn.subscriptions:
            self.subscriptions.pop(sid, None)
        conn.subscriptions.clear()
        conn.closed = True
        self._sync_listener()

    def _sync_listener(self) -> None:
        # The chain formats events only while someone listens.
        self.core.listener = self._on_event if self.subscriptions else None

    def _on_event(self, kind: str, payload: Any) -> None:
        """Called on the chain thread: hand the event to the trio loop, never blocking."""
        if self._token is None:
            return
        try:
            self._token.run_sync_soon(self.deliver, kind, payload)
        except trio.RunFinishedError:
            pass

    def deliver(self, kind: str, payload: Any) -> None:
        """Deliver one chain event to subscribers (runs on the trio loop)."""
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

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    def _cors(self, scope: dict[str, Any]) -> tuple[bool, list[tuple[bytes, bytes]]]:
        """(allowed, CORS response headers) for a request: allowed when it carries no
        Origin (not a browser) or a listed one; headers grant only a listed origin."""
        origin_raw = dict(scope.get("headers", [])).get(b"origin")
        if origin_raw is None:
            return True, []
        origin = origin_raw.decode("latin-1")
        if not origin_allowed(origin, self.settings.cors_origins):
            return False, []
        return True, [
            (b"access-control-allow-origin", origin_raw),
            (b"vary", b"Origin"),
            (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
            (b"access-control-allow-headers", b"content-type"),
            (b"access-control-max-age", b"600"),
        ]

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        allowed, cors = self._cors(scope)
        if not allowed:
            await _respond(send, 403, b"origin not allowed; start the node with --cors-origins to allow it\n", "text/plain")
            return
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, b"", extra=cors)
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b"JSON-RPC: send a POST with a JSON body\n", "text/plain", cors)
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
            response = await self.handle_text(b"".join(chunks), None, _client_of(scope))
            nursery.cancel_scope.cancel()
        if hung_up:
            return
        await _respond(send, 200, (response or "").encode(), extra=cors)

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if not self._cors(scope)[0]:
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
                        conn.push(_error(None, InvalidRequest("message too large")))
                        continue
                    response = await self.handle_text(body, conn, client)
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
