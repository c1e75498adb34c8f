"""Dev-chain controls, as anvil and hardhat give them: mining on demand, the clock, snapshots and
reverts, state edits, a reset to genesis, the dev accounts' keys and impersonation.

They rewrite state and history, so only ``ailedger dev`` builds a :class:`DevControls`
(``node.chain.assembly.assemble(dev=True)``); on any other node there is none, the dev
namespaces are not served, and a committed block is final. Runs on the chain worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from eth_account import Account
from eth_utils import to_canonical_address

from node.chain.core import ChainCore
from node.chain.events import ChainReset
from node.chain.producers import SoloProducer
from node.errors import InvalidInput, Refused
from node.txpool import TxPool

#: Most blocks one evm_mine / anvil_mine may build (anvil's and hardhat's scripts mine
#: thousands); the RPC layer builds them a few per job, so others interleave.
MAX_MINE_BLOCKS = 10_000


@dataclass(frozen=True)
class Snapshot:
    head_hash: bytes
    time_offset: int
    state_edit: bytes | None
    """The head's dev-edited state root at snapshot time (anvil_setBalance & co.)."""


class DevControls:
    """A dev chain's controls over its own chain."""

    def __init__(self, core: ChainCore, producer: SoloProducer, dev_keys: Iterable[bytes] = ()) -> None:
        self.core = core
        self.producer = producer
        self.clock = core.clock
        #: The dev accounts' keys (eth_accounts, eth_sendTransaction, eth_sign), by address.
        self.keys: dict[bytes, bytes] = {
            bytes(to_canonical_address(Account.from_key(key).address)): key for key in dev_keys}
        #: Accounts eth_sendTransaction may send from without their key.
        self.impersonated: set[bytes] = set()
        #: anvil_autoImpersonateAccount: every account is impersonated.
        self.auto_impersonate = False
        self.snapshots: dict[int, Snapshot] = {}
        self._next_snapshot_id = 1

    def may_send_as(self, sender: bytes) -> bool:
        """Whether eth_sendTransaction may send from ``sender`` without its key."""
        return self.auto_impersonate or sender in self.impersonated

    # -- mining and time --------------------------------------------------------------

    def mine_blocks(self, count: int, timestamp: int | None = None) -> None:
        """Build ``count`` blocks (evm_mine); the caller splits large counts into jobs."""
        if count > MAX_MINE_BLOCKS:
            raise InvalidInput(f"invalid argument 0: at most {MAX_MINE_BLOCKS} blocks at once")
        for i in range(count):
            self.producer.mine(timestamp if i == 0 else None)

    def set_automine(self, on: bool) -> None:
        self.producer.automine = on

    def increase_time(self, seconds: int) -> int:
        """Move the clock forward: the next block is at least ``seconds`` after the head (or
        after the previous promise), even when blocks have run ahead of the wall clock."""
        clock = self.clock
        clock.offset += seconds
        base = clock.min_next_timestamp if clock.min_next_timestamp is not None else self.core.ledger.head.timestamp
        clock.min_next_timestamp = base + seconds
        return clock.offset

    def set_next_timestamp(self, timestamp: int) -> None:
        """evm_setNextBlockTimestamp: the next block carries ``timestamp``."""
        head = self.core.ledger.head
        if timestamp <= head.timestamp:
            raise Refused(
                f"timestamp error: {timestamp} is lower than or equal to previous block's timestamp {head.timestamp}"
            )
        self.clock.next_timestamp = timestamp
        self.clock.offset = timestamp - int(time.time())

    # -- state and history ------------------------------------------------------------

    def edit_state(
        self, address: bytes, balance: int | None = None, nonce: int | None = None,
        code: bytes | None = None, storage: dict[int, int] | None = None,
    ) -> None:
        """anvil_setBalance & co.: change an account at the head without a block."""
        self.core.ledger.edit_state(address=address, balance=balance, nonce=nonce, code=code, storage=storage)
        self.core.pool.reset(self.core.account_nonce)

    def snapshot(self) -> int:
        sid = self._next_snapshot_id
        self._next_snapshot_id += 1
        ledger = self.core.ledger
        head = ledger.head
        self.snapshots[sid] = Snapshot(head.hash, self.clock.offset, ledger.state_edit(head.hash))
        return sid

    def revert(self, sid: int) -> bool:
        snap = self.snapshots.get(sid)
        if snap is None:
            return False
        # anvil: a snapshot is used up by its revert, and so are all later ones.
        for later in [s for s in self.snapshots if s >= sid]:
            del self.snapshots[later]
        ledger = self.core.ledger
        ledger.rewind(snap.head_hash)
        ledger.restore_state_edit(snap.head_hash, snap.state_edit)
        self.clock.offset = snap.time_offset
        self.clock.next_timestamp = None
        self.clock.min_next_timestamp = None
        self.core.head_changed()
        return True

    def reset(self) -> None:
        """Back to the dev chain's genesis, as anvil_reset: blocks, pool, filters, snapshots
        and the clock go; impersonations stay (as in anvil)."""
        core = self.core
        genesis = core.ledger.header_by_number(0)
        assert genesis is not None
        core.ledger.rewind(genesis.hash)
        core.ledger.restore_state_edit(genesis.hash, None)
        core.pool = TxPool(core.ledger.chain_id, core.pool.config)
        self.snapshots.clear()
        self.clock.reset()
        core.head_changed()
        core.events.publish(ChainReset())
