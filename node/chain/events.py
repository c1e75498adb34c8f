"""The chain's one way out for events: typed events, fired on the chain thread, to every
subscriber (RPC subscriptions and filters, p2p gossip, the consensus reactor, metrics).

A subscriber runs on the chain worker thread, in the middle of admitting a transaction or
committing a block, so it must not block: it hands the event to its own loop (a trio token,
a deque) and returns. One that raises is logged and skipped; it never stops the chain.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI
from eth_bloom import BloomFilter

log = logging.getLogger("ailedger")


class Origin(enum.Enum):
    """Where a transaction or block came from: decides who passes it on."""

    LOCAL = "local"
    """A transaction sent to this node's RPC, or a block this node built (automine, interval,
    dev mining): the network gossips it."""
    PEER = "peer"
    """A transaction relayed by a peer: already gossiped, not re-announced by this node."""
    SYNC = "sync"
    """A block imported from a peer (block sync or a gossiped block with its commit)."""
    CONSENSUS = "consensus"
    """A block decided by BFT consensus and committed here: gossiped to followers."""


@dataclass(frozen=True)
class TransactionAdmitted:
    """A transaction entered the pool."""

    tx: SignedTransactionAPI
    origin: Origin


@dataclass(frozen=True)
class BlockCommitted:
    """A block became the head, with its commit, in one atomic write."""

    block: BlockAPI
    origin: Origin
    receipts: tuple[ReceiptAPI, ...] | None = None
    """The block's receipts when the committer has them at hand (a block built here); None
    means read them from the ledger if needed."""

    def may_log(self, *addresses: bytes) -> bool:
        """Whether any log of the block may come from one of ``addresses``, from its header's
        bloom: False is certain, so a subscriber that only wants those logs skips reading the
        receipts (a trie walk and a decode of every receipt: the largest cost of a commit that
        looked at them)."""
        bloom = int(self.block.header.bloom)
        return any(bloom & (m := bloom_mask(a)) == m for a in addresses)


@functools.lru_cache(maxsize=1024)
def bloom_mask(value: bytes) -> int:
    """The bits an address or topic sets in a logs bloom: a bloom may hold it when
    ``bloom & mask == mask``."""
    return int(BloomFilter.from_iterable([value]))


@dataclass(frozen=True)
class ChainReset:
    """A dev chain went back to its genesis (anvil_reset): the pool is empty and every block
    after genesis is gone, so whatever was derived from them goes too."""


ChainEvent = TransactionAdmitted | BlockCommitted | ChainReset
Subscriber = Callable[[ChainEvent], None]


class ChainEvents:
    """Subscribers of chain events, called in subscription order on the chain thread."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> None:
        if fn not in self._subscribers:
            self._subscribers.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        if fn in self._subscribers:
            self._subscribers.remove(fn)

    def publish(self, event: ChainEvent) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:
                log.exception("a chain event subscriber failed on %s", type(event).__name__)
