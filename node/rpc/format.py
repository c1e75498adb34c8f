"""Ethereum JSON-RPC shapes of blocks, transactions, receipts and logs, as geth prints them."""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, LogAPI, ReceiptAPI, SignedTransactionAPI
from eth_utils import to_checksum_address

from node.txpool import max_fee, max_tip
from state.native import NativeTransaction

ZERO_HASH = "0x" + "00" * 32


def hex_quantity(value: int) -> str:
    """A JSON-RPC quantity: minimal hex."""
    return hex(value)


def hex_data(value: bytes) -> str:
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
        "number": hex_quantity(header.block_number),
        "hash": hex_data(header.hash),
        "parentHash": hex_data(header.parent_hash),
        "nonce": hex_data(header.nonce),
        "sha3Uncles": hex_data(header.uncles_hash),
        "logsBloom": hex_data(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": hex_data(header.transaction_root),
        "stateRoot": hex_data(header.state_root),
        "receiptsRoot": hex_data(header.receipt_root),
        "miner": addr(header.coinbase) or "0x" + "00" * 20,
        "difficulty": hex_quantity(header.difficulty),
        "totalDifficulty": hex_quantity(header.difficulty),
        "extraData": hex_data(header.extra_data),
        "gasLimit": hex_quantity(header.gas_limit),
        "gasUsed": hex_quantity(header.gas_used),
        "timestamp": hex_quantity(header.timestamp),
        "mixHash": hex_data(header.mix_hash),
    }
    for field, key in (
        ("base_fee_per_gas", "baseFeePerGas"),
        ("blob_gas_used", "blobGasUsed"),
        ("excess_blob_gas", "excessBlobGas"),
    ):
        if hasattr(header, field):
            out[key] = hex_quantity(getattr(header, field))
    for field, key in (
        ("withdrawals_root", "withdrawalsRoot"),
        ("parent_beacon_block_root", "parentBeaconBlockRoot"),
        ("requests_hash", "requestsHash"),
    ):
        if hasattr(header, field):
            out[key] = hex_data(getattr(header, field))
    return out


def format_transaction(
    tx: SignedTransactionAPI,
    header: BlockHeaderAPI | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """A transaction as eth_getTransactionByHash returns it (pending when header is None)."""
    kind = tx_type(tx)
    out: dict[str, Any] = {
        "hash": hex_data(tx.hash),
        "type": hex_quantity(kind),
        "nonce": hex_quantity(tx.nonce),
        "blockHash": hex_data(header.hash) if header is not None else None,
        "blockNumber": hex_quantity(header.block_number) if header is not None else None,
        "transactionIndex": hex_quantity(index) if index is not None else None,
        "from": addr(tx.sender),
        "to": addr(tx.to),
        "value": hex_quantity(tx.value),
        "gas": hex_quantity(tx.gas),
        "input": hex_data(tx.data),
        "r": hex_quantity(tx.r),
        "s": hex_quantity(tx.s),
    }
    if kind == 0:
        out["gasPrice"] = hex_quantity(tx.gas_price)
        out["v"] = hex_quantity(tx.v)  # type: ignore[attr-defined]  # legacy transactions carry v
        if tx.chain_id is not None:
            out["chainId"] = hex_quantity(tx.chain_id)
    else:
        out["chainId"] = hex_quantity(tx.chain_id or 0)
        out["v"] = hex_quantity(tx.y_parity)
        out["yParity"] = hex_quantity(tx.y_parity)
        out["accessList"] = [
            {"address": addr(a), "storageKeys": ["0x" + k.to_bytes(32, "big").hex() for k in keys]}
            for a, keys in tx.access_list
        ]
        if kind == 1:
            out["gasPrice"] = hex_quantity(tx.gas_price)
        else:
            out["maxFeePerGas"] = hex_quantity(max_fee(tx))
            out["maxPriorityFeePerGas"] = hex_quantity(max_tip(tx))
            base_fee = getattr(header, "base_fee_per_gas", None) if header is not None else None
            out["gasPrice"] = hex_quantity(
                min(max_fee(tx), base_fee + max_tip(tx)) if base_fee is not None else max_fee(tx)
            )
        inner = getattr(tx, "_inner", None)
        if isinstance(inner, NativeTransaction):
            out[inner.rpc_name] = inner.payload_json()
        if kind == 4:
            out["authorizationList"] = [
                {
                    "chainId": hex_quantity(a.chain_id),
                    "address": addr(a.address),
                    "nonce": hex_quantity(a.nonce),
                    "yParity": hex_quantity(a.y_parity),
                    "r": hex_quantity(a.r),
                    "s": hex_quantity(a.s),
                }
                for a in tx.authorization_list
            ]
    return out


def format_block(
    block: BlockAPI, full_transactions: bool
) -> dict[str, Any]:
    header = block.header
    out = format_header(header)
    out["size"] = hex_quantity(len(rlp.encode(block)))
    out["uncles"] = []
    if full_transactions:
        out["transactions"] = [
            format_transaction(tx, header, i) for i, tx in enumerate(block.transactions)
        ]
    else:
        out["transactions"] = [hex_data(tx.hash) for tx in block.transactions]
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
        "topics": ["0x" + t.to_bytes(32, "big").hex() if isinstance(t, int) else hex_data(t) for t in log.topics],
        "data": hex_data(log.data),
        "blockNumber": hex_quantity(header.block_number),
        "blockHash": hex_data(header.hash),
        "blockTimestamp": hex_quantity(header.timestamp),
        "transactionHash": hex_data(tx.hash),
        "transactionIndex": hex_quantity(tx_index),
        "logIndex": hex_quantity(log_index),
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
                "transactionHash": hex_data(tx.hash),
                "transactionIndex": hex_quantity(i),
                "blockHash": hex_data(header.hash),
                "blockNumber": hex_quantity(header.block_number),
                "from": addr(tx.sender),
                "to": addr(tx.to),
                "cumulativeGasUsed": hex_quantity(receipt.gas_used),
                "gasUsed": hex_quantity(receipt.gas_used - previous_gas),
                "effectiveGasPrice": hex_quantity(price),
                "contractAddress": contract,
                "logs": logs,
                "logsBloom": hex_data(receipt.bloom.to_bytes(256, "big")),
                "type": hex_quantity(kind),
                "status": hex_quantity(1 if receipt.state_root == b"\x01" else 0),
            }
        )
        previous_gas = receipt.gas_used
    return out
