"""The transaction pool, built as geth's legacy pool is: per-sender nonce order, queued
future nonces, replacement by a price bump, a sender's pooled transactions paid for
together, per-sender and global slot limits, and price-based eviction when full.

Every refusal raises :class:`PoolError` with geth's message. Admission is all-or-nothing:
a refused transaction leaves the pool exactly as it was.

Limits (geth's ``--txpool.*`` flags, same defaults):

- a transaction takes ``ceil(size / 32 KiB)`` slots (1..4 under the 128 KiB size cap);
- executable ("pending") transactions share ``global_slots``; each sender is guaranteed
  ``account_slots`` of them. When the pool is full, the fair share rule makes room for a sender
  at or under its guarantee: it takes the place of the newest transaction of the sender holding
  the most (the cheapest such, among equals), if that sender would still hold more than it, and
  always when it holds nothing yet. So 320 sybil senders holding 16 block-sized transactions
  each (which leave one per block) cannot keep a newcomer out for 5,120 blocks (issue 19);
- otherwise a newcomer gets in only by paying strictly more than the cheapest transaction
  of another sender, which it evicts (so an equal or cheaper one never churns the pool);
- future ("queued") transactions are capped per sender (``account_queue``) and together
  (``global_queue``), never evict executable ones, and are dropped after ``lifetime``;
- a sender's pooled transactions must together cost no more than its balance
  (``gas * max fee + value`` each), so one funded account cannot park work it could never
  pay for.

Thread-confined: the node calls it only from its chain worker thread, next to the ledger
whose state it checks against.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eth.abc import SignedTransactionAPI

#: Bytes per pool slot (geth's txSlotSize).
SLOT_SIZE = 32 * 1024


class PoolError(ValueError):
    """A transaction the pool refuses; the message is the one geth gives."""


@dataclass(frozen=True)
class PoolConfig:
    """The pool's limits; names and defaults follow geth's ``--txpool.*`` flags."""

    price_bump: int = 10
    """Percent by which a replacement must raise both fee caps (``--txpool.pricebump``)."""
    account_slots: int = 16
    """Executable slots each sender is guaranteed (``--txpool.accountslots``)."""
    global_slots: int = 5120
    """Executable slots of all senders together (``--txpool.globalslots``)."""
    account_queue: int = 64
    """Future (gapped) transactions one sender may park (``--txpool.accountqueue``)."""
    global_queue: int = 1024
    """Future transaction slots of all senders together (``--txpool.globalqueue``)."""
    lifetime: int = 3 * 3600
    """Seconds a future transaction may wait for its gap to fill (``--txpool.lifetime``)."""


def max_fee(tx: SignedTransactionAPI) -> int:
    """The fee cap per gas: ``max_fee_per_gas`` (a legacy transaction's is its gas price)."""
    return int(tx.max_fee_per_gas)


def max_tip(tx: SignedTransactionAPI) -> int:
    """The tip cap per gas: ``max_priority_fee_per_gas``, which may be 0 (wallets send 0 on dev
    chains); never a fallback to ``gas_price``, which a fee-market transaction does not have."""
    return int(tx.max_priority_fee_per_gas)


def tx_cost(tx: SignedTransactionAPI) -> int:
    """The most ``tx`` can take from its sender: ``gas * max fee + value``."""
    return int(tx.gas) * max_fee(tx) + int(tx.value)


def tx_slots(tx: SignedTransactionAPI) -> int:
    return max(1, -(-len(tx.encode()) // SLOT_SIZE))


def price_key(tx: SignedTransactionAPI, base_fee: int) -> tuple[int, int]:
    """How much ``tx`` pays the block producer at ``base_fee``: its effective tip, then its
    fee cap (geth's priced list orders the same way). Higher is better."""
    fee = max_fee(tx)
    return min(max_tip(tx), fee - base_fee), fee


@dataclass
class PoolEntry:
    tx: SignedTransactionAPI
    sender: bytes
    seq: int
    """Arrival order: among equal prices, blocks take the earlier first."""
    slots: int
    cost: int
    added: float = 0.0
    """When it entered the pool (the pool's clock), for the queue's lifetime."""


_HeapItem = tuple[tuple[int, int], int, PoolEntry]
"""(price at the heap's base fee, -arrival, entry): the cheapest, then the newest, first."""


@dataclass
class AccountView:
    """What admission needs to know of the sender at the head."""

    nonce: int
    balance: int


@dataclass
class TxPool:
    chain_id: int
    config: PoolConfig = field(default_factory=PoolConfig)
    pending: dict[bytes, dict[int, PoolEntry]] = field(default_factory=dict)
    """Executable transactions: nonces contiguous from the sender's account nonce."""
    queued: dict[bytes, dict[int, PoolEntry]] = field(default_factory=dict)
    """Future transactions waiting for a nonce gap to fill (or for room in pending)."""
    by_hash: dict[bytes, PoolEntry] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    _seq: itertools.count = field(default_factory=itertools.count)
    _spent: dict[bytes, int] = field(default_factory=dict)
    """Per sender: the summed cost of all its pooled transactions."""
    _slots: dict[str, int] = field(default_factory=lambda: {"pending": 0, "queued": 0})
    _counts: dict[str, int] = field(default_factory=lambda: {"pending": 0, "queued": 0})
    _tails: dict[str, dict[bytes, int]] = field(default_factory=lambda: {"pending": {}, "queued": {}})
    """Per table and sender: its highest nonce (the transaction eviction would take)."""
    _heaps: dict[str, list[_HeapItem]] = field(default_factory=lambda: {"pending": [], "queued": []})
    """Per table: every sender's tail by price at ``_heap_fee`` (lazily cleaned of stale items)."""
    _heap_fee: dict[str, int | None] = field(default_factory=lambda: {"pending": None, "queued": None})
    _over: set[bytes] = field(default_factory=set)
    """Senders holding more executable transactions than their guarantee."""
    _holding: dict[int, set[bytes]] = field(default_factory=dict)
    """Senders by how many executable transactions they hold (the fair share rule's order)."""

    def __len__(self) -> int:
        return len(self.by_hash)

    @property
    def pending_count(self) -> int:
        return self._counts["pending"]

    @property
    def queued_count(self) -> int:
        return self._counts["queued"]

    @property
    def pending_slots(self) -> int:
        return self._slots["pending"]

    @property
    def queued_slots(self) -> int:
        return self._slots["queued"]

    def spent(self, sender: bytes) -> int:
        """What all of ``sender``'s pooled transactions may cost together."""
        return self._spent.get(sender, 0)

    def next_nonce(self, sender: bytes, account_nonce: int) -> int:
        """The nonce a new transaction from ``sender`` should use (pending included)."""
        txs = self.pending.get(sender, {})
        nonce = account_nonce + len(txs)
        if txs and (nonce - 1 not in txs or nonce in txs):  # not contiguous (mid-update): walk
            nonce = account_nonce
            while nonce in txs:
                nonce += 1
        return nonce

    # -- bookkeeping: every change to the tables goes through these ---------------------------

    def _table(self, kind: str) -> dict[bytes, dict[int, PoolEntry]]:
        return self.pending if kind == "pending" else self.queued

    def _clear(self) -> None:
        self.pending, self.queued, self.by_hash, self._spent = {}, {}, {}, {}
        self._slots = {"pending": 0, "queued": 0}
        self._counts = {"pending": 0, "queued": 0}
        self._tails = {"pending": {}, "queued": {}}
        self._heaps = {"pending": [], "queued": []}
        self._heap_fee = {"pending": None, "queued": None}
        self._over = set()
        self._holding = {}

    def _put(self, kind: str, entry: PoolEntry) -> None:
        sender, nonce = entry.sender, entry.tx.nonce
        txs = self._table(kind).setdefault(sender, {})
        txs[nonce] = entry
        self.by_hash[entry.tx.hash] = entry
        self._spent[sender] = self._spent.get(sender, 0) + entry.cost
        self._slots[kind] += entry.slots
        self._counts[kind] += 1
        tail = self._tails[kind].get(sender)
        if tail is None or nonce >= tail:
            self._tails[kind][sender] = nonce
            self._push(kind, entry)
        if kind == "pending":
            self._hold(sender, len(txs) - 1, len(txs))
            if len(txs) > self.config.account_slots:
                self._over.add(sender)

    def _hold(self, sender: bytes, before: int, after: int) -> None:
        if before:
            bucket = self._holding[before]
            bucket.discard(sender)
            if not bucket:
                del self._holding[before]
        if after:
            self._holding.setdefault(after, set()).add(sender)

    def _drop(self, kind: str, entry: PoolEntry) -> None:
        sender, nonce = entry.sender, entry.tx.nonce
        table = self._table(kind)
        txs = table[sender]
        del txs[nonce]
        del self.by_hash[entry.tx.hash]
        left = self._spent[sender] - entry.cost
        if left:
            self._spent[sender] = left
        else:
            del self._spent[sender]
        self._slots[kind] -= entry.slots
        self._counts[kind] -= 1
        if not txs:
            del table[sender]
            del self._tails[kind][sender]
        elif self._tails[kind][sender] == nonce:
            below = _below(txs, nonce)
            assert below is not None
            self._tails[kind][sender] = below
            self._push(kind, txs[below])
        if kind == "pending":
            self._hold(sender, len(txs) + 1, len(txs))
            if len(txs) <= self.config.account_slots:
                self._over.discard(sender)

    def _push(self, kind: str, entry: PoolEntry) -> None:
        fee = self._heap_fee[kind]
        if fee is not None:
            heapq.heappush(self._heaps[kind], (price_key(entry.tx, fee), -entry.seq, entry))

    def _price_heap(self, kind: str, base_fee: int) -> list[_HeapItem]:
        """The table's tails by price at ``base_fee``; rebuilt when the base fee moved (once
        a block) or stale items pile up."""
        heap = self._heaps[kind]
        if self._heap_fee[kind] != base_fee or len(heap) > 4 * len(self._tails[kind]) + 64:
            table = self._table(kind)
            heap = [
                (price_key(e.tx, base_fee), -e.seq, e)
                for s, n in self._tails[kind].items() for e in (table[s][n],)
            ]
            heapq.heapify(heap)
            self._heaps[kind], self._heap_fee[kind] = heap, base_fee
        return heap

    # -- admission --------------------------------------------------------------------------

    def add(
        self,
        tx: SignedTransactionAPI,
        account: AccountView,
        base_fee: int,
        gas_limit: int,
    ) -> bool:
        """Admit ``tx``; returns True when it is executable now (pending), False when
        queued. Raises :class:`PoolError` with geth's message otherwise, changing nothing."""
        if tx.hash in self.by_hash:
            raise PoolError("already known")
        chain_id = getattr(tx, "chain_id", None)
        if chain_id is not None and chain_id != self.chain_id:
            raise PoolError(f"invalid chain id: have {chain_id}, want {self.chain_id}")
        if tx.gas > gas_limit:
            raise PoolError("exceeds block gas limit")
        intrinsic = tx.intrinsic_gas
        if tx.gas < intrinsic:
            raise PoolError(f"intrinsic gas too low: gas {tx.gas}, minimum needed {intrinsic}")
        if max_tip(tx) > max_fee(tx):
            raise PoolError(
                f"max priority fee per gas higher than max fee per gas: maxPriorityFeePerGas: "
                f"{max_tip(tx)}, maxFeePerGas: {max_fee(tx)}"
            )
        if max_fee(tx) < base_fee:
            raise PoolError(
                f"transaction underpriced: max fee per gas {max_fee(tx)} less than "
                f"block base fee {base_fee}"
            )
        sender = tx.sender
        if tx.nonce < account.nonce:
            raise PoolError(f"nonce too low: next nonce {account.nonce}, tx nonce {tx.nonce}")
        cost = tx_cost(tx)
        if account.balance < cost:
            raise PoolError(
                f"insufficient funds for gas * price + value: balance {account.balance}, "
                f"tx cost {cost}, overshot {cost - account.balance}"
            )
        spent = self.spent(sender)
        old_kind, old = self._find(sender, tx.nonce)
        if old is not None:
            bump = 100 + self.config.price_bump
            if max_fee(tx) * 100 < max_fee(old.tx) * bump or max_tip(tx) * 100 < max_tip(old.tx) * bump:
                raise PoolError("replacement transaction underpriced")
            need = spent - old.cost + cost
            if need > account.balance:
                raise PoolError(
                    f"insufficient funds for gas * price + value: balance {account.balance}, "
                    f"queued cost {spent}, tx bumped {cost - old.cost}, overshot {need - account.balance}"
                )
        elif spent + cost > account.balance:
            raise PoolError(
                f"insufficient funds for gas * price + value: balance {account.balance}, "
                f"queued cost {spent}, tx cost {cost}, overshot {spent + cost - account.balance}"
            )
        entry = PoolEntry(tx, sender, next(self._seq), tx_slots(tx), cost, self.clock())
        if old is not None:
            kind = old_kind
        elif tx.nonce == self.next_nonce(sender, account.nonce):
            kind = "pending"
        else:
            kind = "queued"
        # Plan the room first, then change anything: a refusal must leave the pool as it was.
        freed = old.slots if old is not None else 0
        evict = self._plan_room(kind, entry, entry.slots - freed, base_fee)
        for victim_kind, victim in evict:
            self._drop(victim_kind, victim)
        if old is not None:
            self._drop(old_kind, old)
        self._put(kind, entry)
        if kind == "pending":
            self._promote(sender)
        return kind == "pending"

    def _find(self, sender: bytes, nonce: int) -> tuple[str, PoolEntry | None]:
        entry = self.pending.get(sender, {}).get(nonce)
        if entry is not None:
            return "pending", entry
        return "queued", self.queued.get(sender, {}).get(nonce)

    def _plan_room(self, kind: str, entry: PoolEntry, needed: int, base_fee: int) -> list[tuple[str, PoolEntry]]:
        """The transactions to evict so that ``entry`` fits in ``kind``; raises when none may go.

        Changes nothing but the order of the price heap: a refusal leaves the pool as it was.
        Costs O(log n) per candidate, so a flood of refused transactions stays cheap.
        """
        sender = entry.sender
        table = self._table(kind)
        if kind == "queued":
            own = self.queued.get(sender, {})
            if entry.tx.nonce not in own and len(own) >= self.config.account_queue:
                raise PoolError(f"account limit exceeded: {len(own)} future transactions queued")
            limit = self.config.global_queue
        else:
            limit = self.config.global_slots
        free = limit - self._slots[kind]
        if needed <= free:
            return []
        plan: list[tuple[str, PoolEntry]] = []
        planned: set[int] = set()
        tails: dict[bytes, int | None] = {}  # senders' tails once the planned victims are gone
        counts: dict[bytes, int] = {}
        heap = self._price_heap(kind, base_fee)
        keep: list[_HeapItem] = []  # popped items that must go back
        own_count = len(table.get(sender, {})) + (0 if entry.tx.nonce in table.get(sender, {}) else 1)
        price = price_key(entry.tx, base_fee)

        def take(victim: PoolEntry) -> None:
            s = victim.sender
            plan.append((kind, victim))
            planned.add(id(victim))
            counts[s] = counts.get(s, len(table[s])) - 1
            below = _below(table[s], victim.tx.nonce)
            tails[s] = below
            if below is not None:  # the sender's next tail is a candidate now
                heapq.heappush(heap, (price_key(table[s][below].tx, base_fee), -table[s][below].seq, table[s][below]))

        try:
            while needed > free:
                victim: PoolEntry | None = None
                if kind == "pending" and own_count <= self.config.account_slots:
                    # Fairness first (geth's truncatePending, and a newcomer always gets in):
                    # the sender holding the most gives up its newest transaction, whatever it
                    # pays, if it would still hold more than the newcomer, or the newcomer holds
                    # nothing yet.
                    top = self._most_held(sender, counts, tails, base_fee)
                    if top is not None and (top[0] > own_count or (own_count == 1 and top[0] >= 1)):
                        victim = top[1]
                while victim is None:
                    if not heap:
                        raise PoolError("txpool is full")
                    item = heapq.heappop(heap)
                    candidate = item[2]
                    s, nonce = candidate.sender, candidate.tx.nonce
                    tail = tails[s] if s in tails else self._tails[kind].get(s)
                    if table.get(s, {}).get(nonce) is not candidate or id(candidate) in planned or nonce != tail:
                        continue  # stale: its sender's real tail is in the heap too
                    keep.append(item)
                    if s == sender:
                        continue
                    if item[0] >= price:
                        raise PoolError("transaction underpriced")
                    victim = candidate
                take(victim)
                free += victim.slots
        finally:
            for item in keep:
                heapq.heappush(heap, item)
        return plan

    def _most_held(
        self, sender: bytes, counts: dict[bytes, int], tails: dict[bytes, int | None], base_fee: int,
    ) -> tuple[int, PoolEntry] | None:
        """(how many it holds, its newest transaction) of the sender other than ``sender``
        holding the most executable transactions once the planned victims (``counts``,
        ``tails``) are gone; among equals, the one whose newest transaction pays least, then
        the latest. Walks down from the largest holding: the cost is the number of senders
        holding the most, not all senders."""
        best: tuple[int, tuple[tuple[int, int], int], PoolEntry] | None = None
        for held in sorted(self._holding, reverse=True):
            if best is not None and held < best[0]:
                break
            for s in self._holding[held]:
                if s == sender:
                    continue
                count = counts.get(s, held)
                tail = tails[s] if s in tails else self._tails["pending"].get(s)
                if count == 0 or tail is None:
                    continue
                entry = self.pending[s][tail]
                rank = (price_key(entry.tx, base_fee), -entry.seq)
                if best is None or count > best[0] or (count == best[0] and rank < best[1]):
                    best = (count, rank, entry)
        return None if best is None else (best[0], best[2])

    def _promote(self, sender: bytes) -> None:
        """Move queued transactions whose gap has just filled into pending, while there is
        room (promotion never evicts; a later block makes room)."""
        pending = self.pending.get(sender, {})
        queued = self.queued.get(sender, {})
        nonce = max(pending) + 1 if pending else None
        while nonce is not None and nonce in queued:
            entry = queued[nonce]
            if self.pending_slots + entry.slots > self.config.global_slots:
                break
            self._drop("queued", entry)
            self._put("pending", entry)
            nonce += 1

    # -- blocks -----------------------------------------------------------------------------

    def select(self, gas_limit: int, base_fee: int = 0, budget: bool = True) -> list[SignedTransactionAPI]:
        """Transactions for the next block: the best-paying first (effective tip at
        ``base_fee``, then arrival), each sender's in nonce order; with ``budget``, only
        as many as their declared gas fits in ``gas_limit``, else all of them, for a block
        builder that counts the gas they really use. A sender whose next transaction
        cannot pay ``base_fee`` waits."""
        heads = []
        iters = {}
        for sender, txs in self.pending.items():
            ordered = [txs[n] for n in sorted(txs)]
            iters[sender] = iter(ordered)
            first = next(iters[sender])
            if max_fee(first.tx) >= base_fee:
                heads.append((_order(first, base_fee), sender, first))
        heapq.heapify(heads)
        chosen: list[SignedTransactionAPI] = []
        gas_left = gas_limit
        while heads:
            _, sender, entry = heapq.heappop(heads)
            if entry.tx.gas > gas_left:
                continue  # this sender's later nonces cannot go before it either
            chosen.append(entry.tx)
            if budget:
                gas_left -= entry.tx.gas
            following = next(iters[sender], None)
            if following is not None and max_fee(following.tx) >= base_fee:
                heapq.heappush(heads, (_order(following, base_fee), sender, following))
        return chosen

    def remove(self, tx_hashes: set[bytes]) -> None:
        """Forget these transactions (mined, or dropped by the block builder). Later nonces
        of the same senders may be left gapped: :meth:`reset` re-sorts them."""
        for h in tx_hashes:
            entry = self.by_hash.get(h)
            if entry is None:
                continue
            kind, found = self._find(entry.sender, entry.tx.nonce)
            if found is entry:
                self._drop(kind, entry)

    def reset(
        self,
        nonce_of: Callable[[bytes], int],
        balance_of: Callable[[bytes], int] | None = None,
        gas_limit: int | None = None,
    ) -> list[bytes]:
        """Re-sort every sender after the head moved (a block, or a rewind): drop what is
        now stale (nonce used, no longer affordable together, over the gas limit, future
        and older than the lifetime), split the rest into pending and queued again, and
        trim the queue to its limits. Returns the dropped hashes."""
        dropped: list[bytes] = []
        expired = self.clock() - self.config.lifetime
        by_sender: dict[bytes, list[PoolEntry]] = {}
        for e in self.by_hash.values():
            by_sender.setdefault(e.sender, []).append(e)
        self._clear()
        # Senders in order of their earliest arrival, so that room in pending goes first come,
        # first served when it is short.
        senders = sorted(by_sender, key=lambda s: min(e.seq for e in by_sender[s]))
        for sender in senders:
            nonce = nonce_of(sender)
            balance = balance_of(sender) if balance_of is not None else None
            spent = 0
            for e in sorted(by_sender[sender], key=lambda e: e.tx.nonce):
                if e.tx.nonce < nonce:
                    dropped.append(e.tx.hash)
                    continue
                if gas_limit is not None and e.tx.gas > gas_limit:
                    dropped.append(e.tx.hash)
                    continue
                if balance is not None and spent + e.cost > balance:
                    dropped.append(e.tx.hash)
                    continue
                spent += e.cost
                executable = e.tx.nonce == nonce and self.pending_slots + e.slots <= self.config.global_slots
                if not executable and e.added < expired:
                    dropped.append(e.tx.hash)  # waited out its lifetime for the gap to fill
                    continue
                if executable:
                    self._put("pending", e)
                    nonce += 1
                else:
                    self._put("queued", e)
                    nonce = -1  # a gap (or no room): the rest of this sender waits too
        dropped.extend(self._trim_queue())
        return dropped

    def _trim_queue(self) -> list[bytes]:
        """Drop the newest future transactions of the senders holding the most, until every
        sender and the whole queue are within their limits."""
        dropped: list[bytes] = []
        for sender in list(self.queued):
            txs = self.queued[sender]
            for n in sorted(txs)[self.config.account_queue :]:
                dropped.append(txs[n].tx.hash)
                self._drop("queued", txs[n])
        while self.queued_slots > self.config.global_queue:
            sender = max(self.queued, key=lambda s: (len(self.queued[s]), s))
            txs = self.queued[sender]
            entry = txs[max(txs)]
            dropped.append(entry.tx.hash)
            self._drop("queued", entry)
        return dropped

    def content(self) -> tuple[dict[bytes, list[SignedTransactionAPI]], dict[bytes, list[SignedTransactionAPI]]]:
        def flat(table: dict[bytes, dict[int, PoolEntry]]) -> dict[bytes, list[SignedTransactionAPI]]:
            return {s: [txs[n].tx for n in sorted(txs)] for s, txs in table.items()}

        return flat(self.pending), flat(self.queued)


def _below(txs: dict[int, PoolEntry], nonce: int) -> int | None:
    """The highest nonce in ``txs`` under ``nonce`` (pending nonces are contiguous)."""
    if nonce - 1 in txs:
        return nonce - 1
    return max((n for n in txs if n < nonce), default=None)


def _order(entry: PoolEntry, base_fee: int) -> tuple[int, int, int]:
    tip, fee = price_key(entry.tx, base_fee)
    return -tip, -fee, entry.seq
