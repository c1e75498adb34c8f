"""Execution context handed to every AI operation: who calls, the block, gas, storage and logs.

One :class:`Ctx` is built per precompile call (ABI path) or per native transaction (phase 2's
typed transactions build it from their computation the same way), so both paths run the same
operation functions with the same checks, gas and logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InsufficientFunds, WriteInStaticCall
from .storage import Store

LOG_GAS = 375
LOG_TOPIC_GAS = 375
LOG_DATA_GAS = 8


class GasMeter:
    """Charges an operation ``max(governance price, storage cost) + log cost``.

    The governance price is consumed up front (so a cheap rejection still pays it); storage
    accesses then accumulate EVM prices, and only what exceeds the prepaid price is consumed on
    top. Hence an operation is never cheaper than the SSTOREs and SLOADs it performs, and a
    governance vote cannot price an operation below its storage work.
    """

    def __init__(self, computation: Any | None, prepaid: int = 0) -> None:
        self.computation = computation
        self.prepaid = prepaid
        self.storage_used = 0
        self.total = 0
        if prepaid:
            self._consume(prepaid, "ai operation price")

    def _consume(self, gas: int, reason: str) -> None:
        self.total += gas
        if self.computation is not None:
            self.computation.consume_gas(gas, reason=reason)

    def charge(self, gas: int, reason: str) -> None:
        """A storage access: counts against the prepaid price first."""
        before = max(self.storage_used, self.prepaid)
        self.storage_used += gas
        extra = max(self.storage_used, self.prepaid) - before
        if extra:
            self._consume(extra, reason)

    def charge_extra(self, gas: int, reason: str) -> None:
        """Gas on top of the price (logs, signature recovery)."""
        if gas:
            self._consume(gas, reason)

    def add_prepaid(self, gas: int) -> None:
        """Raise the price after dispatch (an operation whose price depends on its arguments)."""
        self.prepaid += gas
        self._consume(gas, "ai operation price")


@dataclass
class Ctx:
    """What an operation may see and touch.

    ``state`` is py-evm's ``StateAPI``; writes go through :meth:`store` so they are metered and
    land in the precompile account's storage (so the state root covers them and they revert with
    the call). ``logs`` collects ``(address, topics, data)`` when no computation is attached.
    """

    state: Any
    sender: bytes
    value: int
    block_number: int
    timestamp: int
    chain_id: int
    is_static: bool
    meter: GasMeter
    computation: Any | None = None
    logs: list[tuple[bytes, tuple[int, ...], bytes]] = field(default_factory=list)
    touched: dict[tuple[bytes, int], int] = field(default_factory=dict)

    @classmethod
    def from_computation(cls, computation: Any, prepaid: int = 0) -> Ctx:
        state = computation.state
        msg = computation.msg
        return cls(
            state=state,
            sender=bytes(msg.sender),
            value=int(msg.value),
            block_number=int(state.block_number),
            timestamp=int(state.timestamp),
            chain_id=int(state.execution_context.chain_id or 0),
            is_static=bool(msg.is_static),
            meter=GasMeter(computation, prepaid),
            computation=computation,
        )

    @classmethod
    def for_state(cls, state: Any, sender: bytes = b"\x00" * 20, value: int = 0,
                  static: bool = False) -> Ctx:
        """A context over a bare ``StateAPI`` (tests, tools): no gas, logs kept in ``logs``."""
        return cls(
            state=state, sender=sender, value=value, block_number=int(state.block_number),
            timestamp=int(state.timestamp), chain_id=int(state.execution_context.chain_id or 0),
            is_static=static, meter=GasMeter(None),
        )

    def store(self, address: bytes) -> Store:
        return Store(self.state, address, self.meter, self.touched, writable=not self.is_static)

    def require_write(self) -> None:
        if self.is_static:
            raise WriteInStaticCall("state change in a static call")

    def emit(self, address: bytes, topics: tuple[int, ...], data: bytes) -> None:
        """Append an EVM log and charge LOG opcode gas for it."""
        self.meter.charge_extra(
            LOG_GAS + LOG_TOPIC_GAS * len(topics) + LOG_DATA_GAS * len(data), "log")
        if self.computation is not None:
            self.computation.add_log_entry(address, topics, data)
        else:
            self.logs.append((address, topics, data))

    def transfer(self, source: bytes, dest: bytes, amount: int) -> None:
        """Move wei between accounts (a precompile's escrow and a user); never creates wei."""
        if amount < 0:
            raise ValueError("negative transfer")
        if amount == 0:
            return
        if self.state.get_balance(source) < amount:
            raise InsufficientFunds("escrow balance too low")
        self.state.delta_balance(source, -amount)
        self.state.delta_balance(dest, amount)
