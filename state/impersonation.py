"""Transactions sent on behalf of an account whose key the node does not hold (anvil's
``anvil_impersonateAccount``), a dev-chain tool only.

Such a transaction carries a placeholder signature that names its sender (r = sender + 1,
s = 1, a signature no key produces), so two senders' otherwise equal transactions get
different hashes. The sender is set on the transaction object for execution and recorded
in the store beside the chain, keyed by transaction hash, so that a block read back from
the store shows the same sender. A peer could not verify such a block: the node only
accepts these transactions while it runs as a dev chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth.abc import SignedTransactionAPI

from state.vm import LedgerVM

#: Prefix of the sender records: transaction hash -> sender address.
IMPERSONATED_PREFIX = b"ailedger:impersonated:"
#: The placeholder signature's s; a real signature has s > 1 with overwhelming odds.
PLACEHOLDER_S = 1


def impersonated_transaction(fields: dict[str, Any], sender: bytes) -> SignedTransactionAPI:
    """A transaction from ``sender`` with a placeholder signature.

    ``fields`` uses eth-account's keys (``type``, ``chainId``, ``nonce``, ``gas``, ``to``,
    ``value``, ``data``, ``gasPrice`` or ``maxFeePerGas``/``maxPriorityFeePerGas``,
    ``accessList``).
    """
    builder: Any = LedgerVM.get_transaction_builder()
    r = int.from_bytes(sender, "big") + 1
    to = fields.get("to") or b""
    access_list = [
        (bytes.fromhex(e["address"][2:]), [int(k, 16) for k in e["storageKeys"]])
        for e in fields.get("accessList", [])
    ]
    kind = fields.get("type", 0)
    tx: SignedTransactionAPI
    if kind == 2:
        tx = builder.new_dynamic_fee_transaction(
            chain_id=fields["chainId"], nonce=fields["nonce"],
            max_priority_fee_per_gas=fields["maxPriorityFeePerGas"],
            max_fee_per_gas=fields["maxFeePerGas"], gas=fields["gas"], to=to,
            value=fields["value"], data=fields["data"], access_list=access_list,
            y_parity=0, r=r, s=PLACEHOLDER_S,
        )
    elif kind == 1:
        tx = builder.new_access_list_transaction(
            chain_id=fields["chainId"], nonce=fields["nonce"], gas_price=fields["gasPrice"],
            gas=fields["gas"], to=to, value=fields["value"], data=fields["data"],
            access_list=access_list, y_parity=0, r=r, s=PLACEHOLDER_S,
        )
    else:
        tx = builder.new_transaction(
            nonce=fields["nonce"], gas_price=fields["gasPrice"], gas=fields["gas"], to=to,
            value=fields["value"], data=fields["data"], v=35 + 2 * fields["chainId"], r=r,
            s=PLACEHOLDER_S,
        )
    set_sender(tx, sender)
    return tx


def set_sender(tx: SignedTransactionAPI, sender: bytes) -> None:
    # py-evm caches `sender` (a cached_property) in the instance dict: fill the cache.
    tx.__dict__["sender"] = sender


def restore_senders(transactions: Iterable[SignedTransactionAPI], records: Any) -> None:
    """Give each impersonated transaction read back from the store its recorded sender."""
    for tx in transactions:
        if tx.s != PLACEHOLDER_S:
            continue
        sender = records.get(IMPERSONATED_PREFIX + tx.hash)
        if sender is not None:
            set_sender(tx, bytes(sender))
