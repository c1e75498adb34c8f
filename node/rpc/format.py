"""Ethereum JSON-RPC shapes of blocks, transactions, receipts and logs, as geth prints them."""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, LogAPI, ReceiptAPI, SignedTransactionAPI
from eth_utils import to_checksum_address

from node.txpool import max_fee, max_tip
from state.native import NativeTransaction

ZERO_HASH = "0x" + "00" * 32


def q(value: int) -> str:
    """A JSON-RPC quantity: minimal hex."""
    return hex(value)


def d(value: bytes) -> str:
    """JSON-RPC data: 0x-hex of the bytes."""
    return "0x" + bytes(value).hex()


def addr(value: bytes | None) -> str | None:
    if value is None or value == b"":
        return None
    return to_checksum_address(value).lower()


def tx_type(tx: SignedTransactionAPI) -> int:
    return int(getattr(tx, "type_id", None) or 0)


def format_header(header: BlockHeaderAPI) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": q(header.block_number),
        "hash": d(header.hash),
        "parentHash": d(header.parent_hash),
        "nonce": d(header.nonce),
        "sha3Uncles": d(header.uncles_hash),
        "logsBloom": d(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": d(header.transaction_root),
        "stateRoot": d(header.state_root),
        "receiptsRoot": d(header.receipt_root),
        "miner": addr(header.coinbase) or "0x" + "00" * 20,
        "difficulty": q(header.difficulty),
        "totalDifficulty": q(header.difficulty),
        "extraData": d(header.extra_data),
        "gasLimit": q(header.gas_limit),
        "gasUsed": q(header.gas_used),
        "timestamp": q(header.timestamp),
        "mixHash": d(header.mix_hash),
    }
    for field, key in (
        ("base_fee_per_gas", "baseFeePerGas"),
        ("blob_gas_used", "blobGasUsed"),
        ("excess_blob_gas", "excessBlobGas"),
    ):
        if hasattr(header, field):
            out[key] = q(getattr(header, field))
    for field, key in (
        ("withdrawals_root", "withdrawalsRoot"),
        ("parent_beacon_block_root", "parentBeaconBlockRoot"),
        ("requests_hash", "requestsHash"),
    ):
        if hasattr(header, field):
            out[key] = d(getattr(header, field))
    return out


def format_transaction(
    tx: SignedTransactionAPI,
    header: BlockHeaderAPI | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """A transaction as eth_getTransactionByHash returns it (pending when header is None)."""
    kind = tx_type(tx)
    out: dict[str, Any] = {
        "hash": d(tx.hash),
        "type": q(kind),
        "nonce": q(tx.nonce),
        "blockHash": d(header.hash) if header is not None else None,
        "blockNumber": q(header.block_number) if header is not None else None,
        "transactionIndex": q(index) if index is not None else None,
        "from": addr(tx.sender),
        "to": addr(tx.to),
        "value": q(tx.value),
        "gas": q(tx.gas),
        "input": d(tx.data),
        "r": q(tx.r),
        "s": q(tx.s),
    }
    if kind == 0:
        out["gasPrice"] = q(tx.gas_price)
        out["v"] = q(tx.v)  # type: ignore[attr-defined]  # legacy transactions carry v
        if tx.chain_id is not None:
            out["chainId"] = q(tx.chain_id)
    else:
        out["chainId"] = q(tx.chain_id or 0)
        out["v"] = q(tx.y_parity)
        out["yParity"] = q(tx.y_parity)
        out["accessList"] = [
            {"address": addr(a), "storageKeys": ["0x" + k.to_bytes(32, "big").hex() for k in keys]}
            for a, keys in tx.access_list
        ]
        if kind == 1:
            out["gasPrice"] = q(tx.gas_price)
        else:
            out["maxFeePerGas"] = q(max_fee(tx))
            out["maxPriorityFeePerGas"] = q(max_tip(tx))
            base_fee = getattr(header, "base_fee_per_gas", None) if header is not None else None
            out["gasPrice"] = q(
                min(max_fee(tx), base_fee + max_tip(tx)) if base_fee is not None else max_fee(tx)
            )
        inner = getattr(tx, "_inner", None)
        if isinstance(inner, NativeTransaction):
            out[inner.rpc_name] = inner.payload_json()
        if kind == 4:
            out["authorizationList"] = [
                {
                    "chainId": q(a.chain_id),
                    "address": addr(a.address),
                    "nonce": q(a.nonce),
                    "yParity": q(a.y_parity),
                    "r": q(a.r),
                    "s": q(a.s),
                }
                for a in tx.authorization_list
            ]
    return out


def format_block(
    block: BlockAPI, full_transactions: bool
) -> dict[str, Any]:
    header = block.header
    out = format_header(header)
    out["size"] = q(len(rlp.encode(block)))
    out["uncles"] = []
    if full_transactions:
        out["transactions"] = [
            format_transaction(tx, header, i) for i, tx in enumerate(block.transactions)
        ]
    else:
        out["transactions"] = [d(tx.hash) for tx in block.transactions]
    if hasattr(block, "withdrawals"):
        out["withdrawals"] = []
    return out


def format_log(
    log: LogAPI,
    header: BlockHeaderAPI,
    tx: SignedTransactionAPI,
    tx_index: int,
    log_index: int,
    removed: bool = False,
) -> dict[str, Any]:
    return {
        "address": addr(log.address),
        "topics": ["0x" + t.to_bytes(32, "big").hex() if isinstance(t, int) else d(t) for t in log.topics],
        "data": d(log.data),
        "blockNumber": q(header.block_number),
        "blockHash": d(header.hash),
        "blockTimestamp": q(header.timestamp),
        "transactionHash": d(tx.hash),
        "transactionIndex": q(tx_index),
        "logIndex": q(log_index),
        "removed": removed,
    }


def format_receipts(block: BlockAPI, receipts: tuple[ReceiptAPI, ...]) -> list[dict[str, Any]]:
    """Every receipt of a block, with per-transaction gas and block-wide log indexes."""
    from eth._utils.address import generate_contract_address

    header = block.header
    base_fee = getattr(header, "base_fee_per_gas", 0)
    out = []
    log_index = 0
    previous_gas = 0
    for i, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
        logs = []
        for log in receipt.logs:
            logs.append(format_log(log, header, tx, i, log_index))
            log_index += 1
        kind = tx_type(tx)
        price = tx.gas_price if kind in (0, 1) else min(max_fee(tx), base_fee + max_tip(tx))
        contract = None
        if not tx.to:
            contract = addr(generate_contract_address(tx.sender, tx.nonce))
        out.append(
            {
                "transactionHash": d(tx.hash),
                "transactionIndex": q(i),
                "blockHash": d(header.hash),
                "blockNumber": q(header.block_number),
                "from": addr(tx.sender),
                "to": addr(tx.to),
                "cumulativeGasUsed": q(receipt.gas_used),
                "gasUsed": q(receipt.gas_used - previous_gas),
                "effectiveGasPrice": q(price),
                "contractAddress": contract,
                "logs": logs,
                "logsBloom": d(receipt.bloom.to_bytes(256, "big")),
                "type": q(kind),
                "status": q(1 if receipt.state_root == b"\x01" else 0),
            }
        )
        previous_gas = receipt.gas_used
    return out
