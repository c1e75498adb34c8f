"""JSON-RPC 2.0 over HTTP and WebSocket on one port (an ASGI app served by hypercorn on
the node's trio loop), with geth's transport limits: a body over 5 MiB gets HTTP 413 and
a batch of more than 1,000 calls gets -32600.

Who may call what is the node's choice, made at start (:class:`RPCSettings`): the
namespaces it serves (a method outside them is 'method not found', exactly as one that
does not exist), and the browser origins it answers. A request that carries an
``Origin`` header (every browser POST and WebSocket does) from an origin not listed gets
HTTP 403 and runs nothing: CORS alone would only hide the answer from the page, after
the call had already run.

Every call, alone or in a batch, is looked up in one table (``registry.method_table``) and
runs on its method's lane: the chain worker, the read worker, or the trio loop for ASYNC
methods. A batch's calls run in jobs of at most JOB_SECONDS on their worker, so other callers'
work and block production interleave with a long batch; consecutive sends (``Method.sends``)
are admitted in one job and so share automine's next block. Every job counts against its
caller's share of the worker (``node/worker.py``: the caller's address is the client), so
callers flooding a worker from many connections neither run ahead of another caller's call nor
lock it out. What a method raises is mapped to a
JSON-RPC error in one place (:meth:`RPCServer._rpc_error`). Chain events reach
subscriptions (``subscriptions.py``) through the trio token as they happen.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from node import errors as node_errors
from node import metrics
from node.chain.core import ChainCore
from node.chain.dev import DevControls
from node.chain.reader import NetworkStatus
from node.errors import NodeError
from node.inference import InferenceService
from node.rpc.asgi import MAX_BODY, Receive, Send, serve_asgi
from node.rpc.context import NodeContext
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
from node.rpc.explorer import ExplorerBundle
from node.rpc.filters import FilterRegistry
from node.rpc.namespaces import DEFAULT_API
from node.rpc.registry import (
    ASYNC,
    CHAIN,
    READ,
    AsyncHandler,
    Continue,
    Handler,
    Json,
    Lane,
    Method,
    Params,
    client_context,
    method_table,
)
from node.rpc.subscriptions import Subscriptions, WebSocketConnection
from node.sidecar_watch import SidecarWatch
from node.training import TrainingService
from node.worker import ChainWorker
from state import ReadTimeout, read_deadline

__all__ = ["MAX_BATCH", "MAX_BODY", "RPCServer", "RPCSettings"]

log = logging.getLogger("ailedger.rpc")

MAX_BATCH = 1000
#: A batch's bounds as a whole (geth: --rpc.batch-response-max-size 25 MB): wall time,
#: and bytes of answers; calls past either are answered -32005 without running.
BATCH_SECONDS = 60.0
MAX_BATCH_RESPONSE = 25 * 1024 * 1024
#: How long one worker job may keep taking calls of a batch before it hands back: seconds of the
#: worker thread's CPU time, not of the wall clock, so that on a loaded machine a job still does
#: the same work (and a batch's sends still share large blocks) while every job is slowed alike.
JOB_SECONDS = 0.05


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
    explorer: bool = False
    """Serve the explorer's static bundle at ``/explorer`` on the same port (``explorer.py``)."""


Reply = dict[str, Any]


@dataclass(frozen=True)
class _Resume:
    """A call whose next step runs as a new worker job (see registry.Continue)."""

    run: Callable[[], Reply | _Resume | None]


class RPCServer:
    """Dispatches JSON-RPC payloads to the methods' lanes and feeds subscriptions; handlers get
    the node's parts as a :class:`node.rpc.context.NodeContext`, never the server."""

    def __init__(
        self, core: ChainCore, worker: ChainWorker, settings: RPCSettings | None = None,
        read_worker: ChainWorker | None = None, inference: InferenceService | None = None,
        dev: DevControls | None = None, network: NetworkStatus | None = None,
        sidecar_watch: SidecarWatch | None = None, training: TrainingService | None = None,
    ) -> None:
        """``read_worker`` runs READ-lane methods (eth_call, long reads) beside the chain
        thread; ``inference`` serves ai_infer (a sidecar and a validator key); ``dev`` are a dev
        chain's controls; ``network`` is the network side's status (peers, sync);
        ``sidecar_watch`` the state of the inference service's sidecar; ``training`` takes
        ai_train's jobs (its runner is started beside the server)."""
        self.core = core
        self.worker = worker
        self.settings = settings or RPCSettings()
        self.methods: dict[str, Method] = method_table(self.settings.namespaces)
        self.filters = FilterRegistry(core)
        self.context = NodeContext(core, self.filters, worker, read_worker or worker,
                                   network or NetworkStatus(), dev, inference, sidecar_watch, training)
        self.subscriptions = Subscriptions(core)
        #: Read and checked once here: a node asked to serve a broken bundle refuses to start.
        self.explorer = ExplorerBundle.load() if self.settings.explorer else None

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

    async def _handle_batch(self, calls: list[Json], conn: WebSocketConnection | None, client: str) -> str | None:
        """Answer a batch. Consecutive calls for one worker share a job, but a job stops
        taking calls after JOB_SECONDS, so a long batch never holds a worker for long and
        other callers' jobs and block production run in between. An ASYNC call is awaited
        on the loop as it would be alone. The batch as a whole has geth's bounds, a time
        budget and a response size: calls past either get an error instead of running."""
        deadline = time.monotonic() + BATCH_SECONDS
        responses: list[str] = []
        size = 0
        i = 0
        while i < len(calls):
            call = calls[i]
            lane = self._lane_of(call)
            worker = self.context.read_worker if lane is READ else self.worker
            replies: list[Reply | _Resume | None]
            if time.monotonic() > deadline or size > MAX_BATCH_RESPONSE:
                reason = "time budget" if size <= MAX_BATCH_RESPONSE else "response size limit"
                replies = [_error(
                    _id_of(call),
                    LimitExceeded(f"batch {reason} exceeded ({BATCH_SECONDS:g} s, {MAX_BATCH_RESPONSE} bytes); call not run"),
                )]
            elif _is_connection_call(call):
                replies = [await self._connection_call(call, conn)]
            elif lane is ASYNC:
                replies = [await self._async_call(call)]
            else:
                try:
                    replies = await worker.run(self._dispatch_run, calls, i, lane, client, client=client)
                except NodeError as e:  # the worker refused the job (busy)
                    replies = [_error(_id_of(call), self._rpc_error("", e))]
            i += len(replies)
            while any(isinstance(reply, _Resume) for reply in replies):  # same worker, in order
                replies = await worker.run(self._resume_run, replies, client=client)
            for reply in replies:
                if reply is not None:
                    responses.append(json.dumps(reply))
                    size += len(responses[-1])
        return "[" + ", ".join(responses) + "]" if responses else None

    def _method_of(self, call: Json) -> Method | None:
        name = call.get("method") if isinstance(call, dict) else None
        return self.methods.get(name) if isinstance(name, str) else None

    def _lane_of(self, call: Json) -> Lane:
        method = self._method_of(call)
        return method.lane if method is not None else CHAIN

    def _dispatch_run(self, calls: list[Json], start: int, lane: Lane, client: str) -> list[Reply | _Resume | None]:
        """On a worker: answer ``calls[start:]`` while they belong to ``lane`` and the job
        is younger than JOB_SECONDS (at least one call)."""
        began = time.thread_time()
        out = [self.dispatch(calls[start], client)]
        j = start + 1
        while j < len(calls) and time.thread_time() - began < JOB_SECONDS:
            call = calls[j]
            if _is_connection_call(call) or self._lane_of(call) != lane:
                break
            if isinstance(out[-1], _Resume) and not (self._sends(calls[j - 1]) and self._sends(call)):
                break  # what comes next sees the work of the call before it done
            out.append(self.dispatch(call, client))
            j += 1
        return out

    def _sends(self, call: Json) -> bool:
        method = self._method_of(call)
        return method is not None and method.sends

    @staticmethod
    def _resume_run(replies: list[Reply | _Resume | None]) -> list[Reply | _Resume | None]:
        """On a worker: run the next step of a group's waiting calls, in order, while the job is
        younger than JOB_SECONDS (at least one)."""
        began = time.thread_time()
        out: list[Reply | _Resume | None] = []
        ran = False
        for reply in replies:
            if isinstance(reply, _Resume) and (not ran or time.thread_time() - began < JOB_SECONDS):
                out.append(reply.run())
                ran = True
            else:
                out.append(reply)
        return out

    async def handle_call(self, call: Json, conn: WebSocketConnection | None, client: str = "") -> Reply | None:
        if _is_connection_call(call):
            return await self._connection_call(call, conn)
        lane = self._lane_of(call)
        if lane is ASYNC:
            return await self._async_call(call)
        worker = self.context.read_worker if lane is READ else self.worker
        try:
            reply = await worker.run(self.dispatch, call, client, client=client)
            while isinstance(reply, _Resume):  # long work, one short job at a time
                reply = await worker.run(reply.run, client=client)
        except NodeError as e:  # the worker refused the job (busy)
            return _error(_id_of(call), self._rpc_error("", e))
        return reply

    def _prepare(self, call: Json) -> tuple[Json, Method, Params] | Reply | None:
        """(id, method, params) of a call this node serves with acceptable parameters, or
        the answer that refuses it (None for a refused notification)."""
        checked = _check_call(call)
        if isinstance(checked, dict):
            return checked
        call_id, method, params = checked
        wants_reply = isinstance(call, dict) and "id" in call
        entry = self.methods.get(method)
        if entry is None:
            metrics.RPC_REQUESTS.labels("unknown", "error").inc()
            error = MethodNotFound(f"the method {method} does not exist/is not available")
            return _error(call_id, error) if wants_reply else None
        if len(params) > entry.max_params:
            metrics.RPC_REQUESTS.labels(method, "error").inc()
            too_many = InvalidParams(f"too many arguments, want at most {entry.max_params}")
            return _error(call_id, too_many) if wants_reply else None
        return call_id, entry, params

    def dispatch(self, call: Json, client: str = "") -> Reply | _Resume | None:
        """Answer one CHAIN or READ call (on a worker thread): validate, run, shape the
        response."""
        prepared = self._prepare(call)
        if not isinstance(prepared, tuple):
            return prepared
        call_id, entry, params = prepared
        wants_reply = isinstance(call, dict) and "id" in call
        if entry.lane is ASYNC:  # a caller outside the loop (a tool, a test) cannot await it
            return _error(call_id, InternalError(f"{entry.name} runs on the event loop: use handle_call"))
        handler = cast(Handler, entry.handler)
        context = self.context
        return self._answer(entry, call_id, wants_reply, client, lambda: handler(context, params))

    def _answer(
        self, entry: Method, call_id: Json, wants_reply: bool, client: str, work: Callable[[], object]
    ) -> Reply | _Resume | None:
        """Run one step of a call under its limits and map what it raises."""
        started = time.perf_counter()
        deadline = None
        if entry.lane is READ and self.settings.read_timeout:
            deadline = time.monotonic() + self.settings.read_timeout
        try:
            with client_context(client), read_deadline(deadline):
                result = work()
            if isinstance(result, Continue):
                step = result.step
                return _Resume(lambda: self._answer(entry, call_id, wants_reply, client, step))
            response: Reply = {"jsonrpc": "2.0", "id": call_id, "result": result}
            outcome = "ok"
        except Exception as e:
            outcome = "error"
            response = _error(call_id, self._rpc_error(entry.name, e))
        metrics.RPC_REQUESTS.labels(entry.name, outcome).inc()
        metrics.RPC_SECONDS.labels(entry.name).observe(time.perf_counter() - started)
        return response if wants_reply else None  # notifications get no response

    async def _async_call(self, call: Json) -> Reply | None:
        """An ASYNC method (ai_infer): it runs on the trio loop and hands only its chain
        steps to a worker, so blocks keep coming meanwhile."""
        prepared = self._prepare(call)
        if not isinstance(prepared, tuple):
            return prepared
        call_id, entry, params = prepared
        handler = cast(AsyncHandler, entry.handler)
        started = time.perf_counter()
        try:
            response: Reply = {"jsonrpc": "2.0", "id": call_id, "result": await handler(self.context, params)}
            outcome = "ok"
        except Exception as e:
            outcome, response = "error", _error(call_id, self._rpc_error(entry.name, e))
        metrics.RPC_REQUESTS.labels(entry.name, outcome).inc()
        metrics.RPC_SECONDS.labels(entry.name).observe(time.perf_counter() - started)
        return response if isinstance(call, dict) and "id" in call else None

    def _rpc_error(self, method: str, error: Exception) -> RPCError:
        """The JSON-RPC error that reports what a call raised, for every lane: typed errors
        keep their codes, a read past its budget is -32005, and anything else is a bug,
        logged in full and reported as -32603 (it must not take the node down)."""
        if isinstance(error, RPCError):
            return error
        if isinstance(error, NodeError):
            return from_node_error(error)
        if isinstance(error, ReadTimeout):
            return from_node_error(node_errors.LimitExceeded(
                f"request aborted: it read past the node's {self.settings.read_timeout:g} s budget; "
                "ask for less (fewer blocks, a smaller page)"
            ))
        log.exception("internal error in %s", method)
        return InternalError(f"internal error: {type(error).__name__}: {error}")

    async def _connection_call(self, call: Json, conn: WebSocketConnection | None) -> Reply | None:
        checked = _check_call(call)
        if isinstance(checked, dict):
            return checked
        call_id, method, params = checked
        try:
            if method == "eth_subscribe":
                result: Json = await self.subscriptions.subscribe(params, conn)
            else:
                result = self.subscriptions.unsubscribe(params, conn)
        except RPCError as e:
            metrics.RPC_REQUESTS.labels(method, "error").inc()
            return _error(call_id, e)
        metrics.RPC_REQUESTS.labels(method, "ok").inc()
        return {"jsonrpc": "2.0", "id": call_id, "result": result} if isinstance(call, dict) and "id" in call else None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """The ASGI app hypercorn serves (``asgi.py``: HTTP, WebSocket, CORS, body limits)."""
        await serve_asgi(self, scope, receive, send)


_CONNECTION_METHODS = ("eth_subscribe", "eth_unsubscribe")


def _is_connection_call(call: Json) -> bool:
    """eth_subscribe and eth_unsubscribe: answered by the connection, not by a method."""
    return isinstance(call, dict) and call.get("method") in _CONNECTION_METHODS


def _id_of(call: Json) -> Json:
    return call.get("id") if isinstance(call, dict) else None


def _check_call(call: Json) -> tuple[Json, str, Params] | Reply:
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


def _error(call_id: Json, error: RPCError) -> Reply:
    return {"jsonrpc": "2.0", "id": call_id, "error": error.to_json()}
