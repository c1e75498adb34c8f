"""WebSocket subscriptions (``eth_subscribe``): ``newHeads``, ``logs``,
``newPendingTransactions`` and ``syncing``.

Chain events are produced on the chain thread and handed to the trio loop through its token
as they happen, never blocking the chain. Each connection has a bounded outbox: a client
that stops reading is dropped with its subscriptions instead of growing the node's memory,
and it may hold at most MAX_SUBSCRIPTIONS_PER_CONNECTION subscriptions. The chain formats
events only while someone listens.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, ChainEvent, TransactionAdmitted
from node.rpc import params as p
from node.rpc.errors import InvalidParams, LimitExceeded, MethodNotFound
from node.rpc.filters import block_logs, matches
from node.rpc.format import format_header, format_transaction, hex_data
from node.rpc.params import LogFilter
from node.rpc.registry import Params

#: Notifications a slow WebSocket client may leave unread before it is dropped.
SUBSCRIPTION_BUFFER = 10_000
#: Subscriptions one WebSocket connection may hold.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 1000


class Subscription:
    def __init__(self, sid: str, kind: str, conn: WebSocketConnection, options: LogFilter | bool | None) -> None:
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


class Subscriptions:
    """Every live subscription of one server, and the chain listener that feeds them."""

    def __init__(self, core: ChainCore) -> None:
        self.core = core
        self.by_id: dict[str, Subscription] = {}
        self._next_sub = 1
        #: The trio loop chain events are handed to (None outside one: tools and tests
        #: that only dispatch calls).
        self._token: trio.lowlevel.TrioToken | None = None
        try:
            self._token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass

    async def subscribe(self, params: Params, conn: WebSocketConnection | None) -> str:
        if conn is None:
            raise MethodNotFound("notifications not supported")
        if not params or not isinstance(params[0], str):
            raise InvalidParams("invalid argument 0: expected a subscription name")
        kind = params[0]
        options: LogFilter | bool | None = None
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
        self.by_id[sid] = sub
        self._sync_listener()
        return sid

    def unsubscribe(self, params: Params, conn: WebSocketConnection | None) -> bool:
        if conn is None:
            raise MethodNotFound("notifications not supported")
        if not params or not isinstance(params[0], str):
            raise InvalidParams("invalid argument 0: expected a subscription id")
        sub = conn.subscriptions.pop(params[0], None)
        self.by_id.pop(params[0], None)
        self._sync_listener()
        return sub is not None

    def drop_connection(self, conn: WebSocketConnection) -> None:
        for sid in conn.subscriptions:
            self.by_id.pop(sid, None)
        conn.subscriptions.clear()
        conn.closed = True
        self._sync_listener()

    def _sync_listener(self) -> None:
        # The chain formats events only while someone listens.
        if self.by_id:
            self.core.events.subscribe(self._on_chain_event)
        else:
            self.core.events.unsubscribe(self._on_chain_event)

    def _on_chain_event(self, event: ChainEvent) -> None:
        """Called on the chain thread: format the event (a block's logs are read here, where
        the ledger lives) and hand it to the trio loop, never blocking."""
        if isinstance(event, TransactionAdmitted):
            self._on_event("newPendingTransactions", event.tx)
            return
        if not isinstance(event, BlockCommitted):
            return
        self._on_event("newHeads", format_header(event.block.header))
        logs = block_logs(self.core.ledger, event.block, receipts=event.receipts)
        if logs:
            self._on_event("logs", logs)

    def _on_event(self, kind: str, payload: Any) -> None:
        if self._token is None:
            return
        try:
            self._token.run_sync_soon(self.deliver, kind, payload)
        except trio.RunFinishedError:
            pass

    def deliver(self, kind: str, payload: Any) -> None:
        """Deliver one chain event to subscribers (runs on the trio loop)."""
        for sub in list(self.by_id.values()):
            if sub.kind != kind:
                continue
            if kind == "logs":
                assert isinstance(sub.options, LogFilter)  # what subscribe parsed for "logs"
                for entry in payload:
                    if matches(entry, sub.options):
                        _notify(sub, entry)
            elif kind == "newPendingTransactions":
                _notify(sub, format_transaction(payload) if sub.options else hex_data(payload.hash))
            else:
                _notify(sub, payload)


def _notify(sub: Subscription, result: Any) -> None:
    sub.conn.push(
        {"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": sub.id, "result": result}}
    )
