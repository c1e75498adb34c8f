"""Execution traces of transactions and calls: geth's struct logs (one entry per opcode),
its call tracer (the tree of message calls), and the access-list builder of
eth_createAccessList.

py-evm has no tracing hooks, so a traced run swaps the state's computation class for a
subclass whose interpreter loop reports each opcode to a :class:`Tracer` before running
it. A tracer that grows past its limits raises :class:`TraceLimitExceeded`, which aborts
the run (the state of a traced run is never persisted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.abc import ComputationAPI, MessageAPI, StateAPI, TransactionContextAPI
from eth.exceptions import Halt, Revert, VMError
from eth.vm.opcode_values import (
    BALANCE,
    CALL,
    CALLCODE,
    CREATE,
    CREATE2,
    DELEGATECALL,
    EXTCODECOPY,
    EXTCODEHASH,
    EXTCODESIZE,
    LOG0,
    LOG4,
    SELFDESTRUCT,
    SLOAD,
    SSTORE,
    STATICCALL,
    STOP,
)

from state.chain import _halt_name

#: Most opcodes a struct-log trace records before it is refused.
MAX_STEPS = 100_000
#: Most stack, memory and storage words all recorded steps may hold together.
MAX_TRACE_WORDS = 1_000_000
#: Most message calls a call trace records.
MAX_CALL_FRAMES = 10_000

_CALL_NAMES = {
    CALL: "CALL", CALLCODE: "CALLCODE", DELEGATECALL: "DELEGATECALL", STATICCALL: "STATICCALL",
    CREATE: "CREATE", CREATE2: "CREATE2", SELFDESTRUCT: "SELFDESTRUCT",
}


#: py-evm's older opcode names, as geth and anvil spell them today.
_MNEMONICS = {"SHA3": "KECCAK256"}


class TraceLimitExceeded(RuntimeError):
    """The trace grew past its limits; the run was aborted."""


@dataclass(frozen=True)
class StructLogConfig:
    """geth's struct-logger options (debug_traceTransaction's config object)."""

    enable_memory: bool = False
    """Record memory at each step (geth's enableMemory)."""
    disable_stack: bool = False
    """Leave the stack out (geth's disableStack)."""
    disable_storage: bool = False
    """Leave storage out (geth's disableStorage)."""
    limit: int = 0
    """Stop recording after this many steps (0: up to MAX_STEPS)."""


class Tracer:
    """Receives the events of a traced run; subclasses record what they need."""

    def __init__(self) -> None:
        self.frames: list[ComputationAPI] = []
        """The computations now running, outermost first."""

    def enter(self, computation: ComputationAPI, parent: ComputationAPI | None) -> None:
        self.frames.append(computation)

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str, pc: int) -> None:
        pass

    def after_step(self, computation: ComputationAPI) -> None:
        pass

    def failed_step(self, computation: ComputationAPI, error: VMError) -> None:
        """The opcode just reported raised ``error`` (a revert or an exceptional halt)."""

    def exit(self, computation: ComputationAPI) -> None:
        self.frames.pop()


def traced_computation_class(base: type[ComputationAPI], tracer: Tracer) -> type[ComputationAPI]:
    """A subclass of ``base`` whose interpreter loop reports to ``tracer``."""

    class TracedComputation(base):  # type: ignore[valid-type,misc]
        @classmethod
        def apply_computation(
            cls,
            state: StateAPI,
            message: MessageAPI,
            transaction_context: TransactionContextAPI,
            parent_computation: ComputationAPI | None = None,
        ) -> ComputationAPI:
            # The body of py-evm's BaseComputation.apply_computation, with the tracer calls.
            with cls(state, message, transaction_context) as computation:
                tracer.enter(computation, parent_computation)
                try:
                    if computation.is_origin_computation:
                        computation.contracts_created = []
                        if message.is_create:
                            cls.consume_initcode_gas_cost(computation)
                    if parent_computation is not None:
                        computation.contracts_created = parent_computation.contracts_created
                    if message.is_create:
                        computation.contracts_created.append(message.storage_address)
                    precompile = computation.precompiles.get(message.code_address)
                    if precompile is not None:
                        if not message.is_delegation:
                            precompile(computation)
                        return computation
                    opcode_lookup = computation.opcodes
                    code = computation.code
                    raw = code._raw_code_bytes  # type: ignore[attr-defined]
                    # py-evm's CodeStream loop, spelled out to know each opcode's pc and
                    # whether it is the STOP implied past the end of the code.
                    while True:
                        pc = code.program_counter
                        if pc < len(raw):
                            opcode = raw[pc]
                            code.program_counter = pc + 1
                        else:
                            opcode = STOP
                            if not raw and not message.is_create:
                                break  # a call to an account without code runs no step
                        opcode_fn = opcode_lookup.get(opcode)
                        if opcode_fn is None:
                            from eth.vm.logic.invalid import InvalidOpcode

                            opcode_fn = InvalidOpcode(opcode)
                        mnemonic = str(
                            getattr(opcode_fn, "mnemonic", None)
                            or getattr(getattr(opcode_fn, "__wrapped__", None), "mnemonic", f"opcode {opcode:#x}")
                        )
                        tracer.step(computation, opcode, _MNEMONICS.get(mnemonic, mnemonic), pc)
                        try:
                            opcode_fn(computation=computation)
                        except Halt:
                            tracer.after_step(computation)
                            break
                        except VMError as e:
                            tracer.failed_step(computation, e)
                            raise
                        tracer.after_step(computation)
                finally:
                    tracer.exit(computation)
            return computation

    return TracedComputation


# -- struct logs ------------------------------------------------------------------------


def _word(value: int | bytes) -> int:
    return value if isinstance(value, int) else int.from_bytes(value, "big")


class StructLogTracer(Tracer):
    """geth's default tracer: one entry per executed opcode."""

    def __init__(self, config: StructLogConfig) -> None:
        super().__init__()
        self.config = config
        self.logs: list[dict[str, Any]] = []
        self._open: dict[int, tuple[dict[str, Any], int]] = {}
        """Per depth, the last entry whose gas cost is not known yet, and its gas."""
        self._storage: dict[bytes, dict[int, int]] = {}
        self._words = 0
        self._max_steps = min(config.limit or MAX_STEPS, MAX_STEPS)
        self._full = False

    def enter(self, computation: ComputationAPI, parent: ComputationAPI | None) -> None:
        if parent is not None:
            self._close(len(self.frames), parent.get_gas_remaining())
        super().enter(computation, parent)

    def _close(self, depth: int, gas_now: int) -> None:
        entry = self._open.pop(depth, None)
        if entry is not None:
            entry[0]["gasCost"] = entry[1] - gas_now

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str, pc: int) -> None:
        if self._full:
            return
        if len(self.logs) >= self._max_steps:
            if not self.config.limit:
                raise TraceLimitExceeded(f"trace longer than {MAX_STEPS} steps")
            # the caller's limit: the run goes on (its outcome is reported) unrecorded
            self._full = True
            self._open.clear()
            return
        depth = len(self.frames)
        gas = computation.get_gas_remaining()
        entry: dict[str, Any] = {"pc": pc, "op": mnemonic, "gas": gas, "gasCost": 0, "depth": depth}
        if not self.config.disable_stack:
            values = computation._stack.values  # type: ignore[attr-defined]
            entry["stack"] = [hex(_word(v)) for v in values]
            self._words += len(values)
        if self.config.enable_memory:
            memory = bytes(computation._memory._bytes)  # type: ignore[attr-defined]
            entry["memory"] = ["0x" + memory[i : i + 32].hex() for i in range(0, len(memory), 32)]
            self._words += len(memory) // 32
        if not self.config.disable_storage and opcode in (SLOAD, SSTORE):
            self._record_storage(computation, opcode, entry)
        # anvil's refund counter is the frame's own (with its finished children's), not
        # geth's transaction-wide one.
        entry["refund"] = computation.get_gas_refund()
        if self._words > MAX_TRACE_WORDS:
            raise TraceLimitExceeded(f"trace larger than {MAX_TRACE_WORDS} words")
        self.logs.append(entry)
        self._open[depth] = (entry, gas)

    def _record_storage(self, computation: ComputationAPI, opcode: int, entry: dict[str, Any]) -> None:
        values = computation._stack.values  # type: ignore[attr-defined]
        if not values or (opcode == SSTORE and len(values) < 2):
            return
        address = computation.msg.storage_address
        slot = _word(values[-1])
        if opcode == SSTORE:
            value = _word(values[-2])
        else:
            value = computation.state.get_storage(address, slot)
        seen = self._storage.setdefault(address, {})
        seen[slot] = value
        entry["storage"] = {f"0x{k:064x}": f"0x{v:064x}" for k, v in seen.items()}
        self._words += 2 * len(seen)

    def after_step(self, computation: ComputationAPI) -> None:
        if not self._full:
            self._close(len(self.frames), computation.get_gas_remaining())

    def failed_step(self, computation: ComputationAPI, error: VMError) -> None:
        entry = self._open.get(len(self.frames))
        if entry is not None and not isinstance(error, Revert):
            entry[0]["error"] = f"Some({step_error_name(error)})"

    def exit(self, computation: ComputationAPI) -> None:
        # A step that halted the frame with an error consumed all the frame's gas.
        self._close(len(self.frames), computation.get_gas_remaining())
        super().exit(computation)


#: py-evm's halts by the names anvil (revm) gives a failed step.
_STEP_ERRORS = {
    "OutOfGas": "OutOfGas",
    "InvalidJumpDestination": "InvalidJump",
    "InsufficientStack": "StackUnderflow",
    "FullStack": "StackOverflow",
    "WriteProtection": "StateChangeDuringStaticCall",
    "OutOfBoundsRead": "OutOfOffset",
    "StackDepthLimit": "CallTooDeep",
}


def step_error_name(error: VMError) -> str:
    name = type(error).__name__
    if name == "OutOfGas" and "2300" in str(error):
        return "ReentrancySentryOOG"
    if name == "InvalidInstruction":
        return "InvalidFEOpcode" if "0xfe " in str(error) else "OpcodeNotFound"
    return _STEP_ERRORS.get(name, name)


def call_error_message(error: VMError | None) -> str:
    """A failed frame's error as anvil's callTracer words it."""
    name = type(error).__name__
    if name == "InvalidInstruction":
        return "invalid opcode: INVALID" if "0xfe " in str(error) else "invalid opcode"
    if name in ("InsufficientStack", "FullStack"):
        return _STEP_ERRORS[name]
    return _halt_name(error)


# -- call tracer ------------------------------------------------------------------------


@dataclass
class CallFrame:
    kind: str
    sender: bytes
    to: bytes
    value: int | None
    gas: int
    input: bytes
    computation: ComputationAPI | None = None
    calls: list[CallFrame] = field(default_factory=list)
    log_positions: list[int] = field(default_factory=list)
    """Per LOG opcode of this frame, how many child calls came before it."""
    selfdestruct: tuple[bytes, int] | None = None
    """(beneficiary, value sent) when the frame ended in a SELFDESTRUCT that ran."""


class CallTracer(Tracer):
    """geth's callTracer: the tree of message calls with their gas, input and output."""

    def __init__(self) -> None:
        super().__init__()
        self.root: CallFrame | None = None
        self._stack: list[CallFrame] = []
        self._last_op: dict[int, int] = {}
        self._count = 0

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str, pc: int) -> None:
        self._last_op[len(self.frames)] = opcode
        if LOG0 <= opcode <= LOG4 and self._stack:
            self._stack[-1].log_positions.append(len(self._stack[-1].calls))
        elif opcode == SELFDESTRUCT and self._stack:
            values = computation._stack.values  # type: ignore[attr-defined]
            if values:
                # read before the opcode moves the balance; failed_step forgets it if it fails
                beneficiary = _word(values[-1]).to_bytes(32, "big")[-20:]
                balance = computation.state.get_balance(computation.msg.storage_address)
                self._stack[-1].selfdestruct = (beneficiary, balance)

    def failed_step(self, computation: ComputationAPI, error: VMError) -> None:
        if self._last_op.get(len(self.frames)) == SELFDESTRUCT and self._stack:
            self._stack[-1].selfdestruct = None

    def enter(self, computation: ComputationAPI, parent: ComputationAPI | None) -> None:
        self._count += 1
        if self._count > MAX_CALL_FRAMES:
            raise TraceLimitExceeded(f"more than {MAX_CALL_FRAMES} calls")
        msg = computation.msg
        if parent is None:
            kind = "CREATE" if msg.is_create else "CALL"
        else:
            kind = _CALL_NAMES.get(self._last_op.get(len(self.frames), CALL), "CALL")
        code_call = kind in ("DELEGATECALL", "CALLCODE")
        frame = CallFrame(
            kind=kind,
            # geth's frame: from the contract that made the call, to the code it ran
            sender=parent.msg.storage_address if code_call and parent is not None else msg.sender,
            to=msg.code_address if code_call else msg.storage_address,
            value=None if kind == "STATICCALL" else msg.value,
            gas=msg.gas,
            input=msg.data_as_bytes if not msg.is_create else bytes(msg.code),
            computation=computation,
        )
        if self._stack:
            self._stack[-1].calls.append(frame)
        else:
            self.root = frame
        self._stack.append(frame)
        super().enter(computation, parent)

    def exit(self, computation: ComputationAPI) -> None:
        self._stack.pop()
        super().exit(computation)


def format_call_frame(
    frame: CallFrame,
    gas_used: int | None = None,
    gas: int | None = None,
    with_log: bool = False,
    log_index: dict[int, int] | None = None,
) -> dict[str, Any]:
    """A frame in callTracer's JSON shape; the root takes the transaction's gas figures.

    With ``with_log``, each successful frame lists its own logs with ``position`` (child
    calls before the log) and ``index`` (the log's place in the transaction).
    """
    c = frame.computation
    assert c is not None
    if with_log and log_index is None:
        log_index = {entry[0]: i for i, entry in enumerate(c.get_raw_log_entries())}
    used = gas_used if gas_used is not None else frame.gas - c.get_gas_remaining()
    out: dict[str, Any] = {
        "from": "0x" + frame.sender.hex(),
        "gas": hex(gas if gas is not None else frame.gas),
        "gasUsed": hex(used),
        "to": "0x" + frame.to.hex(),
        "input": "0x" + frame.input.hex(),
    }
    if c.is_error:
        if isinstance(c.error, Revert):
            out["output"] = "0x" + c.output.hex()
            out["error"] = "execution reverted"
            reason = revert_reason(c.output)
            if reason is not None:
                out["revertReason"] = reason
        else:
            out["error"] = call_error_message(c.error)
    elif c.output:
        out["output"] = "0x" + c.output.hex()
    if frame.calls:
        out["calls"] = [format_call_frame(f, with_log=with_log, log_index=log_index) for f in frame.calls]
    if with_log and c.is_success:
        own = c._log_entries  # type: ignore[attr-defined]  # (counter, address, topics, data)
        if own:
            assert log_index is not None
            out["logs"] = [
                {
                    "address": "0x" + bytes(address).hex(),
                    "topics": [f"0x{t:064x}" for t in topics],
                    "data": "0x" + bytes(data).hex(),
                    "position": hex(position),
                    "index": hex(log_index.get(counter, 0)),
                }
                for (counter, address, topics, data), position in zip(own, frame.log_positions, strict=False)
            ]
    if frame.value is not None:
        out["value"] = hex(frame.value)
    out["type"] = frame.kind
    return out


# -- prestate and 4byte tracers ------------------------------------------------------------


class PrestateTracer(Tracer):
    """geth's prestateTracer (default mode): the accounts and slots a run touches; their
    values are read afterwards from the state the run started from."""

    def __init__(self) -> None:
        super().__init__()
        self.touched: dict[bytes, set[int]] = {}
        self.created: set[bytes] = set()

    def enter(self, computation: ComputationAPI, parent: ComputationAPI | None) -> None:
        msg = computation.msg
        if msg.is_create:
            self.created.add(bytes(msg.storage_address))
        for address in (msg.sender, msg.storage_address, msg.code_address):
            if len(address) == 20:  # a creation's code address is empty
                self.touched.setdefault(bytes(address), set())
        if len(self.touched) > MAX_CALL_FRAMES:
            raise TraceLimitExceeded("prestate too large")
        super().enter(computation, parent)

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str, pc: int) -> None:
        values = computation._stack.values  # type: ignore[attr-defined]
        if opcode in (SLOAD, SSTORE) and values:
            slots = self.touched.setdefault(bytes(computation.msg.storage_address), set())
            slots.add(_word(values[-1]))
            if len(slots) > MAX_STEPS:
                raise TraceLimitExceeded("prestate too large")
        elif opcode in (BALANCE, EXTCODESIZE, EXTCODECOPY, EXTCODEHASH, SELFDESTRUCT) and values:
            self.touched.setdefault(_word(values[-1]).to_bytes(32, "big")[-20:], set())


def format_prestate(state: StateAPI, touched: dict[bytes, set[int]]) -> dict[str, Any]:
    """Each touched account as it was in ``state``, in prestateTracer's shape."""
    out: dict[str, Any] = {}
    for address in sorted(touched):
        entry: dict[str, Any] = {"balance": hex(state.get_balance(address))}  # type: ignore[arg-type]
        nonce = state.get_nonce(address)  # type: ignore[arg-type]
        if nonce:
            entry["nonce"] = nonce
        code = state.get_code(address)  # type: ignore[arg-type]
        if code:
            entry["code"] = "0x" + bytes(code).hex()
        slots = touched[address]
        if slots:
            entry["storage"] = {
                f"0x{slot:064x}": f"0x{state.get_storage(address, slot):064x}"  # type: ignore[arg-type]
                for slot in sorted(slots)
            }
        out["0x" + address.hex()] = entry
    return out


def format_prestate_diff(
    pre: StateAPI, post: StateAPI, touched: dict[bytes, set[int]], created: set[bytes]
) -> dict[str, Any]:
    """prestateTracer's diffMode, by geth's rules: only accounts the run changed; ``pre``
    holds their old fields (storage: changed slots that were not zero) unless the run
    created them, ``post`` only the fields that changed (storage: changed slots that are
    not zero now)."""
    before = format_prestate(pre, touched)
    out_pre: dict[str, Any] = {}
    out_post: dict[str, Any] = {}
    for address in sorted(touched):
        key = "0x" + address.hex()
        old = before[key]
        changed: dict[str, Any] = {}
        balance = post.get_balance(address)  # type: ignore[arg-type]
        if hex(balance) != old["balance"]:
            changed["balance"] = hex(balance)
        nonce = post.get_nonce(address)  # type: ignore[arg-type]
        if nonce != old.get("nonce", 0):
            changed["nonce"] = nonce
        code = "0x" + bytes(post.get_code(address)).hex()  # type: ignore[arg-type]
        if code != old.get("code", "0x"):
            changed["code"] = code
        old_slots = old.pop("storage", {})
        kept_pre: dict[str, str] = {}
        new_slots: dict[str, str] = {}
        storage_changed = False
        for slot_key, value in old_slots.items():
            now = f"0x{post.get_storage(address, int(slot_key, 16)):064x}"  # type: ignore[arg-type]
            if now == value:
                continue
            storage_changed = True
            if int(value, 16):
                kept_pre[slot_key] = value
            if int(now, 16):
                new_slots[slot_key] = now
        if new_slots:
            changed["storage"] = new_slots
        if not changed and not storage_changed:
            continue
        if kept_pre:
            old["storage"] = kept_pre
        if address not in created:
            out_pre[key] = old
        out_post[key] = changed
    return {"post": out_post, "pre": out_pre}


class FourByteTracer(CallTracer):
    """geth's 4byteTracer: how often each selector was called with each argument size."""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        pending = [self.root] if self.root is not None else []
        while pending:
            frame = pending.pop()
            pending.extend(reversed(frame.calls))
            if frame.kind in ("CREATE", "CREATE2") or len(frame.input) < 4:
                continue
            key = f"0x{frame.input[:4].hex()}-{len(frame.input) - 4}"
            out[key] = out.get(key, 0) + 1
        return out


# -- access lists -----------------------------------------------------------------------


class AccessListTracer(Tracer):
    """Records the accounts and storage slots a run touches (eth_createAccessList)."""

    def __init__(self) -> None:
        super().__init__()
        self.slots: dict[bytes, set[int]] = {}

    def step(self, computation: ComputationAPI, opcode: int, mnemonic: str, pc: int) -> None:
        values = computation._stack.values  # type: ignore[attr-defined]
        if opcode in (SLOAD, SSTORE) and values:
            self.slots.setdefault(computation.msg.storage_address, set()).add(_word(values[-1]))
        elif opcode in (BALANCE, EXTCODESIZE, EXTCODECOPY, EXTCODEHASH, SELFDESTRUCT) and values:
            self.slots.setdefault(_word(values[-1]).to_bytes(32, "big")[-20:], set())
        elif opcode in (CALL, CALLCODE, DELEGATECALL, STATICCALL) and len(values) >= 2:
            self.slots.setdefault(_word(values[-2]).to_bytes(32, "big")[-20:], set())

    def enter(self, computation: ComputationAPI, parent: ComputationAPI | None) -> None:
        if len(self.slots) > MAX_CALL_FRAMES:
            raise TraceLimitExceeded("access list too large")
        super().enter(computation, parent)


def revert_reason(output: bytes) -> str | None:
    """The message of an Error(string) revert, as geth's callTracer shows it."""
    if output[:4] != bytes.fromhex("08c379a0"):
        return None
    try:
        from eth_abi import decode

        return str(decode(["string"], output[4:])[0])
    except Exception:
        return None


# -- running a traced message -----------------------------------------------------------


@dataclass(frozen=True)
class TracedRun:
    """The outcome of a traced transaction or call."""

    computation: ComputationAPI
    gas_used: int
    """Gas the transaction used, intrinsic gas included, after refunds."""
    gas_limit: int
    inspected: Any = None
    """What ``inspect`` made of the state after the run (run_call), if given."""


def _replay_upto(ledger: Any, block: Any, index: int) -> tuple[Any, Any, int]:
    """A VM on ``block``'s parent state with the block's first ``index`` transactions
    applied: (vm, header so far, cumulative gas used)."""
    from eth.vm.forks.prague import PragueVM

    parent = ledger.chain.get_block_header_by_hash(block.header.parent_hash)
    pre_root = ledger.state_header(parent).state_root
    header = block.header.copy(state_root=pre_root, gas_used=0)
    vm = ledger.call_vm(header)
    PragueVM.block_preprocessing(vm, block)
    previous = 0
    for tx in block.transactions[:index]:
        receipt, _ = vm.apply_transaction(header, tx)
        header = vm.add_receipt_to_header(header, receipt)
        previous = receipt.gas_used
    return vm, header, previous


def replay_transaction(ledger: Any, block: Any, index: int, tracer: Tracer | None) -> TracedRun:
    """Re-run transaction ``index`` of a committed ``block`` on its parent's state (after
    the block's earlier transactions), reporting to ``tracer``; nothing is written."""
    vm, header, previous = _replay_upto(ledger, block, index)
    tx = block.transactions[index]
    if tracer is not None:
        vm.state.computation_class = traced_computation_class(vm.state.computation_class, tracer)
    receipt, computation = vm.apply_transaction(header, tx)
    return TracedRun(computation, receipt.gas_used - previous, tx.gas)


def replay_block(ledger: Any, block: Any, tracers: Sequence[Tracer | None]) -> list[TracedRun]:
    """Re-run the first ``len(tracers)`` transactions of a committed ``block`` in order on its
    parent's state, each reporting to its own tracer (None: run untraced); nothing is
    written. One pass over the block, where tracing each transaction on its own would
    replay the ones before it again."""
    vm, header, previous = _replay_upto(ledger, block, 0)
    base = vm.state.computation_class
    runs = []
    for tx, tracer in zip(block.transactions, tracers, strict=False):
        vm.state.computation_class = base if tracer is None else traced_computation_class(base, tracer)
        receipt, computation = vm.apply_transaction(header, tx)
        header = vm.add_receipt_to_header(header, receipt)
        runs.append(TracedRun(computation, receipt.gas_used - previous, tx.gas))
        previous = receipt.gas_used
    return runs


def state_before_transaction(ledger: Any, block: Any, index: int) -> StateAPI:
    """The state transaction ``index`` of ``block`` started from."""
    vm, _, _ = _replay_upto(ledger, block, index)
    return vm.state  # type: ignore[no-any-return]


def run_call(
    ledger: Any,
    header: Any,
    sender: bytes,
    to: bytes | None,
    data: bytes,
    value: int,
    gas: int | None,
    overrides: dict[bytes, Any] | None,
    access_list: list[tuple[bytes, list[int]]] | None,
    tracer: Tracer | None,
    inspect: Any = None,
) -> TracedRun:
    """Run a message on ``header``'s state at zero gas price (as eth_call does), with an
    optional access list, reporting to ``tracer``; the changes are thrown away."""
    from eth.vm.spoof import SpoofTransaction

    from state.chain import _apply_overrides

    vm = ledger.call_vm(ledger.state_header(header))
    gas = min(gas or header.gas_limit, header.gas_limit)
    with vm.in_costless_state() as state:
        _apply_overrides(state, overrides or {})
        nonce = state.get_nonce(sender)
        if access_list:
            unsigned = vm.get_transaction_builder().new_unsigned_access_list_transaction(
                chain_id=ledger.chain_id, nonce=nonce, gas_price=0, gas=gas,
                to=to if to is not None else b"", value=value, data=data, access_list=access_list,
            )
        else:
            unsigned = vm.create_unsigned_transaction(
                nonce=nonce, gas_price=0, gas=gas, to=to if to is not None else b"", value=value, data=data,
            )
        if tracer is not None:
            state.computation_class = traced_computation_class(state.computation_class, tracer)
        computation = state.apply_transaction(SpoofTransaction(unsigned, from_=sender))
        used = gas - computation.get_gas_remaining() - computation.get_gas_refund()
        # Refunds are capped at a fifth of the gas used (EIP-3529).
        spent = gas - computation.get_gas_remaining()
        used = spent - min(computation.get_gas_refund(), spent // 5)
        inspected = inspect(state) if inspect is not None else None
        return TracedRun(computation, max(used, data_floor_gas(data)), gas, inspected)


def data_floor_gas(data: bytes) -> int:
    """The least gas a transaction with this calldata is charged (EIP-7623, Prague)."""
    from eth.vm.forks.prague.constants import STANDARD_TOKEN_COST, TOTAL_COST_FLOOR_PER_TOKEN

    zeros = data.count(0)
    return 21_000 + TOTAL_COST_FLOOR_PER_TOKEN * (zeros + (len(data) - zeros) * STANDARD_TOKEN_COST)
