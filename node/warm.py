"""Reads the node prepares before anyone asks for them.

A published version's training set is what every lineage through it lists (``ai_getLineage``,
``ai_getReceipt``, the explorer's model and receipt pages): three state reads a contribution,
about 0.75 s for 1,000 contributions on a cold cache, then kept (``datanets.version_training_set``).
The node reads it once when the version is published, as a job of the read worker's own (client
""), so the first person to open an adapter's page does not wait for it. Versions above
:data:`MAX_WARM_CONTRIBUTIONS` are left to the first reader: the warm job must stay short, since
it holds a read thread while it runs.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from ai_precompiles import datanets
from ai_precompiles.addresses import DATANETS
from node.chain.core import ChainCore
from node.chain.events import BlockCommitted, ChainEvent
from node.worker import ChainWorker

log = logging.getLogger("ailedger.rpc")

#: Largest version warmed (about 2.5 s of one read thread at the largest).
MAX_WARM_CONTRIBUTIONS = 10_000
#: Contributions warmed per minute at most, and versions waiting at most: anyone may publish a
#: version (of a datanet of their own) in every block, so the warming is budgeted, not owed.
WARM_BUDGET_PER_MINUTE = 20_000
MAX_WAITING = 16
_VERSION_PUBLISHED = datanets.PRECOMPILE.abi.events["VersionPublished"].topic0


class TrainingSetWarmer:
    """Reads newly published versions' training sets on the read worker, within a budget."""

    def __init__(self, core: ChainCore, reads: ChainWorker, clock: Callable[[], float] = time.monotonic) -> None:
        self.core = core
        self.reads = reads
        self.clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[int, int]] = {}
        """datanet -> (latest version published, its count), warmed by the one job posted."""
        self._posted = False
        self._spent: collections.deque[tuple[float, int]] = collections.deque()

    def on_chain_event(self, event: ChainEvent) -> None:
        """A chain-events subscriber (chain thread): bounded by the block's logs; the reading is
        posted to the read worker (one job at a time), never done here."""
        if not isinstance(event, BlockCommitted) or not event.block.transactions or (
                event.receipts is None and not event.may_log(DATANETS)):
            return
        receipts = event.receipts if event.receipts is not None else self.core.ledger.receipts(event.block)
        for receipt in receipts:
            for entry in receipt.logs:
                if bytes(entry.address) != DATANETS or len(entry.topics) < 3 or entry.topics[0] != _VERSION_PUBLISHED:
                    continue
                count = int.from_bytes(bytes(entry.data)[32:64], "big")
                with self._lock:
                    if count <= MAX_WARM_CONTRIBUTIONS and (
                            entry.topics[1] in self._waiting or len(self._waiting) < MAX_WAITING):
                        self._waiting[entry.topics[1]] = (entry.topics[2], count)
                    if self._waiting and not self._posted:
                        self._posted = True
                        self.reads.post(self._warm)

    def _take(self) -> tuple[int, int] | None:
        """The next version to warm, if the minute's budget allows it."""
        with self._lock:
            now = self.clock()
            while self._spent and self._spent[0][0] < now - 60:
                self._spent.popleft()
            used = sum(n for _, n in self._spent)
            for datanet_id, (version, count) in list(self._waiting.items()):
                del self._waiting[datanet_id]
                if used + count <= WARM_BUDGET_PER_MINUTE:
                    self._spent.append((now, count))
                    return datanet_id, version
            self._posted = False
            return None

    def _warm(self) -> None:
        while (job := self._take()) is not None:
            datanet_id, version = job
            try:
                datanets.version_training_set(self.core.ledger.state_at(self.core.ledger.head), datanet_id, version)
            except Exception as error:  # noqa: BLE001 - a warm read that fails costs only its speed-up
                log.debug("training set of datanet %d version %d not warmed: %s", datanet_id, version, error)
