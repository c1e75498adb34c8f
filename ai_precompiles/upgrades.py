"""Named rule changes ("upgrades") that a passed governance proposal schedules at a height.

An upgrade is code: :data:`KNOWN` is the table of every upgrade this release can apply, by name.
A proposal (``Governance.proposeUpgrade``) names one and a height; once executed, the schedule is
in state (:class:`ScheduledUpgrade`, in the governance account), so every node reads the same
schedule. Two rules follow:

- **Applied by height, during execution.** A rule an upgrade changes is looked up for the block
  being executed: :func:`gas_price` gives a precompile function's price from the schedule of the
  latest active upgrade that sets it, else from its ``gas.*`` parameter. Nothing is rewritten at
  the height, so replaying, tracing or re-executing any block gives the same result on every
  node, and a block below the height keeps the old rule.
- **A node that lacks an upgrade stops.** The chain accepts any well-formed name (a newer
  release knows names an older one does not; refusing an unknown name at proposal time would
  split the chain there instead). Before building or importing block ``h``, the ledger calls
  :func:`require_known`: an upgrade scheduled at or below ``h`` whose name is not in
  :data:`KNOWN` raises :class:`UpgradeRequired`, whose message says what to install (the
  proposal's ``info``). The block is never executed with rules the node does not have, and a
  restart stops at the same place.

Bounded work: the lookups walk :data:`KNOWN` (a constant table in code), never state others
grow; the schedule holds at most :data:`MAX_UPGRADES` entries, so the per-block check reads a
bounded number of slots.

Storage (account ``GOVERNANCE``): ``slot("upgrade.count")``, :class:`ScheduledUpgrade` records by
index from 1, ``slot("upgrade.index", name)`` (index, 0 when not scheduled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .addresses import GOVERNANCE
from .params import get_param
from .storage import Record, Store, rfield, slot

#: Most upgrades a chain may ever schedule: the per-block check reads each schedule entry, so the
#: list must not grow without bound. A chain that needs more raises it in a release.
MAX_UPGRADES = 64
#: An upgrade's name: lower case, digits, '-' and '.', up to 32 characters.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9.-]{0,31}")
#: Longest ``info`` (what to install: a version, a URL).
MAX_INFO = 256


@dataclass(frozen=True)
class Upgrade:
    """A rule change this release knows how to apply."""

    #: what it changes, for operators and docs
    doc: str
    #: ``gas.*`` parameter -> price from the upgrade's height on (supersedes the parameter)
    gas: dict[str, int]


#: Every upgrade this release can apply. Append only: a name once shipped keeps its meaning.
KNOWN: dict[str, Upgrade] = {
    "ai-gas-v2": Upgrade(
        "AI precompile gas schedule v2: deposits and withdrawals priced like a stake change (each "
        "writes a balance and a lock, as stake does), receipts priced for the attribution "
        "records they write",
        {"gas.deposit": 80_000, "gas.withdraw": 80_000, "gas.requestWithdrawal": 80_000,
         "gas.submitReceipt": 300_000}),
}


@dataclass(frozen=True)
class ScheduledUpgrade(Record):
    """An upgrade a passed proposal scheduled."""

    NS = "upgrade"
    name: str = rfield("string", "upgrade name (a key of the release's upgrade table)")
    height: int = rfield("uint", "first block executed under it")
    info: str = rfield("string", "what to install to apply it (a version, a URL)")
    proposal_id: int = rfield("uint", "the proposal that scheduled it")


class UpgradeRequired(Exception):
    """The next block is at or past the height of an upgrade this node does not know."""

    def __init__(self, name: str, height: int, info: str, block: int) -> None:
        self.name, self.height, self.info, self.block = name, height, info, block
        super().__init__(
            f"UPGRADE NEEDED: upgrade {name!r} applies from block {height}; this node does not know it "
            f"and stops before block {block}. Install a release that includes it"
            + (f": {info}" if info else "") + ". Restarting this release stops here again.")


def check_name(name: str) -> None:
    from .errors import InvalidArgument

    if not NAME_RE.fullmatch(name):
        raise InvalidArgument("upgrade name must be 1-32 characters of a-z, 0-9, '.' and '-', "
                              "starting with a letter or digit")


def _store(state_or_store: Any) -> Store:
    return state_or_store if isinstance(state_or_store, Store) else Store(state_or_store, GOVERNANCE)


def height_of(state_or_store: Any, name: str) -> int:
    """Height ``name`` is scheduled at, 0 when it is not."""
    store = _store(state_or_store)
    index = store.get(slot("upgrade.index", name))
    return ScheduledUpgrade.load_field(store, index, "height") if index else 0


def schedule(store: Store, name: str, height: int, info: str, proposal_id: int) -> int:
    """Record ``name`` at ``height`` (governance's execute); returns its index."""
    index = store.incr(slot("upgrade.count"))
    ScheduledUpgrade(name=name, height=height, info=info, proposal_id=proposal_id).encode(store, index)
    store.set(slot("upgrade.index", name), index)
    return int(index)


def scheduled(state: Any) -> list[ScheduledUpgrade]:
    """Every scheduled upgrade, in the order they were scheduled (at most :data:`MAX_UPGRADES`)."""
    store = _store(state)
    count = min(store.get(slot("upgrade.count")), MAX_UPGRADES)
    return [ScheduledUpgrade.decode(store, i) for i in range(1, count + 1)]


def gas_price(state: Any, param: str) -> int:
    """Price of a precompile function (its ``gas.*`` parameter name) for the block being
    executed: the latest-scheduled known upgrade active at ``state.block_number`` that sets it
    wins, else the parameter. Reads one slot per known upgrade setting ``param``."""
    block = int(state.block_number)
    best: tuple[int, int] | None = None  # (height, price)
    for name, upgrade in KNOWN.items():
        if param in upgrade.gas:
            height = height_of(state, name)
            if height and height <= block and (best is None or height >= best[0]):
                best = (height, upgrade.gas[param])
    return best[1] if best is not None else get_param(state, param)


def require_known(state: Any, block: int, known: dict[str, Upgrade] | None = None) -> None:
    """Raise :class:`UpgradeRequired` when an upgrade scheduled at or below ``block`` is not in
    ``known`` (default :data:`KNOWN`). ``state`` is the parent's state."""
    table = KNOWN if known is None else known
    for up in scheduled(state):
        if up.height <= block and up.name not in table:
            raise UpgradeRequired(up.name, up.height, up.info, block)


def get_upgrades(state: Any) -> list[dict[str, Any]]:
    """The schedule, for ``ai_getUpgrades``: each entry with whether this node knows it."""
    return [{"name": u.name, "height": u.height, "info": u.info, "proposalId": u.proposal_id,
             "known": u.name in KNOWN, "doc": KNOWN[u.name].doc if u.name in KNOWN else None}
            for u in scheduled(state)]
