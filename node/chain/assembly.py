"""Wiring of a node's chain parts: the one place that decides which producer a node has (one
validator: a solo producer; BFT or follower: none) and hands the pieces to the rest of the node."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from consensus import SingleValidator
from node.chain.core import ChainCore
from node.chain.dev import DevControls
from node.chain.pipeline import BlockPipeline
from node.chain.producers import SoloProducer
from node.txpool import PoolConfig
from node.validators import ValidatorSets
from state import Ledger


@dataclass
class LocalChain:
    """One node's chain: its core, its block pipeline and (on a chain with one validator) the
    producer that builds its blocks."""

    core: ChainCore
    pipeline: BlockPipeline
    producer: SoloProducer | None
    dev: DevControls | None
    """A dev chain's controls (``ailedger dev`` only)."""


def assemble(
    ledger: Ledger,
    *,
    produces_blocks: bool = True,
    coinbase: bytes = b"\x00" * 20,
    validator: SingleValidator | None = None,
    automine: bool = True,
    dev: bool = False,
    dev_keys: Iterable[bytes] = (),
    pool_config: PoolConfig | None = None,
    rpc_gas_cap: int | None = None,
    rpc_evm_timeout: float | None = 5.0,
) -> LocalChain:
    """The chain parts of a node over ``ledger``. A chain whose genesis names several validators
    keeps the validator set of every height (BFT); ``produces_blocks=False`` (a follower, a BFT
    validator) builds no producer; ``dev=True`` (``ailedger dev``, and nothing else) builds the
    dev controls, with the dev accounts' keys."""
    core = ChainCore(ledger, coinbase, pool_config=pool_config, rpc_gas_cap=rpc_gas_cap,
                     rpc_evm_timeout=rpc_evm_timeout)
    if len(ledger.genesis.validators) > 1:
        core.validator_sets = ValidatorSets(ledger)
    pipeline = BlockPipeline(core)
    producer = None
    if produces_blocks:
        producer = SoloProducer(pipeline, validator, automine)
        core.producer = producer
    controls = None
    if dev:
        if producer is None:
            raise ValueError("a dev chain produces its own blocks")
        controls = DevControls(core, producer, dev_keys)
    return LocalChain(core, pipeline, producer, controls)
