"""``eth_`` methods that sign with the node's dev accounts: ``eth_accounts``,
``eth_sendTransaction``, ``eth_sign`` and ``eth_signTypedData``.

Only a dev chain holds keys (``ChainCore.dev_keys``); any other account gets anvil's
-32602 "No Signer available", unless it is impersonated (``anvil_impersonateAccount``), in
which case ``eth_sendTransaction`` sends without a signature."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import to_checksum_address

from node.chain.own_tx import NODE_TIP, suggested_fees
from node.rpc import params as p
from node.rpc.context import NodeContext
from node.rpc.errors import InvalidParams
from node.rpc.eth.call import call_authorizations, raise_on_failure
from node.rpc.eth.transactions import answer_when_mined
from node.rpc.format import hex_data
from node.rpc.registry import Continue, Params, args, rpc
from state.impersonation import impersonated_transaction


def _dev_key(ctx: NodeContext, who: bytes | None) -> bytes:
    if who is None:
        raise InvalidParams("invalid argument 0: missing \"from\"")
    key = None if ctx.dev is None else ctx.dev.keys.get(who)
    if key is None:
        # anvil's code and words: -32602 "No Signer available".
        raise InvalidParams(f"No Signer available: {hex_data(who)} is not a dev account of this node (impersonate it first)")
    return key


@rpc("eth_accounts", max_params=0)
def eth_accounts(ctx: NodeContext, params: Params) -> list[str]:
    return [] if ctx.dev is None else [hex_data(a) for a in ctx.dev.keys]


@rpc("eth_sendTransaction", max_params=1)
def eth_send_transaction(ctx: NodeContext, params: Params) -> str | Continue:
    """Sign with a dev key (or send as an impersonated account) and submit. Not a batch
    ``sends`` method: the nonce and gas it fills in must see the calls before it mined."""
    (req_raw,) = args(params, 1)
    req = p.call_request(req_raw)
    impersonated = req.sender is not None and ctx.dev is not None and ctx.dev.may_send_as(req.sender)
    key = None if impersonated else _dev_key(ctx, req.sender)
    assert req.sender is not None
    head = ctx.core.ledger.head
    nonce = req.nonce
    if nonce is None:
        nonce = ctx.core.next_nonce(req.sender)
    gas = req.gas
    if gas is None:
        gas, result = ctx.core.estimate_gas(
            head, req.sender, req.to, req.data, req.value, authorizations=call_authorizations(req)
        )
        raise_on_failure(result)
    tx: dict[str, Any] = {
        "chainId": ctx.core.ledger.chain_id,
        "nonce": nonce,
        "gas": gas,
        "value": req.value,
        "data": req.data,
    }
    if req.to is not None:
        tx["to"] = req.to
    if req.access_list is not None:
        tx["accessList"] = [
            {"address": hex_data(a), "storageKeys": ["0x" + k.to_bytes(32, "big").hex() for k in ks]}
            for a, ks in req.access_list
        ]
    if req.gas_price is not None and req.max_fee_per_gas is None:
        tx["gasPrice"] = req.gas_price
        if req.access_list is not None:
            tx["type"] = 1
    else:
        tip = req.max_priority_fee_per_gas if req.max_priority_fee_per_gas is not None else NODE_TIP
        tx["maxPriorityFeePerGas"] = tip
        # geth's rule: room for the base fee to double before the transaction is mined.
        tx["maxFeePerGas"] = (
            req.max_fee_per_gas if req.max_fee_per_gas is not None else suggested_fees(ctx.core.next_base_fee(), tip)[0]
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
        ctx.core.ledger.record_impersonated(unsigned.hash, req.sender)
        return answer_when_mined(ctx.core, ctx.core.submit(unsigned, wait=False))
    signed = Account.sign_transaction(tx, key)
    return answer_when_mined(ctx.core, ctx.core.submit_raw(bytes(signed.raw_transaction), wait=False))


@rpc("eth_sign", max_params=2)
def eth_sign(ctx: NodeContext, params: Params) -> str:
    who, message = args(params, 2)
    key = _dev_key(ctx, p.address(who, "0"))
    signed = Account.sign_message(encode_defunct(p.data(message, "1")), key)
    return hex_data(signed.signature)


@rpc("eth_signTypedData_v4", "eth_signTypedData", max_params=2)
def eth_sign_typed_data(ctx: NodeContext, params: Params) -> str:
    who, typed = args(params, 2)
    key = _dev_key(ctx, p.address(who, "0"))
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
    return hex_data(Account.sign_message(message, key).signature)
