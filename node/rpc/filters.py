"""Logs and polling filters (``eth_getLogs``, ``eth_newFilter``, ``eth_getFilterChanges``, ...)
and the log formatting that subscriptions share.

A node holds at most :data:`MAX_FILTERS` filters, :data:`MAX_FILTERS_PER_CLIENT` per client
(the caller's address), and drops any not polled for :data:`FILTER_TIMEOUT`. A full node makes
room by the fair share rule (as geth's pool does): a client holding no filter always gets one,
any other client gets one more only from a client that would still hold more; the filter that
goes is the least recently polled of the clients holding the most. So 20 addresses holding 500
filters each cannot lock the next wallet out. A log query spans
at most :data:`MAX_LOG_RANGE` blocks and answers at most :data:`MAX_LOGS` logs. Pending-
transaction filters share one bounded log of admitted hashes, fed by the chain's events, so a
transaction costs O(1) whatever the number of filters.

Runs on the chain worker, except :meth:`FilterRegistry.logs` and
:meth:`FilterRegistry.filter_logs`, which read only committed blocks and may run on the read
worker (the latter hands its bookkeeping back through a deque).
"""

from __future__ import annotations

import collections
import functools
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockAPI

from node import metrics
from node.chain.core import ChainCore
from node.chain.events import ChainEvent, ChainReset, TransactionAdmitted, bloom_mask
from node.chain.reader import LogFilter
from node.errors import LimitExceeded, NotFound, Refused
from node.rpc.format import format_log, hex_data
from state import Ledger

#: How long a filter lives without being polled (geth: 5 minutes).
FILTER_TIMEOUT = 300.0
#: Most blocks one eth_getLogs may scan.
MAX_LOG_RANGE = 10_000
#: Most logs one eth_getLogs may return.
MAX_LOGS = 10_000
#: Most installed filters on one node, and per client (its IP address).
MAX_FILTERS = 10_000
MAX_FILTERS_PER_CLIENT = 500
#: Most pending-transaction hashes kept for pending filters; a filter polled less often
#: than this many transactions arrive misses the oldest (they are still in the pool).
PENDING_LOG_SIZE = 10_000
#: Most block hashes one eth_getFilterChanges returns; the rest come with the next poll.
MAX_FILTER_BLOCKS = 10_000


@dataclass
class Filter:
    kind: str
    """'block', 'pending' or 'logs'."""
    client: str = ""
    """Who installed it (the caller's address), for the per-client cap."""
    criteria: LogFilter | None = None
    next_block: int = 0
    """First block number not yet reported (block and log filters)."""
    next_pending: int = 0
    """Sequence number of the first pending transaction not yet reported."""
    last_poll: float = field(default_factory=time.monotonic)


class FilterRegistry:
    """The polling filters of one node, and its log queries."""

    def __init__(self, core: ChainCore) -> None:
        self.core = core
        #: Installed filters, least recently polled first (so expiry is O(expired)).
        self.filters: collections.OrderedDict[int, Filter] = collections.OrderedDict()
        self._filters_per_client: collections.Counter[str] = collections.Counter()
        #: Each client's filters, least recently polled first (the one the fair share rule takes).
        self._by_client: dict[str, collections.OrderedDict[int, None]] = {}
        #: Filters polled from the read worker (eth_getFilterLogs), to move to the back
        #: of ``filters`` on the chain thread (deque appends are thread-safe).
        self._touched: collections.deque[int] = collections.deque()
        self._next_filter_id = 1
        #: (sequence number, hash) of recent pending transactions, shared by all pending
        #: filters: a new transaction costs O(1) whatever the number of filters.
        self._pending_log: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=PENDING_LOG_SIZE)
        self._pending_seq = 0
        core.events.subscribe(self._on_chain_event)

    def _on_chain_event(self, event: ChainEvent) -> None:
        if isinstance(event, TransactionAdmitted):
            self._pending_seq += 1
            self._pending_log.append((self._pending_seq, bytes(event.tx.hash)))
        elif isinstance(event, ChainReset):
            self.filters.clear()
            self._filters_per_client.clear()
            self._by_client.clear()
            self._pending_log.clear()
            metrics.FILTERS.set(0)

    def logs(self, criteria: LogFilter, from_number: int | None = None, to_number: int | None = None) -> list[dict[str, Any]]:
        if criteria.block_hash is not None:
            header = self.core.ledger.header_by_hash(criteria.block_hash)
            if header is None:
                raise NotFound("unknown block")
            headers = [header]
        else:
            start = from_number if from_number is not None else self.core.block_number_of(criteria.from_block)
            end = to_number if to_number is not None else self.core.block_number_of(criteria.to_block)
            end = min(end, int(self.core.ledger.head.block_number))
            if start > end:
                return []
            if end - start + 1 > MAX_LOG_RANGE:
                raise Refused(f"block range greater than {MAX_LOG_RANGE} max")
            # only the blocks whose bloom may hold a match are read (the header's bloom first)
            might = bloom_test(criteria)
            headers = [self.core.ledger.stored_header(h)
                       for h, bloom in self.core.ledger.blooms(start, end) if bloom and might(bloom)]
        out: list[dict[str, Any]] = []
        for header in headers:
            if header.bloom == 0:
                continue
            block = self.core.ledger.block(header)
            for log in block_logs(self.core.ledger, block):
                if matches(log, criteria):
                    out.append(log)
                    if len(out) > MAX_LOGS:
                        raise Refused(f"query returned more than {MAX_LOGS} results")
        return out

    def new_filter(self, kind: str, criteria: LogFilter | None = None, client: str = "") -> int:
        """Install a filter; O(1) apart from expiring filters that timed out."""
        self.expire_filters()
        if self._filters_per_client[client] >= MAX_FILTERS_PER_CLIENT:
            raise LimitExceeded(
                f"too many filters: at most {MAX_FILTERS_PER_CLIENT} per client; uninstall some "
                f"or let them expire ({FILTER_TIMEOUT:g} s unpolled)"
            )
        if len(self.filters) >= MAX_FILTERS:
            self._make_room(client)
        fid = self._next_filter_id
        self._next_filter_id += 1
        next_block = int(self.core.ledger.head.block_number) + 1
        if criteria is not None and criteria.from_block.number is not None:
            next_block = criteria.from_block.number
        self.filters[fid] = Filter(kind, client, criteria, next_block, self._pending_seq + 1)
        self._filters_per_client[client] += 1
        self._by_client.setdefault(client, collections.OrderedDict())[fid] = None
        metrics.FILTERS.set(len(self.filters))
        return fid

    def _poll(self, fid: int) -> Filter:
        f = self.filters.get(fid)
        if f is None:
            raise Refused("filter not found")
        f.last_poll = time.monotonic()
        self.filters.move_to_end(fid)
        self._by_client[f.client].move_to_end(fid)
        return f

    def _make_room(self, client: str) -> None:
        """The node is full: take the least recently polled filter of the clients holding the
        most, if they would still hold more than ``client`` (or ``client`` holds none); else
        refuse. O(clients), at most MAX_FILTERS of them."""
        mine = self._filters_per_client[client]
        held = {c: n for c, n in self._filters_per_client.items() if c != client and n > 0}
        most = max(held.values(), default=0)
        if not (most > mine + 1 or (mine == 0 and most > 0)):
            raise LimitExceeded(f"too many filters: this node holds at most {MAX_FILTERS}")
        victim = min((next(iter(self._by_client[c])) for c, n in held.items() if n == most),
                     key=lambda fid: self.filters[fid].last_poll)
        f = self.filters.pop(victim)
        self._forget(victim, f.client)

    def filter_changes(self, fid: int) -> list[Any]:
        """What a filter saw since its last poll, at most one page (the rest next poll)."""
        f = self._poll(fid)
        head = int(self.core.ledger.head.block_number)
        if f.kind == "pending":
            log = self._pending_log
            if not log or f.next_pending > log[-1][0]:
                return []
            skip = max(0, f.next_pending - log[0][0])
            out = [hex_data(h) for _, h in itertools.islice(log, skip, None)]
            f.next_pending = log[-1][0] + 1
            return out
        if f.kind == "block":
            last = min(head, f.next_block + MAX_FILTER_BLOCKS - 1)
            hashes = []
            for n in range(f.next_block, last + 1):
                header = self.core.ledger.header_by_number(n)
                if header is not None:
                    hashes.append(hex_data(header.hash))
            f.next_block = max(f.next_block, last + 1)
            return hashes
        assert f.criteria is not None
        end = head
        if f.criteria.to_block.number is not None:
            end = min(end, f.criteria.to_block.number)
        end = min(end, f.next_block + MAX_LOG_RANGE - 1)
        logs = self.logs(f.criteria, f.next_block, end) if f.next_block <= end else []
        f.next_block = max(f.next_block, end + 1)
        return logs

    def filter_logs(self, fid: int) -> list[dict[str, Any]]:
        """eth_getFilterLogs. Runs on the read worker (it may scan MAX_LOG_RANGE blocks):
        it only reads the filter table and leaves the reordering to the chain thread."""
        f = self.filters.get(fid)
        if f is None or f.kind != "logs" or f.criteria is None:
            raise Refused("filter not found")
        f.last_poll = time.monotonic()
        self._touched.append(fid)
        return self.logs(f.criteria)

    def uninstall_filter(self, fid: int) -> bool:
        f = self.filters.pop(fid, None)
        if f is None:
            return False
        self._forget(fid, f.client)
        return True

    def _forget(self, fid: int, client: str) -> None:
        """Bookkeeping of a filter already taken out of :attr:`filters`."""
        metrics.FILTERS.set(len(self.filters))
        self._filters_per_client[client] -= 1
        if self._filters_per_client[client] <= 0:
            del self._filters_per_client[client]
        own = self._by_client.get(client)
        if own is not None:
            own.pop(fid, None)
            if not own:
                del self._by_client[client]

    def expire_filters(self, now: float | None = None) -> int:
        """Drop filters unpolled for FILTER_TIMEOUT; O(number dropped). Runs on a timer
        and before each install. Returns how many were dropped."""
        while self._touched:
            fid = self._touched.popleft()
            if fid in self.filters:
                self.filters.move_to_end(fid)
                self._by_client[self.filters[fid].client].move_to_end(fid)
        cutoff = (time.monotonic() if now is None else now) - FILTER_TIMEOUT
        dropped = 0
        while self.filters:
            fid, f = next(iter(self.filters.items()))
            if f.last_poll >= cutoff:
                break
            del self.filters[fid]
            self._forget(fid, f.client)
            dropped += 1
        return dropped


def block_logs(
    ledger: Ledger, block: BlockAPI, removed: bool = False, receipts: tuple[Any, ...] | None = None
) -> list[dict[str, Any]]:
    """A block's logs as JSON-RPC formats them (its receipts read from ``ledger`` unless given)."""
    out = []
    log_index = 0
    if receipts is None:
        receipts = ledger.receipts(block)
    for i, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
        for log in receipt.logs:
            out.append(format_log(log, block.header, tx, i, log_index, removed))
            log_index += 1
    return out


@functools.lru_cache(maxsize=256)
def _wanted(criteria: LogFilter) -> tuple[frozenset[str], tuple[frozenset[str] | None, ...]]:
    """A filter's addresses and topics as sets of the formatted hex, built once per
    filter rather than once per log (a filter may name 1,000 of each)."""
    return (
        frozenset(hex_data(a) for a in criteria.addresses),
        tuple(None if t is None else frozenset(hex_data(x) for x in t) for t in criteria.topics),
    )


#: Past this many alternatives at one position (addresses or one topic), the bloom test skips
#: that position: testing them would cost more than reading the block.
MAX_BLOOM_ALTERNATIVES = 32


def bloom_test(criteria: LogFilter) -> Callable[[int], bool]:
    """A test of a block's logs bloom: False only when no log of the block can match
    ``criteria`` (every wanted position must have one of its values in the bloom, as in
    Ethereum's bloom: the address and each topic of every log are added to it)."""
    positions = [criteria.addresses, *(t for t in criteria.topics if t is not None)]
    masks: list[list[int]] = []
    for values in positions:
        if not values or len(values) > MAX_BLOOM_ALTERNATIVES:
            continue
        masks.append([bloom_mask(bytes(v)) for v in values])

    def might(bloom: int) -> bool:
        return all(any(bloom & m == m for m in alternatives) for alternatives in masks)
    return might


def matches(log: dict[str, Any], criteria: LogFilter) -> bool:
    """Whether a formatted log satisfies filter ``criteria`` (queries and subscriptions)."""
    addresses, topic_sets = _wanted(criteria)
    if addresses and log["address"] not in addresses:
        return False
    topics = log["topics"]
    for position, wanted in enumerate(topic_sets):
        if wanted is None:
            continue
        if position >= len(topics) or topics[position] not in wanted:
            return False
    return True

