"""The ``ots`` namespace: Otterscan's JSON-RPC extensions at its API level 8, so the real
Otterscan can browse a node (with ``erigon_getHeaderByNumber``, ``node/rpc/erigon.py``).

Shapes follow anvil's answers, which `tests/integration/rpc/test_otterscan.py` compares on the
same transactions; where anvil and Otterscan's own spec part, the spec wins and
``docs/ethtools.md`` says where. Traces re-execute a transaction on its block's state
(``state/tracing.py``), under the node's execution time budget.

Every method is bounded for a hostile caller:

- a page (``ots_getBlockTransactions``, the searches) holds at most :data:`MAX_PAGE_SIZE`
  transactions, plus the rest of the last block's matches;
- ``ots_getContractCreator`` and ``ots_getTransactionBySenderAndNonce`` binary-search the
  chain's state (about log2(height) account reads), then look at one block;
- one call of an address search looks at most at :data:`MAX_SEARCH_BLOCKS` blocks and
  :data:`MAX_SEARCH_TRANSACTIONS` transactions, and re-executes at most
  :data:`MAX_SEARCH_REPLAYS` blocks and :data:`MAX_SEARCH_REPLAY_GAS` gas. A search that
  meets a bound returns the matches found so far with ``nextBlock``, the block number to
  pass to go on (there is no index: an index would have to be written with each block).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI
from eth.constants import BLANK_ROOT_HASH
from eth.exceptions import Revert
from eth.rlp.sedes import address as address_sedes
from eth_typing import Address

from node.chain.reader import BlockRef
from node.errors import NotFound, UnknownBlock
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams, ResourceNotFound, ServerError
from node.rpc.format import (
    addr,
    format_block,
    format_receipts,
    format_transaction,
    hex_data,
    hex_quantity,
)
from node.rpc.registry import READ, Json, Params, args, rpc
from state.native import native_payload
from state.tracing import (
    CallFrame,
    CallTracer,
    TracedRun,
    TraceLimitExceeded,
    Tracer,
    data_floor_gas,
    replay_block,
    replay_transaction,
)
from state.vm import LedgerComputation

#: The Otterscan API level served: 8, what Otterscan 2.x requires (anvil and reth answer 8).
API_LEVEL = 8
#: Most transactions one page may ask for (Otterscan asks for 25).
MAX_PAGE_SIZE = 100
#: Most blocks one address search looks at (an empty block costs a header read).
MAX_SEARCH_BLOCKS = 5_000
#: Most transactions one address search looks at (the first block's all count).
MAX_SEARCH_TRANSACTIONS = 500
#: Most blocks, and most gas of blocks, one address search re-executes to see internal calls
#: (the first block that needs it always runs, so a search moves on whatever a block holds).
MAX_SEARCH_REPLAYS = 100
MAX_SEARCH_REPLAY_GAS = 5_000_000
#: Largest block number, page or nonce a parameter may hold (u64, as anvil parses them).
_MAX_U64 = 2**64 - 1

#: An EIP-7702 delegated account's code: this prefix and the delegate's address.
_DELEGATION_PREFIX = bytes.fromhex("ef0100")
_SET_CODE_TYPE = 4
#: Addresses whose code is the node's own (Ethereum's precompiles and the AI modules): they
#: call no other account.
_PRECOMPILES = frozenset(bytes(a) for a in LedgerComputation.get_precompiles())

#: Otterscan's internal operation types.
OP_TRANSFER, OP_SELF_DESTRUCT, OP_CREATE, OP_CREATE2 = 0, 1, 2, 3


# -- parameters -------------------------------------------------------------------------------


def _u64(value: Json, name: str) -> int:
    """A JSON number or hex quantity up to 2**64 - 1 (anvil takes numbers only; reth and
    Otterscan's own examples also send hex)."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else p.quantity(value, name)
    if not 0 <= number <= _MAX_U64:
        raise InvalidParams(f"invalid argument {name}: expected a number from 0 to 2**64-1")
    return number


def block_param(value: Json, name: str) -> BlockRef:
    """A block number (JSON number or hex) or tag, as Otterscan sends it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return BlockRef(number=_u64(value, name))
    return p.block_ref(value, name)


def _page_size(value: Json, name: str) -> int:
    size = _u64(value, name)
    if size > MAX_PAGE_SIZE:
        raise InvalidParams(f"invalid argument {name}: page size {size} is over the node's {MAX_PAGE_SIZE}")
    return size


# -- shapes -------------------------------------------------------------------------------------


def _transaction(block: BlockAPI, index: int) -> dict[str, Any]:
    out = format_transaction(block.transactions[index], block.header, index)
    out["blockTimestamp"] = hex_quantity(block.header.timestamp)
    return out


def _receipts(ctx: NodeContext, block: BlockAPI) -> list[dict[str, Any]]:
    """The block's receipts as Otterscan's methods return them: with the block's timestamp."""
    out = format_receipts(block, ctx.core.ledger.receipts(block))
    for receipt in out:
        receipt["timestamp"] = hex_quantity(block.header.timestamp)
    return out


def _block_details(ctx: NodeContext, header: BlockHeaderAPI) -> dict[str, Any]:
    block = ctx.core.ledger.block(header)
    slim = format_block(block, False)
    del slim["transactions"]
    slim["transactionCount"] = len(block.transactions)
    fees = sum(int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16) for r in _receipts(ctx, block))
    # No block reward: validators earn fees and the AI modules' payouts, none of it minted here.
    issuance = {"blockReward": hex_quantity(0), "uncleReward": hex_quantity(0), "issuance": hex_quantity(0)}
    return {"block": slim, "issuance": issuance, "totalFees": hex_quantity(fees)}


def _header_or_not_found(ctx: NodeContext, ref: BlockRef) -> BlockHeaderAPI:
    try:
        return ctx.core.resolve(ref)
    except (UnknownBlock, NotFound):
        raise ResourceNotFound("block not found") from None


# -- traces ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Traced:
    block: BlockAPI
    index: int
    run: TracedRun
    root: CallFrame


def _trace(ctx: NodeContext, tx_hash: bytes) -> _Traced:
    """Re-execute a committed transaction with the call tracer."""
    where = ctx.core.ledger.transaction_location(tx_hash)
    if where is None:
        raise ServerError(f"transaction {hex_data(tx_hash)} not found")
    header = ctx.core.ledger.header_by_number(where[0])
    assert header is not None
    block = ctx.core.ledger.block(header)
    tracer = CallTracer()
    try:
        with ctx.core.execution_budget():
            run = replay_transaction(ctx.core.ledger, block, where[1], tracer)
    except TraceLimitExceeded as e:
        raise ServerError(str(e)) from None
    assert tracer.root is not None
    return _Traced(block, where[1], run, tracer.root)


def _frames(root: CallFrame) -> list[tuple[CallFrame, int]]:
    """Every frame with its depth, in the order the calls began."""
    out: list[tuple[CallFrame, int]] = []
    pending = [(root, 0)]
    while pending:
        frame, depth = pending.pop()
        out.append((frame, depth))
        pending.extend((child, depth + 1) for child in reversed(frame.calls))
    return out


def _output(frame: CallFrame) -> bytes:
    c = frame.computation
    assert c is not None
    if c.is_error and not isinstance(c.error, Revert):
        return b""
    return bytes(c.output)


def _trace_entries(root: CallFrame) -> list[dict[str, Any]]:
    """Otterscan's flat call tree: every call, creation and self-destruct with its depth, in
    the order they ran. Calls as anvil shows them (a DELEGATECALL carries its caller's value,
    a STATICCALL zero); creations and self-destructs as reth and Erigon add them (anvil
    leaves them out). A loop, not recursion: calls nest 1,024 deep."""
    out: list[dict[str, Any]] = []
    pending: list[tuple[CallFrame, int] | dict[str, Any]] = [(root, 0)]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            out.append(item)
            continue
        frame, depth = item
        out.append({
            "type": frame.kind, "depth": depth, "from": addr(frame.sender), "to": addr(frame.to),
            "value": hex_quantity(frame.value or 0), "input": hex_data(frame.input),
            "output": hex_data(_output(frame)),
        })
        if frame.selfdestruct is not None:
            # after the frame's own calls: SELFDESTRUCT is the last thing a frame does
            beneficiary, value = frame.selfdestruct
            pending.append({
                "type": "SELFDESTRUCT", "depth": depth + 1, "from": addr(frame.to), "to": addr(beneficiary),
                "value": hex_quantity(value), "input": "0x", "output": "0x",
            })
        pending.extend((child, depth + 1) for child in reversed(frame.calls))
    return out


def _internal_operations(root: CallFrame) -> list[dict[str, Any]]:
    """The value moves of a transaction, top-level call included, in the order the calls
    began (anvil's and reth's rule): a CALL with value (reverted ones too), every CREATE and
    CREATE2, and each SELFDESTRUCT that ran (in place of its frame's call)."""
    out = []
    for frame, _ in _frames(root):
        if frame.selfdestruct is not None:
            beneficiary, value = frame.selfdestruct
            kind, sender, to = OP_SELF_DESTRUCT, frame.to, beneficiary
        elif frame.kind == "CALL" and frame.value:
            kind, sender, to, value = OP_TRANSFER, frame.sender, frame.to, frame.value
        elif frame.kind in ("CREATE", "CREATE2"):
            kind = OP_CREATE if frame.kind == "CREATE" else OP_CREATE2
            sender, to, value = frame.sender, frame.to, frame.value or 0
        else:
            continue
        out.append({"type": kind, "from": addr(sender), "to": addr(to), "value": hex_quantity(value)})
    return out


def _touched(root: CallFrame) -> set[bytes]:
    """The addresses a transaction's call tree names: each frame's caller and callee (a
    creation's new address only when it succeeded) and each self-destruct's beneficiary."""
    out: set[bytes] = set()
    for frame, _ in _frames(root):
        out.add(bytes(frame.sender))
        created = frame.kind in ("CREATE", "CREATE2")
        if not created or (frame.computation is not None and frame.computation.is_success):
            out.add(bytes(frame.to))
        if frame.selfdestruct is not None:
            out.add(frame.selfdestruct[0])
    return out


# -- methods ------------------------------------------------------------------------------------


@rpc("ots_getApiLevel", max_params=0)
def ots_get_api_level(ctx: NodeContext, params: Params) -> int:
    return API_LEVEL


@rpc("ots_hasCode", max_params=2)
def ots_has_code(ctx: NodeContext, params: Params) -> bool:
    address, ref = args(params, 1, 1)
    account = p.address(address, "0")
    state = ctx.core.ledger.state_at(ctx.core.resolve(block_param(ref, "1")))
    return bool(state.get_code(account))


@rpc("ots_getInternalOperations", max_params=1, lane=READ)
def ots_get_internal_operations(ctx: NodeContext, params: Params) -> list[dict[str, Any]]:
    (h,) = args(params, 1)
    return _internal_operations(_trace(ctx, p.hash32(h, "0")).root)


@rpc("ots_traceTransaction", max_params=1, lane=READ)
def ots_trace_transaction(ctx: NodeContext, params: Params) -> list[dict[str, Any]]:
    (h,) = args(params, 1)
    return _trace_entries(_trace(ctx, p.hash32(h, "0")).root)


@rpc("ots_getTransactionError", max_params=1, lane=READ)
def ots_get_transaction_error(ctx: NodeContext, params: Params) -> str:
    """The revert data of a reverted transaction; ``0x`` when it succeeded or failed some
    other way (out of gas, an invalid opcode). Its receipt answers a success without
    re-executing it."""
    (h,) = args(params, 1)
    tx_hash = p.hash32(h, "0")
    found = ctx.core.ledger.receipt_of(tx_hash)
    if found is None:
        raise ServerError(f"transaction {hex_data(tx_hash)} not found")
    _header, receipt = found
    if receipt.state_root == b"\x01":
        return "0x"
    c = _trace(ctx, tx_hash).run.computation
    return hex_data(c.output) if isinstance(c.error, Revert) else "0x"


@rpc("ots_getBlockDetails", max_params=1, lane=READ)
def ots_get_block_details(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """``eth_getBlockByNumber`` without its transactions, with their count, the block's fees
    and its issuance (none: this chain mints no block reward)."""
    (ref,) = args(params, 1)
    return _block_details(ctx, _header_or_not_found(ctx, block_param(ref, "0")))


@rpc("ots_getBlockDetailsByHash", max_params=1, lane=READ)
def ots_get_block_details_by_hash(ctx: NodeContext, params: Params) -> dict[str, Any]:
    (h,) = args(params, 1)
    return _block_details(ctx, _header_or_not_found(ctx, BlockRef(block_hash=p.hash32(h, "0"))))


@rpc("ots_getBlockTransactions", max_params=3, lane=READ)
def ots_get_block_transactions(ctx: NodeContext, params: Params) -> dict[str, Any]:
    """One page of a block's transactions (inputs cut to their 4-byte selector) with their
    receipts. ``transactionCount`` is the block's count, from which Otterscan numbers the
    pages (anvil gives the page's)."""
    ref, page_raw, size_raw = args(params, 3)
    header = _header_or_not_found(ctx, block_param(ref, "0"))
    page, size = _u64(page_raw, "1"), _page_size(size_raw, "2")
    block = ctx.core.ledger.block(header)
    start = min(page * size, len(block.transactions))
    chosen = range(start, min(start + size, len(block.transactions)))
    full = format_block(block, False)
    full["transactions"] = []
    for i in chosen:
        tx = _transaction(block, i)
        tx["input"] = tx["input"][: 2 + 8]
        full["transactions"].append(tx)
    full["transactionCount"] = len(block.transactions)
    receipts = _receipts(ctx, block) if chosen else []
    return {"fullblock": full, "receipts": [receipts[i] for i in chosen]}


@rpc("ots_searchTransactionsBefore", max_params=3, lane=READ)
def ots_search_transactions_before(ctx: NodeContext, params: Params) -> dict[str, Any]:
    address, cursor, size = args(params, 3)
    return _Search(ctx, p.address(address, "0"), _u64(cursor, "1"), _page_size(size, "2"), backwards=True).run()


@rpc("ots_searchTransactionsAfter", max_params=3, lane=READ)
def ots_search_transactions_after(ctx: NodeContext, params: Params) -> dict[str, Any]:
    address, cursor, size = args(params, 3)
    return _Search(ctx, p.address(address, "0"), _u64(cursor, "1"), _page_size(size, "2"), backwards=False).run()


@rpc("ots_getTransactionBySenderAndNonce", max_params=2, lane=READ)
def ots_get_transaction_by_sender_and_nonce(ctx: NodeContext, params: Params) -> str | None:
    """The hash of ``sender``'s transaction with ``nonce``, or null. The account's nonce only
    grows, so a binary search finds the first block after which it is past ``nonce``; the
    transaction is in that block."""
    sender_raw, nonce_raw = args(params, 2)
    sender, nonce = p.address(sender_raw, "0"), _u64(nonce_raw, "1")
    ledger = ctx.core.ledger

    def nonce_at(number: int) -> int:
        header = ledger.header_by_number(number)
        assert header is not None
        return int(ledger.state_at(header).get_nonce(sender))

    head = ledger.head.block_number
    if nonce_at(head) <= nonce or nonce_at(0) > nonce:
        return None
    number = _first_block(0, head, lambda n: nonce_at(n) > nonce)
    header = ledger.header_by_number(number)
    assert header is not None
    for tx in ledger.block(header).transactions:
        if tx.nonce == nonce and tx.sender == sender:
            return hex_data(tx.hash)
    return None  # the nonce moved without a transaction (an EIP-7702 authorization)


@rpc("ots_getContractCreator", max_params=1, lane=READ)
def ots_get_contract_creator(ctx: NodeContext, params: Params) -> dict[str, Any] | None:
    """The transaction that created the contract at ``address`` and its direct creator (an
    account, or the contract that ran CREATE/CREATE2); null for an account without code, a
    contract from genesis and code put there by a dev edit or an EIP-7702 delegation. A
    binary search over the chain's state finds the block where the code appeared; that one
    block is re-executed."""
    (address_raw,) = args(params, 1)
    account = p.address(address_raw, "0")
    ledger = ctx.core.ledger

    def has_code(number: int) -> bool:
        header = ledger.header_by_number(number)
        assert header is not None
        return bool(ledger.state_at(header).get_code(account))

    head = ledger.head.block_number
    if not has_code(head) or has_code(0):
        return None
    header = ledger.header_by_number(_first_block(0, head, has_code))
    assert header is not None
    block = ledger.block(header)
    tracers = [CallTracer() for _ in block.transactions]
    try:
        with ctx.core.execution_budget():
            replay_block(ledger, block, tracers)
    except TraceLimitExceeded as e:
        raise ServerError(str(e)) from None
    found = None
    for tx, tracer in zip(block.transactions, tracers, strict=True):
        assert tracer.root is not None
        for frame, _ in _frames(tracer.root):
            c = frame.computation
            if frame.kind in ("CREATE", "CREATE2") and frame.to == account and c is not None and c.is_success:
                found = {"hash": hex_data(tx.hash), "creator": addr(frame.sender)}  # the last one wins
    return found


def _first_block(low: int, high: int, reached: Any) -> int:
    """The least block in (low, high] where ``reached`` holds, given that it does not at
    ``low``, does at ``high``, and stays true once true."""
    while high - low > 1:
        mid = (low + high) // 2
        if reached(mid):
            high = mid
        else:
            low = mid
    return high


# -- address search -----------------------------------------------------------------------------


class _Search:
    """One call of ``ots_searchTransactionsBefore`` / ``After``: walk the blocks from the
    cursor (exclusive; 0 is the head for Before and genesis for After), collecting the
    transactions whose call tree names the address, until the page is full, the chain ends,
    or a bound is met (then ``nextBlock`` says where to go on).

    A transaction matches cheaply when the address received it, sent it (looked at only when
    the address can send: it has a nonce and no contract code, or the chain is a dev chain,
    which can impersonate anyone) or is named in its native payload. Otherwise only a
    transaction that ran code can name it deeper, so its receipt decides: a creation, an
    EIP-7702 transaction and a transaction that used more gas than its intrinsic cost (and its
    calldata floor) ran code, unless it called a precompile (precompiles call nothing). Such a
    transaction's block is re-executed once, with a call tracer per transaction. Matches come
    newest first, each block whole; ``firstPage`` and ``lastPage`` follow anvil's rules.
    """

    def __init__(self, ctx: NodeContext, address: Address, cursor: int, size: int, backwards: bool) -> None:
        self.ctx, self.address, self.size, self.backwards = ctx, bytes(address), size, backwards
        self.cursor = cursor
        self.ledger = ctx.core.ledger
        head = self.ledger.head
        self.head = head.block_number
        self.start = (self.head if cursor == 0 else cursor - 1) if backwards else (1 if cursor == 0 else cursor + 1)
        state = self.ledger.state_at(head)
        code = bytes(state.get_code(address))
        self.can_send = ctx.dev is not None or (
            state.get_nonce(address) > 0 and (not code or code.startswith(_DELEGATION_PREFIX)))
        self.transactions = self.replays = self.replayed_gas = 0

    def run(self) -> dict[str, Any]:
        if self.backwards:
            numbers = range(min(self.start, self.head), 0, -1)
            first_page, last_page = self.start >= self.head, False
        else:
            numbers = range(self.start, self.head + 1)
            first_page, last_page = self.start >= self.head, self.start <= 1
        found: list[tuple[BlockAPI, list[int]]] = []  # blocks with matches, in walk order
        count = looked = 0
        stopped_at = None  # the block a bound kept this call from looking at
        reached_end = True
        for number in numbers:
            if count >= self.size:
                reached_end = False
                break
            header = self.ledger.header_by_number(number)
            assert header is not None
            matches = self._matches(header) if looked < MAX_SEARCH_BLOCKS else None
            if matches is None:
                reached_end, stopped_at = False, number
                break
            looked += 1
            block, indexes = matches
            if block is not None and indexes:
                found.append((block, indexes))
                count += len(indexes)
        if reached_end:
            if self.backwards:
                last_page = True
            else:
                first_page = True
        if not self.backwards:
            found.reverse()
        txs, receipts = [], []
        for block, indexes in found:
            block_receipts = _receipts(self.ctx, block)
            for i in indexes:
                txs.append(_transaction(block, i))
                receipts.append(block_receipts[i])
        out: dict[str, Any] = {"txs": txs, "receipts": receipts, "firstPage": first_page, "lastPage": last_page}
        if not reached_end:
            # the cursor that goes on where this call stopped: the searches are exclusive
            if stopped_at is not None:
                out["nextBlock"] = stopped_at + 1 if self.backwards else stopped_at - 1
            elif found:
                out["nextBlock"] = found[-1 if self.backwards else 0][0].header.block_number
            else:  # a page of size 0 is full before it starts
                out["nextBlock"] = self.cursor
        return out

    def _matches(self, header: BlockHeaderAPI) -> tuple[BlockAPI | None, list[int]] | None:
        """The block and the indexes of its matching transactions, newest first; None when
        looking at it would pass one of the call's bounds (the first block always passes)."""
        if header.transaction_root == BLANK_ROOT_HASH:
            return None, []  # an empty block: no body to read
        block = self.ledger.block(header)
        txs = block.transactions
        if self.transactions and self.transactions + len(txs) > MAX_SEARCH_TRANSACTIONS:
            return None
        matched: set[int] = set()
        to_trace: list[int] = []
        receipts = None
        for i, tx in enumerate(txs):
            if self._names(tx):
                matched.add(i)
                continue
            if receipts is None:
                receipts = self.ledger.receipts(block)
            if self._ran_code(header, tx, receipts, i):
                to_trace.append(i)
        if to_trace:
            first = not self.replays
            if not first and (self.replays >= MAX_SEARCH_REPLAYS
                              or self.replayed_gas + header.gas_used > MAX_SEARCH_REPLAY_GAS):
                return None
            self.replays += 1
            self.replayed_gas += header.gas_used
            tracers: list[Tracer | None] = [None] * (to_trace[-1] + 1)
            for i in to_trace:
                tracers[i] = CallTracer()
            try:
                with self.ctx.core.execution_budget():
                    replay_block(self.ledger, block, tracers)
            except TraceLimitExceeded as e:
                raise ServerError(f"block {header.block_number}: {e}") from None
            for i in to_trace:
                tracer = tracers[i]
                assert isinstance(tracer, CallTracer) and tracer.root is not None
                if self.address in _touched(tracer.root):
                    matched.add(i)
        self.transactions += len(txs)
        return block, sorted(matched, reverse=True)

    def _names(self, tx: Any) -> bool:
        """Whether the address received ``tx``, sent it, or is an address field of its native
        payload (an inference receipt's user and validator)."""
        if tx.to and bytes(tx.to) == self.address:
            return True
        if self.can_send and bytes(tx.sender) == self.address:
            return True
        inner = native_payload(tx)
        if inner is not None:
            return any(bytes(getattr(inner, name)) == self.address
                       for name, sedes in inner.payload_fields if sedes is address_sedes)
        return False

    def _ran_code(self, header: BlockHeaderAPI, tx: Any, receipts: Any, index: int) -> bool:
        """Whether ``tx`` ran code that could call further (see the class docstring)."""
        if not tx.to or getattr(tx, "type_id", None) == _SET_CODE_TYPE:
            return True
        if bytes(tx.to) in _PRECOMPILES:
            return False
        used = receipts[index].gas_used - (receipts[index - 1].gas_used if index else 0)
        intrinsic, floor = tx.intrinsic_gas, data_floor_gas(tx.data)
        if used > max(intrinsic, floor):
            return True
        if used == intrinsic:
            return False
        # at the calldata floor, which may hide a little execution: ask the state
        parent = self.ledger.header_by_number(header.block_number - 1)
        assert parent is not None
        return bool(self.ledger.state_at(parent).get_code(tx.to))
