"""What the rest of the node reads of the chain: the queries' own types (a block reference, a
log filter) and the network's status as the RPC reports it.

:class:`node.chain.core.ChainCore` answers these queries (``resolve``, ``call``,
``estimate_gas``) on the chain worker, or on the read worker for committed state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlockRef:
    """A block named by tag, number or hash (EIP-1898)."""

    tag: str | None = None
    number: int | None = None
    block_hash: bytes | None = None
    require_canonical: bool = False


@dataclass(frozen=True)
class LogFilter:
    """eth_getLogs / eth_newFilter criteria."""

    from_block: BlockRef
    to_block: BlockRef
    block_hash: bytes | None
    addresses: tuple[bytes, ...]
    topics: tuple[tuple[bytes, ...] | None, ...]
    """Per position: None matches anything, otherwise any of the listed topics."""


@dataclass
class NetworkStatus:
    """The network side's view, kept by it and read by ``net_peerCount`` and ``eth_syncing``."""

    peer_count: int = 0
    """Connected peers."""
    syncing: dict[str, int] | None = None
    """While catching up: ``startingBlock``, ``currentBlock`` and ``highestBlock``."""
