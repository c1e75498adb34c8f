"""Which blobs a transaction names (node/chain/blob_refs.py), by both ways in: the native
transaction types and a plain ABI call to the precompile; a call that names nothing, or does not
decode, names nothing."""

from __future__ import annotations

from eth_account import Account
from eth_utils import keccak, to_checksum_address

import ai_precompiles
from ai_precompiles.addresses import DATANETS, INFERENCE, MODEL_REGISTRY
from genesis import DEV_CHAIN_ID, DEV_MNEMONIC, derive_accounts
from node.chain.blob_refs import blob_refs
from state import decode_transaction
from state.native import (
    AdapterRegistrationTransaction,
    InferenceReceiptTransaction,
    MergedAdapterRegistrationTransaction,
)
from state.vm import LedgerTransactionBuilder

KEY = derive_accounts(DEV_MNEMONIC, 1)[0].private_key
H = {name: keccak(text=name) for name in ("content", "weights", "index", "manifest", "hyper", "prompt", "output",
                                          "engine")}


def call(to: bytes, data: bytes) -> object:
    raw = Account.sign_transaction(dict(type=2, chainId=DEV_CHAIN_ID, nonce=0, to=to_checksum_address(to), value=0,
                                        gas=1_000_000, maxFeePerGas=10**10, maxPriorityFeePerGas=1, data=data), KEY)
    return decode_transaction(bytes(raw.raw_transaction))


def native(tx: object) -> object:
    return decode_transaction(bytes(LedgerTransactionBuilder.wrap_native(tx).encode()))


def test_a_contribution_names_its_content() -> None:
    fn = ai_precompiles.MODULES["Datanets"].abi.by_name["contribute"]
    assert blob_refs(call(DATANETS, fn.encode_args(1, H["content"], 10, "MIT", b"\x00" * 32, b"\x07" * 32))) == (H["content"],)


def test_an_adapter_names_its_artifacts_by_either_way_in() -> None:
    fields = dict(parent_id=1, datanet_ids=[1], datanet_versions=[1], contribution_root=b"\x01" * 32,
                  hyper_params_hash=H["hyper"], weights_hash=H["weights"], attribution_index_hash=H["index"],
                  manifest_hash=H["manifest"], validator=b"\x02" * 20, license=b"MIT")
    tx = AdapterRegistrationTransaction.sign(KEY, chain_id=DEV_CHAIN_ID, nonce=0, max_priority_fee_per_gas=1,
                                            max_fee_per_gas=10**10, gas=1_000_000, **fields)
    want = {H["weights"], H["index"], H["manifest"], H["hyper"]}
    assert set(blob_refs(native(tx))) == want
    fn = ai_precompiles.MODULES["ModelRegistry"].abi.by_name["registerAdapter"]
    assert set(blob_refs(call(MODEL_REGISTRY, fn.encode_args(*tx.abi_args())))) == want
    # a zero manifest hash (registered by hand, none recorded) names no blob
    none = AdapterRegistrationTransaction.sign(KEY, chain_id=DEV_CHAIN_ID, nonce=0, max_priority_fee_per_gas=1,
                                              max_fee_per_gas=10**10, gas=1_000_000,
                                              **{**fields, "manifest_hash": b"\x00" * 32})
    assert set(blob_refs(native(none))) == want - {H["manifest"]}


def test_an_adapter_trained_for_a_builder_names_its_artifacts() -> None:
    """``registerTrainedAdapter`` (a validator registering a builder's adapter, ai_train) names the
    same artifacts as ``registerAdapter``: they replicate to every node."""
    spec = (1, [1], [1], b"\x01" * 32, H["hyper"], H["weights"], H["index"], H["manifest"], b"\x02" * 20, "MIT")
    request = (b"\x03" * 20, b"\x02" * 20, 1, [1], [1], H["hyper"], "MIT", 10**16, 7, 2**40, DEV_CHAIN_ID)
    fn = ai_precompiles.MODULES["ModelRegistry"].abi.by_name["registerTrainedAdapter"]
    refs = blob_refs(call(MODEL_REGISTRY, fn.encode_args(spec, request, b"\x00" * 65, 10**16)))
    assert set(refs) == {H["weights"], H["index"], H["manifest"], H["hyper"]}


def test_a_receipt_names_its_prompt_output_and_engine() -> None:
    tx = InferenceReceiptTransaction.sign(
        KEY, chain_id=DEV_CHAIN_ID, nonce=0, max_priority_fee_per_gas=1, max_fee_per_gas=10**10, gas=3_000_000,
        user=b"\x03" * 20, adapter_id=2, prompt_hash=H["prompt"], max_tokens=32, max_fee=10, request_nonce=1,
        deadline=10**10, request_chain_id=DEV_CHAIN_ID, commercial=0, user_signature=b"\x00" * 65, output_hash=H["output"],
        engine_profile=H["engine"], contribution_ids=[1], weights_bp=[10_000], fee=1, validator=b"\x04" * 20,
        validator_signature=b"\x00" * 65)
    assert blob_refs(native(tx)) == (H["prompt"], H["output"], H["engine"])
    fn = ai_precompiles.MODULES["Inference"].abi.by_name["submitReceipt"]
    assert blob_refs(call(INFERENCE, fn.encode_args(*tx.abi_args()))) == (H["prompt"], H["output"], H["engine"])


def test_a_merge_names_its_artifacts_by_either_way_in() -> None:
    tx = MergedAdapterRegistrationTransaction.sign(
        KEY, chain_id=DEV_CHAIN_ID, nonce=0, max_priority_fee_per_gas=1, max_fee_per_gas=10**10, gas=3_000_000,
        parent_ids=[2, 3], weights_bp=[5000, 5000], method=1, density_bp=0, seed=0, weights_hash=H["weights"],
        attribution_index_hash=H["index"], manifest_hash=H["manifest"], license=b"MIT")
    want = (H["weights"], H["index"], H["manifest"])
    assert blob_refs(native(tx)) == want
    fn = ai_precompiles.MODULES["ModelRegistry"].abi.by_name["registerMergedAdapter"]
    assert blob_refs(call(MODEL_REGISTRY, fn.encode_args(*tx.abi_args()))) == want
    assert tx.payload_json()["parentIds"] == ["0x2", "0x3"] and tx.payload_json()["method"] == "0x1"


def test_other_calls_and_garbage_name_nothing() -> None:
    deposit = ai_precompiles.MODULES["Inference"].abi.by_name["deposit"].encode_args()
    assert blob_refs(call(INFERENCE, deposit)) == ()
    fn = ai_precompiles.MODULES["Datanets"].abi.by_name["contribute"]
    assert blob_refs(call(DATANETS, fn.selector + b"\x01\x02")) == ()  # does not decode
    assert blob_refs(call(b"\x05" * 20, b"")) == ()


def test_a_bonded_contribution_names_its_content_and_is_checked_at_admission() -> None:
    """contributeBonded records a contribution too: its bytes replicate and the node refuses it
    when it does not hold them, as for contribute (a way in without the check would let a
    contribution name bytes nobody holds)."""
    from node.chain.core import contribution_fields

    fn = ai_precompiles.MODULES["Datanets"].abi.by_name["contributeBonded"]
    tx = call(DATANETS, fn.encode_args(1, H["content"], 10, "MIT", b"\x00" * 32, b"\x01" * 32, b"\x02" * 256))
    assert blob_refs(tx) == (H["content"],)
    assert contribution_fields(tx) == (H["content"], 10)
    assert contribution_fields(call(DATANETS, fn.selector + b"\x01")) is None
