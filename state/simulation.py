"""eth_simulateV1: calls run in a sequence of simulated blocks on top of a committed block,
each block seeing the state the previous calls left, and nothing written.

As geth's simulator without validation: calls pay no gas price (balances only move by
value), each simulated block follows its parent by one number and 12 seconds unless
overridden, and state overrides apply at the start of their block. The work is bounded by
:data:`MAX_BLOCKS`, :data:`MAX_CALLS` and :data:`MAX_TOTAL_GAS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, ComputationAPI
from eth.exceptions import Revert
from eth.vm.spoof import SpoofTransaction
from eth_hash.auto import keccak
from eth_utils import ValidationError

from state.chain import AccountOverride, _apply_overrides, _halt_name
from state.tracing import data_floor_gas
from state.vm import LedgerVM

#: Most simulated blocks per request (geth's limit).
MAX_BLOCKS = 256
#: Most calls per request, over all its blocks.
MAX_CALLS = 1000
#: Most gas all calls of one request may use together (geth's RPC gas cap).
MAX_TOTAL_GAS = 50_000_000
#: Seconds between simulated blocks unless overridden (geth's value).
BLOCK_TIME = 12


class SimulationError(ValueError):
    """A request the simulator refuses; ``code`` is geth's error code for it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SimCall:
    sender: bytes
    to: bytes | None
    data: bytes
    value: int
    gas: int | None
    nonce: int | None


@dataclass(frozen=True)
class BlockOverrides:
    number: int | None = None
    time: int | None = None
    gas_limit: int | None = None
    fee_recipient: bytes | None = None
    base_fee: int | None = None


@dataclass(frozen=True)
class SimBlock:
    overrides: BlockOverrides
    state_overrides: dict[bytes, AccountOverride]
    calls: tuple[SimCall, ...]


@dataclass(frozen=True)
class CallOutcome:
    status: int
    return_data: bytes
    gas_used: int
    logs: tuple[tuple[bytes, tuple[int, ...], bytes], ...]
    """(address, topics, data) per log."""
    error: tuple[int, str, bytes | None] | None
    """(code, message, revert data) when the call failed."""
    tx_hash: bytes


@dataclass
class SimulatedBlock:
    header: BlockHeaderAPI
    calls: list[CallOutcome] = field(default_factory=list)


def simulate(
    ledger: Any, base: BlockHeaderAPI, blocks: list[SimBlock], ordered: bool = True
) -> list[SimulatedBlock]:
    """Run ``blocks`` on top of ``base`` and return each block's header and call outcomes.

    ``ordered`` (eth_simulateV1) requires block numbers and times to grow; eth_call's block
    overrides may name any number and time.
    """
    if len(blocks) > MAX_BLOCKS:
        raise SimulationError(-38026, f"too many blocks: {len(blocks)} > {MAX_BLOCKS}")
    if sum(len(b.calls) for b in blocks) > MAX_CALLS:
        raise SimulationError(-38026, f"too many calls: at most {MAX_CALLS} per request")
    vm = ledger.call_vm(ledger.state_header(base))
    parent = ledger.state_header(base)
    state = None
    gas_budget = MAX_TOTAL_GAS
    out: list[SimulatedBlock] = []
    for block in blocks:
        header = _next_header(parent, block.overrides, ordered)
        if state is None:
            state = vm.build_state(vm.chaindb.db, header.copy(base_fee_per_gas=0), vm.chain_context, vm.previous_hashes)
        else:
            state.execution_context = vm.create_execution_context(
                header.copy(base_fee_per_gas=0), vm.previous_hashes, vm.chain_context
            )
        _apply_overrides(state, block.state_overrides)
        result = SimulatedBlock(header)
        gas_used = 0
        for call in block.calls:
            room = header.gas_limit - gas_used
            if call.gas is not None and call.gas > room:
                raise SimulationError(-38015, f"block gas limit reached: {gas_used} + {call.gas} > {header.gas_limit}")
            gas = min(call.gas if call.gas is not None else room, gas_budget)
            if gas <= 0:
                raise SimulationError(-38026, f"the calls used all of the request's {MAX_TOTAL_GAS} gas")
            outcome = _run(vm, state, call, gas)
            gas_used += outcome.gas_used
            gas_budget -= outcome.gas_used
            result.calls.append(outcome)
        result.header = header.copy(gas_used=gas_used, state_root=state.make_state_root())
        out.append(result)
        parent = result.header
    return out


def _next_header(parent: BlockHeaderAPI, o: BlockOverrides, ordered: bool = True) -> BlockHeaderAPI:
    number = parent.block_number + 1 if o.number is None else o.number
    if ordered and number <= parent.block_number:
        raise SimulationError(-38020, f"block numbers must be in order: {number} <= {parent.block_number}")
    timestamp = parent.timestamp + BLOCK_TIME if o.time is None else o.time
    if ordered and timestamp <= parent.timestamp:
        raise SimulationError(-38021, f"block timestamps must be in order: {timestamp} <= {parent.timestamp}")
    header = LedgerVM.create_header_from_parent(
        parent, timestamp=timestamp, gas_limit=o.gas_limit or parent.gas_limit,
        coinbase=o.fee_recipient if o.fee_recipient is not None else parent.coinbase,
    )
    header = header.copy(block_number=number, state_root=parent.state_root)
    if o.base_fee is not None:
        header = header.copy(base_fee_per_gas=o.base_fee)
    return header


def _run(vm: Any, state: Any, call: SimCall, gas: int) -> CallOutcome:
    nonce = call.nonce if call.nonce is not None else state.get_nonce(call.sender)
    unsigned = vm.create_unsigned_transaction(
        nonce=nonce, gas_price=0, gas=gas, to=call.to if call.to is not None else b"", value=call.value, data=call.data,
    )
    tx_hash = keccak(rlp.encode(unsigned) + call.sender)
    state.lock_changes()
    try:
        computation: ComputationAPI = state.apply_transaction(SpoofTransaction(unsigned, from_=call.sender))
    except ValidationError as e:
        message = str(e)
        # anvil answers -32003 for a sender that cannot pay (geth: -38014)
        code = -32003 if "balance" in message.lower() or "funds" in message.lower() else -32602
        raise SimulationError(code, message) from None
    spent = gas - computation.get_gas_remaining()
    used = max(spent - min(computation.get_gas_refund(), spent // 5), data_floor_gas(call.data))
    logs = tuple(
        (bytes(address), tuple(topics), bytes(data)) for address, topics, data in computation.get_log_entries()
    )
    if computation.is_success:
        return CallOutcome(1, computation.output, used, logs, None, tx_hash)
    if isinstance(computation.error, Revert):
        return CallOutcome(0, computation.output, used, (), (3, "execution reverted", computation.output), tx_hash)
    return CallOutcome(0, b"", used, (), (-32015, _halt_name(computation.error), None), tx_hash)
