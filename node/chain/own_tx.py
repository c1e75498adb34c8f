"""The node's own transactions (double-sign evidence, inference receipts, dev-account sends):
one fee rule and one signer, so every transaction a node signs itself looks the same.

The fee rule is geth's and anvil's suggestion: a priority fee of :data:`NODE_TIP` and a fee cap
of twice the next block's base fee plus that tip, so the transaction stays includable while the
base fee rises for several full blocks.
"""

from __future__ import annotations

from eth_account import Account
from eth_utils import to_checksum_address

#: Priority fee (wei per gas) of the node's own transactions, as anvil's eth_maxPriorityFeePerGas.
NODE_TIP = 10**9


def suggested_fees(next_base_fee: int, tip: int = NODE_TIP) -> tuple[int, int]:
    """``(maxFeePerGas, maxPriorityFeePerGas)`` for a transaction in the next few blocks."""
    return 2 * next_base_fee + tip, tip


def sign_call(private_key: bytes, chain_id: int, nonce: int, to: bytes, data: bytes, gas: int,
              max_fee: int, tip: int = NODE_TIP, value: int = 0) -> bytes:
    """A signed EIP-1559 transaction calling ``to``: the raw bytes a pool admits."""
    tx = {"type": 2, "chainId": chain_id, "nonce": nonce, "to": to_checksum_address(to), "value": value,
          "data": data, "gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
    return bytes(Account.sign_transaction(tx, private_key).raw_transaction)
