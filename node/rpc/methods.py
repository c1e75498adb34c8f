"""The JSON-RPC methods: Ethereum's ``eth_``, ``net_``, ``web3_``, ``txpool_`` and the dev
methods users script against (``evm_``, ``anvil_``/``hardhat_``).

Each method is a plain function of the :class:`ChainCore` and the raw params, run on the
chain worker thread; parameters are parsed first so that bad input gets -32602 before
anything touches the chain.

A method's namespace is the part of its name before ``_``; ``@rpc`` files it under that
namespace in :data:`NAMESPACES`, and a node serves only the namespaces it was started
with (geth's ``--http.api``), so a new module adds methods with ``@rpc`` and nothing else.
The dev namespaces (:data:`DEV_NAMESPACES`) rewrite state and history and exist only on
``ailedger dev``.
"""

from __future__ import annotations

import platform
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from node.core import MAX_MINE_BLOCKS, ChainCore
from node.errors import NotFound, UnknownBlock
from node.rpc import params as p
from node.rpc.errors import ExecutionReverted, InvalidParams, ServerError
from node.rpc.format import (
    d,
    format_block,
    format_header,
    format_receipts,
    format_transaction,
    q,
)
from node.rpc.registry import READ, Continue, args, current_client, rpc
from node.txpool import max_fee, max_tip
from state.impersonation import impersonated_transaction

#: Default priority fee, as anvil's eth_maxPriorityFeePerGas (1 gwei).
DEFAULT_TIP = 10**9
CLIENT_VERSION = f"ailedger/v0.1.0/{platform.system().lower()}-{platform.machine()}/python{platform.python_version()}"


# -- web3, net ------------------------------------------------------------------------------


@rpc("web3_clientVersion", max_params=0)
def web3_client_version(core: ChainCore, params: list[Any]) -> str:
    args(params, 0)
    return CLIENT_VERSION


@rpc("web3_sha3", max_params=1)
def web3_sha3(core: ChainCore, params: list[Any]) -> str:
    (payload,) = args(params, 1)
    return d(keccak(p.data(payload, "0")))


@rpc("net_version", max_params=0)
def net_version(core: ChainCore, params: list[Any]) -> str:
    return str(core.ledger.chain_id)


@rpc("net_listening", max_params=0)
def net_listening(core: ChainCore, params: list[Any]) -> bool:
    return True


@rpc("net_peerCount", max_params=0)
def net_peer_count(core: ChainCore, params: list[Any]) -> str:
    return q(core.peer_count)


# -- chain ------------------------------------------------------------------------------------


@rpc("eth_chainId", max_params=0)
def eth_chain_id(core: ChainCore, params: list[Any]) -> str:
    return q(core.ledger.chain_id)


@rpc("eth_blockNumber", max_params=0)
def eth_block_number(core: ChainCore, params: list[Any]) -> str:
    return q(core.ledger.head.block_number)


@rpc("eth_syncing", max_params=0)
def eth_syncing(core: ChainCore, params: list[Any]) -> bool | dict[str, str]:
    status = core.sync_status
    return False if status is None else {k: q(v) for k, v in status.items()}


@rpc("eth_mining", max_params=0)
def eth_mining(core: ChainCore, params: list[Any]) -> bool:
    return core.produces_blocks


@rpc("eth_hashrate", max_params=0)
def eth_hashrate(core: ChainCore, params: list[Any]) -> str:
    return q(0)


@rpc("eth_coinbase", max_params=0)
def eth_coinbase(core: ChainCore, params: list[Any]) -> str:
    return d(core.coinbase)


@rpc("eth_accounts", max_params=0)
def eth_accounts(core: ChainCore, params: list[Any]) -> list[str]:
    return [d(a) for a in core.dev_keys]


@rpc("eth_gasPrice", max_params=0)
def eth_gas_price(core: ChainCore, params: list[Any]) -> str:
    return q(core.next_base_fee() + DEFAULT_TIP)


@rpc("eth_maxPriorityFeePerGas", max_params=0)
def eth_max_priority_fee(core: ChainCore, params: list[Any]) -> str:
    return q(DEFAULT_TIP)


@rpc("eth_blobBaseFee", max_params=0)
def eth_blob_base_fee(core: ChainCore, params: list[Any]) -> str:
    return q(1)


#: geth's limits on eth_feeHistory: blocks per query and reward percentiles.
MAX_FEE_HISTORY = 1024
MAX_REWARD_PERCENTILES = 100


@rpc("eth_feeHistory", max_params=3, lane=READ)
def eth_fee_history(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    count_raw, newest_raw, percentiles = args(params, 2, 1)
    count = p.quantity(count_raw, "0") if not isinstance(count_raw, int) else count_raw
    if count < 1:
        return {"oldestBlock": q(0), "baseFeePerGas": [], "gasUsedRatio": [], "reward": []}
    count = min(count, MAX_FEE_HISTORY)
    newest = core.resolve(p.block_ref(newest_raw, "1")).block_number
    reward_percentiles: list[float] | None = None
    if percentiles is not None:
        if isinstance(percentiles, list) and len(percentiles) > MAX_REWARD_PERCENTILES:
            raise InvalidParams(
                f"invalid argument 2: at most {MAX_REWARD_PERCENTILES} reward percentiles"
            )
        numbers = [x for x in percentiles if isinstance(x, (int, float))] if isinstance(percentiles, list) else []
        if not isinstance(percentiles, list) or len(numbers) != len(percentiles) or any(
            not 0 <= x <= 100 for x in numbers
        ) or numbers != sorted(numbers):
            raise InvalidParams("invalid argument 2: reward percentiles must be ascending numbers in [0, 100]")
        reward_percentiles = numbers
    oldest = max(0, newest - count + 1)
    base_fees, ratios, rewards = [], [], []
    for n in range(oldest, newest + 1):
        header = core.ledger.header_by_number(n)
        assert header is not None
        base_fees.append(q(header.base_fee_per_gas or 0))
        ratios.append(header.gas_used / header.gas_limit)
        if reward_percentiles is not None:
            rewards.append([q(r) for r in _block_rewards(core, header, reward_percentiles)])
    from state.vm import LedgerVM

    newest_header = core.ledger.header_by_number(newest)
    assert newest_header is not None
    child = LedgerVM.create_header_from_parent(newest_header, timestamp=newest_header.timestamp + 1)
    base_fees.append(q(child.base_fee_per_gas or 0))
    out: dict[str, Any] = {
        "oldestBlock": q(oldest),
        "baseFeePerGas": base_fees,
        "gasUsedRatio": ratios,
        "baseFeePerBlobGas": [q(1)] * len(base_fees),
        "blobGasUsedRatio": [0.0] * len(ratios),
    }
    if reward_percentiles is not None:
        out["reward"] = rewards
    return out


def _block_rewards(core: ChainCore, header: Any, percentiles: list[float]) -> list[int]:
    block = core.ledger.block(header)
    if not block.transactions:
        return [0] * len(percentiles)
    receipts = core.ledger.receipts(block)
    base = header.base_fee_per_gas
    items = []
    previous = 0
    for tx, r in zip(block.transactions, receipts, strict=True):
        tip = min(max_tip(tx), max_fee(tx) - base) if hasattr(tx, "max_fee_per_gas") else tx.gas_price - base
        items.append((tip, r.gas_used - previous))
        previous = r.gas_used
    items.sort()
    total = sum(g for _, g in items) or 1
    out = []
    for pct in percentiles:
        threshold = total * pct / 100
        acc = 0
        for tip, gas in items:
            acc += gas
            if acc >= threshold:
                out.append(tip)
                break
        else:
            out.append(items[-1][0])
    return out


# -- state ------------------------------------------------------------------------------------


def _state(core: ChainCore, ref_raw: Any, position: int) -> Any:
    return core.ledger.state_at(core.resolve(p.block_ref(ref_raw, str(position))))


@rpc("eth_getBalance", max_params=2)
def eth_get_balance(core: ChainCore, params: list[Any]) -> str:
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    return q(_state(core, ref, 1).get_balance(address))


@rpc("eth_getTransactionCount", max_params=2)
def eth_get_transaction_count(core: ChainCore, params: list[Any]) -> str:
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    if ref == "pending":
        return q(core.pool.next_nonce(address, core.account(address).nonce))
    return q(_state(core, ref, 1).get_nonce(address))


@rpc("eth_getCode", max_params=2)
def eth_get_code(core: ChainCore, params: list[Any]) -> str:
    who, ref = args(params, 1, 1)
    address = p.address(who, "0")
    return d(_state(core, ref, 1).get_code(address))


@rpc("eth_getStorageAt", max_params=3)
def eth_get_storage_at(core: ChainCore, params: list[Any]) -> str:
    who, slot_raw, ref = args(params, 2, 1)
    address = p.address(who, "0")
    slot = p.quantity(slot_raw, "1") if isinstance(slot_raw, str) and len(slot_raw) <= 66 else None
    if slot is None:
        raise InvalidParams("invalid argument 1: storage slot must be a hex quantity of at most 32 bytes")
    value = _state(core, ref, 2).get_storage(address, slot)
    return "0x" + value.to_bytes(32, "big").hex()


# -- execution ------------------------------------------------------------------------------


def _call(core: ChainCore, params: list[Any], estimate: bool) -> Any:
    req_raw, ref_raw, overrides_raw, block_overrides = args(params, 1, 3)
    if estimate and block_overrides not in (None, {}):
        raise InvalidParams("invalid argument 3: block overrides are not supported by eth_estimateGas")
    req = p.call_request(req_raw)
    header = core.resolve(p.block_ref(ref_raw, "1"))
    overrides = p.state_overrides(overrides_raw)
    sender = req.sender or b"\x00" * 20
    if block_overrides not in (None, {}):
        from node.rpc.eth_extra import call_in_overridden_block

        result = call_in_overridden_block(core, header, req, overrides, block_overrides)
        _raise_on_failure(result)
        return d(result.output)
    auths = _authorizations(req)
    if estimate:
        gas, result = core.estimate_gas(
            header, sender, req.to, req.data, req.value, req.gas, overrides, authorizations=auths
        )
        _raise_on_failure(result)
        return q(gas)
    result = core.call(header, sender, req.to, req.data, req.value, req.gas, overrides, authorizations=auths)
    _raise_on_failure(result)
    return d(result.output)


def _authorizations(req: p.CallRequest) -> list[Any] | None:
    """The request's EIP-7702 authorizations as py-evm builds set-code transactions."""
    if req.authorization_list is None:
        return None
    from eth.vm.forks.prague.transactions import Authorization

    return [Authorization(a.chain_id, a.address, a.nonce, a.y_parity, a.r, a.s) for a in req.authorization_list]


def _raise_on_failure(result: Any) -> None:
    if result.success:
        return
    if result.reverted:
        raise ExecutionReverted(result.output)
    raise ServerError(result.error)


@rpc("eth_call", max_params=4, lane=READ)
def eth_call(core: ChainCore, params: list[Any]) -> str:
    return str(_call(core, params, estimate=False))


@rpc("eth_estimateGas", max_params=4, lane=READ)
def eth_estimate_gas(core: ChainCore, params: list[Any]) -> str:
    return str(_call(core, params, estimate=True))


# -- transactions ---------------------------------------------------------------------------


@rpc("eth_sendRawTransaction", max_params=1)
def eth_send_raw_transaction(core: ChainCore, params: list[Any]) -> str:
    (raw,) = args(params, 1)
    return d(core.submit_raw(p.data(raw, "0")))


def _dev_key(core: ChainCore, who: bytes | None) -> bytes:
    if who is None:
        raise InvalidParams("invalid argument 0: missing \"from\"")
    key = core.dev_keys.get(who)
    if key is None:
        # anvil's code and words: -32602 "No Signer available".
        raise InvalidParams(f"No Signer available: {d(who)} is not a dev account of this node (impersonate it first)")
    return key


@rpc("eth_sendTransaction", max_params=1)
def eth_send_transaction(core: ChainCore, params: list[Any]) -> str:
    (req_raw,) = args(params, 1)
    req = p.call_request(req_raw)
    impersonated = req.sender is not None and (core.auto_impersonate or req.sender in core.impersonated)
    key = None if impersonated else _dev_key(core, req.sender)
    assert req.sender is not None
    head = core.ledger.head
    nonce = req.nonce
    if nonce is None:
        nonce = core.pool.next_nonce(req.sender, core.account(req.sender).nonce)
    gas = req.gas
    if gas is None:
        gas, result = core.estimate_gas(
            head, req.sender, req.to, req.data, req.value, authorizations=_authorizations(req)
        )
        _raise_on_failure(result)
    tx: dict[str, Any] = {
        "chainId": core.ledger.chain_id,
        "nonce": nonce,
        "gas": gas,
        "value": req.value,
        "data": req.data,
    }
    if req.to is not None:
        tx["to"] = req.to
    if req.access_list is not None:
        tx["accessList"] = [
            {"address": d(a), "storageKeys": ["0x" + k.to_bytes(32, "big").hex() for k in ks]}
            for a, ks in req.access_list
        ]
    if req.gas_price is not None and req.max_fee_per_gas is None:
        tx["gasPrice"] = req.gas_price
        if req.access_list is not None:
            tx["type"] = 1
    else:
        tip = req.max_priority_fee_per_gas if req.max_priority_fee_per_gas is not None else DEFAULT_TIP
        tx["maxPriorityFeePerGas"] = tip
        # geth's rule: room for the base fee to double before the transaction is mined.
        tx["maxFeePerGas"] = (
            req.max_fee_per_gas if req.max_fee_per_gas is not None else 2 * core.next_base_fee() + tip
        )
        tx["type"] = 2
    if req.authorization_list is not None:
        if req.to is None:
            raise InvalidParams("invalid argument 0: a set-code transaction (authorizationList) needs \"to\"")
        tx["type"] = 4
        tx["authorizationList"] = [
            {"chainId": a.chain_id, "address": to_checksum_address(a.address), "nonce": a.nonce,
             "yParity": a.y_parity, "r": a.r, "s": a.s}
            for a in req.authorization_list
        ]
        tx.setdefault("accessList", [])
    if key is None:
        if req.authorization_list is not None:
            raise InvalidParams("invalid argument 0: an impersonated account cannot send a set-code transaction")
        unsigned = impersonated_transaction(tx, req.sender)
        core.ledger.record_impersonated(unsigned.hash, req.sender)
        return d(core.submit(unsigned))
    signed = Account.sign_transaction(tx, key)
    return d(core.submit_raw(bytes(signed.raw_transaction)))


@rpc("eth_sign", max_params=2)
def eth_sign(core: ChainCore, params: list[Any]) -> str:
    who, message = args(params, 2)
    key = _dev_key(core, p.address(who, "0"))
    signed = Account.sign_message(encode_defunct(p.data(message, "1")), key)
    return d(signed.signature)


@rpc("personal_sign", max_params=2)
def personal_sign(core: ChainCore, params: list[Any]) -> str:
    message, who = args(params, 2)
    return eth_sign(core, [who, message])


@rpc("eth_signTypedData_v4", "eth_signTypedData", max_params=2)
def eth_sign_typed_data(core: ChainCore, params: list[Any]) -> str:
    who, typed = args(params, 2)
    key = _dev_key(core, p.address(who, "0"))
    if isinstance(typed, str):
        import json

        try:
            typed = json.loads(typed)
        except ValueError:
            raise InvalidParams("invalid argument 1: typed data is not JSON") from None
    if not isinstance(typed, dict):
        raise InvalidParams("invalid argument 1: expected EIP-712 typed data")
    try:
        message = encode_typed_data(full_message=typed)
    except Exception as e:
        raise InvalidParams(f"invalid argument 1: {e}") from None
    return d(Account.sign_message(message, key).signature)


def _tx_at(core: ChainCore, number: int, index: int) -> dict[str, Any] | None:
    header = core.ledger.header_by_number(number)
    if header is None:
        return None
    block = core.ledger.block(header)
    if index >= len(block.transactions):
        return None
    out = format_transaction(block.transactions[index], header, index)
    out["blockTimestamp"] = q(header.timestamp)
    return out


@rpc("eth_getTransactionByHash", max_params=1)
def eth_get_transaction_by_hash(core: ChainCore, params: list[Any]) -> dict[str, Any] | None:
    (h,) = args(params, 1)
    tx_hash = p.hash32(h, "0")
    where = core.ledger.transaction_location(tx_hash)
    if where is not None:
        return _tx_at(core, *where)
    entry = core.pool.by_hash.get(tx_hash)
    return format_transaction(entry.tx) if entry is not None else None


@rpc("eth_getTransactionByBlockNumberAndIndex", max_params=2)
def eth_get_tx_by_number_and_index(core: ChainCore, params: list[Any]) -> dict[str, Any] | None:
    ref, index = args(params, 2)
    header = core.resolve(p.block_ref(ref, "0"))
    return _tx_at(core, header.block_number, p.quantity(index, "1"))


@rpc("eth_getTransactionByBlockHashAndIndex", max_params=2)
def eth_get_tx_by_hash_and_index(core: ChainCore, params: list[Any]) -> dict[str, Any] | None:
    h, index = args(params, 2)
    header = core.ledger.header_by_hash(p.hash32(h, "0"))
    if header is None:
        return None
    return _tx_at(core, header.block_number, p.quantity(index, "1"))


@rpc("eth_getTransactionReceipt", max_params=1)
def eth_get_transaction_receipt(core: ChainCore, params: list[Any]) -> dict[str, Any] | None:
    (h,) = args(params, 1)
    where = core.ledger.transaction_location(p.hash32(h, "0"))
    if where is None:
        return None
    header = core.ledger.header_by_number(where[0])
    assert header is not None
    block = core.ledger.block(header)
    receipts = format_receipts(block, core.ledger.receipts(block))
    return receipts[where[1]]


@rpc("eth_getBlockReceipts", max_params=1)
def eth_get_block_receipts(core: ChainCore, params: list[Any]) -> list[dict[str, Any]] | None:
    (ref,) = args(params, 1)
    block_ref = p.block_ref(ref, "0")
    try:
        header = core.resolve(block_ref)
    except (UnknownBlock, NotFound):
        return None  # an unknown block, by number or by hash, has no receipts (anvil: null)
    block = core.ledger.block(header)
    return format_receipts(block, core.ledger.receipts(block))


# -- blocks ---------------------------------------------------------------------------------


def _block_json(core: ChainCore, header: Any, full: bool) -> dict[str, Any]:
    return format_block(core.ledger.block(header), full)


@rpc("eth_getBlockByNumber", max_params=2)
def eth_get_block_by_number(core: ChainCore, params: list[Any]) -> dict[str, Any] | None:
    ref, full = args(params, 1, 1)
    full = p.boolean(full, "1") if full is not None else False
    if ref == "pending":
        return _pending_block(core, full)
    try:
        header = core.resolve(p.block_ref(ref, "0"))
    except UnknownBlock:
        return None
    return _block_json(core, header, full)


def _pending_block(core: ChainCore, full: bool) -> dict[str, Any]:
    """The block the node would build next, as geth shows it: no hash, nonce or miner yet."""
    from state.vm import LedgerVM

    head = core.ledger.head
    header = LedgerVM.create_header_from_parent(head, timestamp=max(core.now(), head.timestamp + 1))
    out = format_header(header)
    txs = core.pool.select(head.gas_limit)
    out.update(hash=None, nonce=None, miner=None, uncles=[], size=q(0), withdrawals=[])
    out["gasUsed"] = q(sum(tx.gas for tx in txs))
    out["transactions"] = [format_transaction(tx) for tx in txs] if full else [d(tx.hash) for tx in txs]
    return out


@rpc("eth_getBlockByHash", max_params=2)
def eth_get_block_by_hash(core: ChainCore, params: list[Any]) -> dict[str, Any] | None:
    h, full = args(params, 1, 1)
    full = p.boolean(full, "1") if full is not None else False
    header = core.ledger.header_by_hash(p.hash32(h, "0"))
    return None if header is None else _block_json(core, header, full)


@rpc("eth_getBlockTransactionCountByNumber", max_params=1)
def eth_block_tx_count_by_number(core: ChainCore, params: list[Any]) -> str | None:
    (ref,) = args(params, 1)
    try:
        header = core.resolve(p.block_ref(ref, "0"))
    except UnknownBlock:
        return None
    return q(len(core.ledger.block(header).transactions))


@rpc("eth_getBlockTransactionCountByHash", max_params=1)
def eth_block_tx_count_by_hash(core: ChainCore, params: list[Any]) -> str | None:
    (h,) = args(params, 1)
    header = core.ledger.header_by_hash(p.hash32(h, "0"))
    return None if header is None else q(len(core.ledger.block(header).transactions))


@rpc("eth_getUncleCountByBlockNumber", "eth_getUncleCountByBlockHash", max_params=1)
def eth_uncle_count(core: ChainCore, params: list[Any]) -> str:
    return q(0)


@rpc("eth_getUncleByBlockNumberAndIndex", "eth_getUncleByBlockHashAndIndex", max_params=2)
def eth_uncle(core: ChainCore, params: list[Any]) -> None:
    return None


# -- logs and filters -----------------------------------------------------------------------


@rpc("eth_getLogs", max_params=1, lane=READ)
def eth_get_logs(core: ChainCore, params: list[Any]) -> list[dict[str, Any]]:
    (criteria,) = args(params, 1)
    return core.logs(p.log_filter(criteria))


@rpc("eth_newFilter", max_params=1)
def eth_new_filter(core: ChainCore, params: list[Any]) -> str:
    (criteria,) = args(params, 1)
    return q(core.new_filter("logs", p.log_filter(criteria), client=current_client()))


@rpc("eth_newBlockFilter", max_params=0)
def eth_new_block_filter(core: ChainCore, params: list[Any]) -> str:
    return q(core.new_filter("block", client=current_client()))


@rpc("eth_newPendingTransactionFilter", max_params=0)
def eth_new_pending_filter(core: ChainCore, params: list[Any]) -> str:
    return q(core.new_filter("pending", client=current_client()))


@rpc("eth_getFilterChanges", max_params=1)
def eth_get_filter_changes(core: ChainCore, params: list[Any]) -> list[Any]:
    (fid,) = args(params, 1)
    return core.filter_changes(p.quantity(fid, "0"))


@rpc("eth_getFilterLogs", max_params=1, lane=READ)
def eth_get_filter_logs(core: ChainCore, params: list[Any]) -> list[dict[str, Any]]:
    (fid,) = args(params, 1)
    return core.filter_logs(p.quantity(fid, "0"))


@rpc("eth_uninstallFilter", max_params=1)
def eth_uninstall_filter(core: ChainCore, params: list[Any]) -> bool:
    (fid,) = args(params, 1)
    return core.uninstall_filter(p.quantity(fid, "0"))


# -- txpool ---------------------------------------------------------------------------------


@rpc("txpool_status", max_params=0)
def txpool_status(core: ChainCore, params: list[Any]) -> dict[str, str]:
    return {"pending": q(core.pool.pending_count), "queued": q(core.pool.queued_count)}


@rpc("txpool_content", max_params=0)
def txpool_content(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    pending, queued = core.pool.content()

    def shape(table: dict[bytes, list[Any]]) -> dict[str, Any]:
        from eth_utils import to_checksum_address

        return {
            to_checksum_address(s): {str(tx.nonce): format_transaction(tx) for tx in txs}
            for s, txs in table.items()
        }

    return {"pending": shape(pending), "queued": shape(queued)}


@rpc("txpool_inspect", max_params=0)
def txpool_inspect(core: ChainCore, params: list[Any]) -> dict[str, Any]:
    pending, queued = core.pool.content()

    def shape(table: dict[bytes, list[Any]]) -> dict[str, Any]:
        from eth_utils import to_checksum_address

        return {
            to_checksum_address(s): {
                str(tx.nonce): f"{d(tx.to) if tx.to else 'contract creation'}: {tx.value} wei + {tx.gas} gas × {max_fee(tx)} wei"
                for tx in txs
            }
            for s, txs in table.items()
        }

    return {"pending": shape(pending), "queued": shape(queued)}


# -- dev methods ----------------------------------------------------------------------------


#: Blocks one job of evm_mine builds; a larger count continues in further jobs.
MINE_STEP = 50


def _mine_steps(core: ChainCore, remaining: int, timestamp: int | None) -> str | Continue:
    step = min(remaining, MINE_STEP)
    core.mine_blocks(step, timestamp)
    if remaining == step:
        return "0x0"
    return Continue(lambda: _mine_steps(core, remaining - step, None))


@rpc("evm_mine", max_params=1)
def evm_mine(core: ChainCore, params: list[Any]) -> str | Continue:
    first = params[0] if params else None
    blocks, timestamp = 1, None
    if isinstance(first, dict):  # ganache/anvil {timestamp, blocks}
        blocks = p.quantity(first.get("blocks", 1), "0.blocks") if "blocks" in first else 1
        timestamp = p.quantity(first["timestamp"], "0.timestamp") if "timestamp" in first else None
    elif first is not None:  # evm_mine(timestamp)
        timestamp = p.quantity(first, "0") if isinstance(first, str) else int(first)
    head_timestamp = core.ledger.head.timestamp
    if timestamp is not None and timestamp <= head_timestamp:
        # anvil's code and words for a timestamp in the past
        raise InvalidParams(f"Timestamp error: {timestamp} is lower than previous block's timestamp {head_timestamp}")
    if blocks > MAX_MINE_BLOCKS:
        raise InvalidParams(f"invalid argument 0: at most {MAX_MINE_BLOCKS} blocks at once")
    if blocks == 0:
        return "0x0"
    return _mine_steps(core, blocks, timestamp)


@rpc("evm_snapshot", "anvil_snapshot", max_params=0)
def evm_snapshot(core: ChainCore, params: list[Any]) -> str:
    return q(core.snapshot())


@rpc("evm_revert", "anvil_revert", max_params=1)
def evm_revert(core: ChainCore, params: list[Any]) -> bool:
    (sid,) = args(params, 1)
    return core.revert(p.quantity(sid, "0"))


@rpc("evm_increaseTime", "anvil_increaseTime", max_params=1)
def evm_increase_time(core: ChainCore, params: list[Any]) -> str:
    (seconds,) = args(params, 1)
    amount = seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else p.quantity(seconds, "0")
    return q(core.increase_time(amount))


@rpc("evm_setNextBlockTimestamp", "anvil_setNextBlockTimestamp", max_params=1)
def evm_set_next_block_timestamp(core: ChainCore, params: list[Any]) -> None:
    (ts,) = args(params, 1)
    timestamp = ts if isinstance(ts, int) and not isinstance(ts, bool) else p.quantity(ts, "0")
    head = core.ledger.head
    if timestamp <= head.timestamp:
        raise InvalidParams(
            f"Timestamp error: {timestamp} is lower than or equal to previous block's timestamp {head.timestamp}"
        )
    core.set_next_timestamp(timestamp)
    return None


@rpc("evm_setAutomine", "anvil_setAutomine", max_params=1)
def evm_set_automine(core: ChainCore, params: list[Any]) -> None:
    (on,) = args(params, 1)
    core.set_automine(p.boolean(on, "0"))
    return None


@rpc("anvil_getAutomine", "hardhat_getAutomine", max_params=0)
def anvil_get_automine(core: ChainCore, params: list[Any]) -> bool:
    return core.automine


def _edit(core: ChainCore, **kw: Any) -> None:
    core.edit_state(**kw)


@rpc("anvil_setBalance", "hardhat_setBalance", max_params=2)
def anvil_set_balance(core: ChainCore, params: list[Any]) -> None:
    who, amount = args(params, 2)
    _edit(core, address=p.address(who, "0"), balance=p.quantity(amount, "1"))


@rpc("anvil_setNonce", "hardhat_setNonce", max_params=2)
def anvil_set_nonce(core: ChainCore, params: list[Any]) -> None:
    who, nonce = args(params, 2)
    _edit(core, address=p.address(who, "0"), nonce=p.quantity(nonce, "1"))


@rpc("anvil_setCode", "hardhat_setCode", max_params=2)
def anvil_set_code(core: ChainCore, params: list[Any]) -> None:
    who, code = args(params, 2)
    _edit(core, address=p.address(who, "0"), code=p.data(code, "1"))


@rpc("anvil_setStorageAt", "hardhat_setStorageAt", max_params=3)
def anvil_set_storage_at(core: ChainCore, params: list[Any]) -> bool:
    who, slot, value = args(params, 3)
    _edit(
        core,
        address=p.address(who, "0"),
        storage={p.quantity(slot, "1"): int.from_bytes(p.hash32(value, "2"), "big")},
    )
    return True
