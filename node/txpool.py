"""The transaction pool: per-sender nonce order, queued future nonces, replacement by fee
bump, and admission checks that give geth's error messages.

Thread-confined: the node calls it only from its chain worker thread, next to the ledger
whose state it checks against.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from eth.abc import SignedTransactionAPI

#: A replacement must raise both fee caps by this many percent (geth's default).
PRICE_BUMP_PERCENT = 10
MAX_PENDING = 8192
MAX_QUEUED_PER_SENDER = 64
MAX_QUEUED = 2048


class PoolError(ValueError):
    """A transaction the pool refuses; the message is the one geth gives."""


def max_fee(tx: SignedTransactionAPI) -> int:
    return int(getattr(tx, "max_fee_per_gas", None) or tx.gas_price)


def max_tip(tx: SignedTransactionAPI) -> int:
    return int(getattr(tx, "max_priority_fee_per_gas", None) or tx.gas_price)


@dataclass
class PoolEntry:
    tx: SignedTransactionAPI
    sender: bytes
    seq: int
    """Arrival order: blocks take transactions first come, first served."""


@dataclass
class AccountView:
    """What admission needs to know of the sender at the head."""

    nonce: int
    balance: int


@dataclass
class TxPool:
    chain_id: int
    pending: dict[bytes, dict[int, PoolEntry]] = field(default_factory=dict)
    """Executable transactions: nonces contiguous from the sender's account nonce."""
    queued: dict[bytes, dict[int, PoolEntry]] = field(default_factory=dict)
    """Future transactions waiting for a nonce gap to fill."""
    by_hash: dict[bytes, PoolEntry] = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self.by_hash)

    @property
    def pending_count(self) -> int:
        return sum(len(v) for v in self.pending.values())

    @property
    def queued_count(self) -> int:
        return sum(len(v) for v in self.queued.values())

    def next_nonce(self, sender: bytes, account_nonce: int) -> int:
        """The nonce a new transaction from ``sender`` should use (pending included)."""
        nonce = account_nonce
        while nonce in self.pending.get(sender, {}):
            nonce += 1
        return nonce

    def add(
        self,
        tx: SignedTransactionAPI,
        account: AccountView,
        base_fee: int,
        gas_limit: int,
    ) -> bool:
        """Admit ``tx``; returns True when it is executable now (pending), False when
        queued. Raises :class:`PoolError` with geth's message otherwise."""
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
        if max_fee(tx) < base_fee:
            raise PoolError(
                f"transaction underpriced: max fee per gas {max_fee(tx)} less than "
                f"block base fee {base_fee}"
            )
        sender = tx.sender
        if tx.nonce < account.nonce:
            raise PoolError(f"nonce too low: next nonce {account.nonce}, tx nonce {tx.nonce}")
        cost = tx.gas * max_fee(tx) + tx.value
        if account.balance < cost:
            raise PoolError(
                f"insufficient funds for gas * price + value: balance {account.balance}, "
                f"tx cost {cost}, overshot {cost - account.balance}"
            )
        old = self.pending.get(sender, {}).get(tx.nonce) or self.queued.get(sender, {}).get(tx.nonce)
        if old is not None:
            bump = 100 + PRICE_BUMP_PERCENT
            if max_fee(tx) * 100 < max_fee(old.tx) * bump or max_tip(tx) * 100 < max_tip(old.tx) * bump:
                raise PoolError("replacement transaction underpriced")
            del self.by_hash[old.tx.hash]
        executable = tx.nonce <= self.next_nonce(sender, account.nonce)
        if not executable and old is None:
            if len(self.queued.get(sender, {})) >= MAX_QUEUED_PER_SENDER or self.queued_count >= MAX_QUEUED:
                raise PoolError("txpool is full")
        if executable and old is None and self.pending_count >= MAX_PENDING:
            raise PoolError("txpool is full")
        entry = PoolEntry(tx, sender, next(self._seq))
        self.by_hash[tx.hash] = entry
        if executable:
            self.pending.setdefault(sender, {})[tx.nonce] = entry
            self._promote(sender)
        else:
            self.queued.setdefault(sender, {})[tx.nonce] = entry
        return executable

    def _promote(self, sender: bytes) -> None:
        """Move queued transactions whose gap has just filled into pending."""
        pending = self.pending.get(sender, {})
        queued = self.queued.get(sender, {})
        nonce = max(pending) + 1 if pending else None
        while nonce is not None and nonce in queued:
            pending[nonce] = queued.pop(nonce)
            nonce += 1
        if not queued:
            self.queued.pop(sender, None)

    def select(self, gas_limit: int) -> list[SignedTransactionAPI]:
        """Transactions for the next block: arrival order, each sender's in nonce order,
        within ``gas_limit``."""
        heads = []
        iters = {}
        for sender, txs in self.pending.items():
            ordered = [txs[n] for n in sorted(txs)]
            iters[sender] = iter(ordered)
            first = next(iters[sender])
            heads.append((first.seq, sender, first))
        heapq.heapify(heads)
        chosen: list[SignedTransactionAPI] = []
        gas_left = gas_limit
        while heads:
            _, sender, entry = heapq.heappop(heads)
            if entry.tx.gas > gas_left:
                continue  # this sender's later nonces cannot go before it either
            chosen.append(entry.tx)
            gas_left -= entry.tx.gas
            following = next(iters[sender], None)
            if following is not None:
                heapq.heappush(heads, (following.seq, sender, following))
        return chosen

    def remove(self, tx_hashes: set[bytes]) -> None:
        for h in tx_hashes:
            entry = self.by_hash.pop(h, None)
            if entry is None:
                continue
            for table in (self.pending, self.queued):
                txs = table.get(entry.sender)
                if txs is not None and txs.get(entry.tx.nonce) is entry:
                    del txs[entry.tx.nonce]
                    if not txs:
                        del table[entry.sender]

    def reset(self, nonce_of: Callable[[bytes], int]) -> list[bytes]:
        """Re-sort every sender after the head moved (a block, or a rewind): drop what is
        now stale, and split the rest into pending and queued again. Returns dropped hashes."""
        dropped: list[bytes] = []
        entries = list(self.by_hash.values())
        self.pending, self.queued, self.by_hash = {}, {}, {}
        by_sender: dict[bytes, list[PoolEntry]] = {}
        for e in entries:
            by_sender.setdefault(e.sender, []).append(e)
        for sender, es in by_sender.items():
            nonce = nonce_of(sender)
            for e in sorted(es, key=lambda e: e.tx.nonce):
                if e.tx.nonce < nonce:
                    dropped.append(e.tx.hash)
                    continue
                self.by_hash[e.tx.hash] = e
                if e.tx.nonce == nonce:
                    self.pending.setdefault(sender, {})[nonce] = e
                    nonce += 1
                else:
                    self.queued.setdefault(sender, {})[e.tx.nonce] = e
            self._promote(sender)
        return dropped

    def content(self) -> tuple[dict[bytes, list[SignedTransactionAPI]], dict[bytes, list[SignedTransactionAPI]]]:
        def flat(table: dict[bytes, dict[int, PoolEntry]]) -> dict[bytes, list[SignedTransactionAPI]]:
            return {s: [txs[n].tx for n in sorted(txs)] for s, txs in table.items()}

        return flat(self.pending), flat(self.queued)
