"""Each transaction's sender is recovered once: a bounded cache from transaction hash to sender.

Recovering a sender (an ECDSA public-key recovery and two hashes) was the largest cost of
admitting a transaction, and every validator paid it twice: once when the transaction reached
its pool (from a user or a peer), and again when the block carrying it was decoded from a
proposal or from sync. The hash of a signed transaction covers its signature, so a hash seen
with a valid signature names the same sender forever; the cache only has to stay bounded.
Thread-safe (the chain thread and the network side both decode).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from eth.abc import SignedTransactionAPI

from state.impersonation import set_sender

#: Senders remembered; the oldest are forgotten first (a few blocks' worth of a busy chain).
MAX_SENDERS = 65_536


class SenderCache:
    """Transaction hash -> recovered sender, at most ``size`` of them."""

    def __init__(self, size: int = MAX_SENDERS) -> None:
        self.size = size
        self._senders: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._senders)

    def get(self, tx_hash: bytes) -> bytes | None:
        with self._lock:
            return self._senders.get(tx_hash)

    def remember(self, tx_hash: bytes, sender: bytes) -> None:
        with self._lock:
            self._senders[tx_hash] = sender
            while len(self._senders) > self.size:
                self._senders.popitem(last=False)

    def sender_of(self, tx: SignedTransactionAPI) -> bytes:
        """``tx.sender``, recovered only when no transaction with its hash was recovered before
        (what recovery raises on a bad signature propagates)."""
        tx_hash = bytes(tx.hash)
        known = self.get(tx_hash)
        if known is not None:
            set_sender(tx, known)
            return known
        sender = bytes(tx.sender)
        self.remember(tx_hash, sender)
        return sender

    def restore(self, transactions: Iterable[SignedTransactionAPI]) -> None:
        """Give the transactions of a decoded block the senders already recovered for them."""
        for tx in transactions:
            if "sender" not in tx.__dict__:
                known = self.get(bytes(tx.hash))
                if known is not None:
                    set_sender(tx, known)


#: The process's cache: every decoder and the ledger share it.
SENDERS = SenderCache()
