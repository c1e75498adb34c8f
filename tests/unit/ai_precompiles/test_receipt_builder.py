"""``InferenceReceiptTransaction.for_request``, the one builder of a validator's receipt (the
node's ai_infer and the CLI's ``infer --validator-*``): what it builds is the very call a
validator would make by hand, and the chain records it."""

from __future__ import annotations

import pytest
from eth_utils import keccak

import ai_precompiles as ap
from state.native import InferenceReceiptTransaction, receipt_gas
from state.vm import LedgerTransactionBuilder
from tests.unit.ai_precompiles.ai_harness import CHAIN_ID, GWEI, Sent
from tests.unit.ai_precompiles.ai_world import ENGINE, USER, VALIDATOR, World


def _build(world: World, req: dict, key_index: int = VALIDATOR, fee: int = 700) -> InferenceReceiptTransaction:
    c = world.c
    return InferenceReceiptTransaction.for_request(
        bytes(c.keys[key_index].key), req, world.sign_request(req), output_hash=keccak(text="output"),
        engine_profile=ENGINE, contribution_ids=world.contributions[:2], weights_bp=[6000, 4000], fee=fee, chain_id=CHAIN_ID,
        nonce=c.nonces.get(c.keys[key_index].address, 0), max_priority_fee_per_gas=GWEI,
        max_fee_per_gas=100 * GWEI)


def test_the_receipt_is_the_call_a_validator_makes_by_hand(world: World) -> None:
    req = world.request(world.adapter1, max_fee=1000)
    tx = _build(world, req)
    by_hand = world.receipt_args(req, world.contributions[:2], [6000, 4000], 700, output=keccak(text="output"))
    request, user_sig, output, engine, ids, weights, fee, vaddr, vsig = by_hand
    assert tx.abi_args() == ((req["user"], req["adapter_id"], req["prompt_hash"], req["max_tokens"], req["max_fee"],
                              req["nonce"], req["deadline"], req["chain_id"], req["commercial"]), user_sig, output, engine, ids, weights,
                             fee, vaddr, vsig)
    assert tx.get_sender() == world.c.addr(VALIDATOR) and tx.gas == receipt_gas(2)


def test_the_chain_records_the_built_receipt(world: World) -> None:
    c = world.c
    req = world.request(world.adapter1, max_fee=1000)
    before = c.call("Inference", "depositOf", c.addr(USER))
    tx = _build(world, req)
    evm_tx = c.chain.get_vm().get_transaction_builder().decode(LedgerTransactionBuilder.wrap_native(tx).encode())
    result, receipts, computations = c.chain.mine_all([evm_tx])
    c.nonces[c.keys[VALIDATOR].address] = tx.nonce + 1
    sent = Sent(None, receipts[0], computations[0], result.imported_block)
    assert not sent.computation.is_error
    assert c.call("Inference", "depositOf", c.addr(USER)) == before - 700
    assert c.call("Inference", "nonceUsed", c.addr(USER), req["nonce"]) is True
    ev = ap.load_abi("Inference").events["InferenceRecorded"]
    assert any(lg.topics[0] == ev.topic0 for lg in sent.logs)


def test_a_request_for_another_validator_is_refused_before_signing(world: World) -> None:
    req = world.request(world.adapter1, max_fee=1000)  # bound to VALIDATOR
    with pytest.raises(ValueError, match="bound to validator"):
        _build(world, req, key_index=USER)


def test_a_receipt_attributing_to_the_most_contributions_fits_its_gas() -> None:
    """``inference.max_attributions`` (64) pairs, each a different contributor (each a new pending
    payout): the receipt the node builds for it executes within its gas limit (a fixed 3 M ran
    out of gas after the sidecar had served the request)."""
    from ai_precompiles.registry import adapter_contribution_root
    from tests.unit.ai_precompiles.ai_world import ADAPTER_AUTHOR, CUR1, CUR2, OWNER, build_world

    pairs = 64
    w = build_world(n_keys=10 + pairs)
    c = w.c
    ids = [c.contribute(10 + i, w.datanet, keccak(text=f"wide {i}"), 10, "MIT", keccak(text=f"wide m {i}")).result
           for i in range(pairs)]
    for cid in ids:
        c.send(CUR1, "Datanets", "curate", cid, True, 0)
        c.send(CUR2, "Datanets", "curate", cid, True, 0)
    c.send(OWNER, "Datanets", "publishVersion", w.datanet)
    spec = {"parent_id": w.base, "datanet_ids": [w.datanet], "datanet_versions": [2],
            "contribution_root": adapter_contribution_root(c.state, [w.datanet], [2]),
            "hyper_params_hash": keccak(text="wide hp"), "weights_hash": keccak(text="wide w"),
            "attribution_index_hash": keccak(text="wide i"), "manifest_hash": keccak(text="wide m"),
            "validator": c.addr(VALIDATOR), "license": "apache-2.0"}
    adapter = c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", spec).result
    weights = [10_000 // pairs] * pairs
    weights[0] += 10_000 - sum(weights)
    req = w.request(adapter, max_fee=10**15)
    tx = InferenceReceiptTransaction.for_request(
        bytes(c.keys[VALIDATOR].key), req, w.sign_request(req), output_hash=keccak(text="wide output"),
        engine_profile=ENGINE, contribution_ids=ids, weights_bp=weights, fee=10**15, chain_id=CHAIN_ID,
        nonce=c.nonces.get(c.keys[VALIDATOR].address, 0), max_priority_fee_per_gas=GWEI, max_fee_per_gas=100 * GWEI)
    assert tx.gas == receipt_gas(pairs)
    evm_tx = c.chain.get_vm().get_transaction_builder().decode(LedgerTransactionBuilder.wrap_native(tx).encode())
    result, receipts, computations = c.chain.mine_all([evm_tx])
    c.nonces[c.keys[VALIDATOR].address] = tx.nonce + 1
    assert not computations[0].is_error, computations[0].error
    receipt_id = c.call("Inference", "receiptCount")
    assert list(c.call("Inference", "getReceipt", receipt_id)["contribution_ids"]) == ids
