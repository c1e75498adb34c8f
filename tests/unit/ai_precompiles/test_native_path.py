"""The native transaction types and the ABI path run the same code on the node's VM: a signed
native transaction, decoded by ``LedgerVM``'s transaction builder and mined, leaves the same
storage, logs and execution gas as the same operation sent as an EIP-1559 ABI call."""

from __future__ import annotations

from eth_utils import keccak

from ai_precompiles.addresses import DATANETS
from state.native import DataContributionTransaction
from tests.unit.ai_precompiles.ai_harness import AIChain
from tests.unit.ai_precompiles.ai_world import TEST_PARAMS


def _exec_gas(sent: object) -> int:
    tx = sent.block.transactions[0]  # type: ignore[attr-defined]
    return int(sent.gas_used - tx.intrinsic_gas)  # type: ignore[attr-defined]


def test_contribute_native_equals_abi() -> None:
    a, b = AIChain(TEST_PARAMS, n_keys=3), AIChain(TEST_PARAMS, n_keys=3)
    for c in (a, b):  # the same block times: a contribution records its block's timestamp
        c.next_timestamp = 1_800_000_000
        c.send(0, "Datanets", "createDatanet", "d", "x", "", "MIT", [c.addr(1)], 1, 1000)
        salt = c.commit(2, 1, keccak(text="blob"), 123, "MIT", keccak(text="meta"))
        c.next_timestamp = 1_800_000_012
    args = (1, keccak(text="blob"), 123, "MIT", keccak(text="meta"), salt)
    abi = a.send(2, "Datanets", "contribute", *args)
    native = b.send_native(2, DataContributionTransaction, datanet_id=1, content_hash=args[1],
                           size=123, license=b"MIT", metadata_hash=args[4], salt=salt)
    assert not native.computation.is_error
    assert native.block.transactions[0].type_id == DataContributionTransaction._type_id
    assert native.computation.output == abi.computation.output  # the same contribution id
    a_root = a.state._account_db._get_storage_root(DATANETS)
    b_root = b.state._account_db._get_storage_root(DATANETS)
    assert a_root == b_root
    assert [(lg.address, tuple(lg.topics), lg.data) for lg in abi.logs] == [
        (lg.address, tuple(lg.topics), lg.data) for lg in native.logs]
    assert _exec_gas(abi) == _exec_gas(native)


def test_native_rejection_reverts_like_abi() -> None:
    """A native transaction breaking a rule fails in its block, as the ABI call does."""
    c = AIChain(TEST_PARAMS, n_keys=3)
    c.send(0, "Datanets", "createDatanet", "d", "x", "", "MIT", [c.addr(1)], 1, 1000)
    before = c.ai_snapshot()
    sent = c.send_native(2, DataContributionTransaction, datanet_id=1,
                         content_hash=keccak(text="big"), size=1001, license=b"MIT",
                         metadata_hash=keccak(text="m"), salt=b"\x00" * 32)
    assert sent.computation.is_error and sent.receipt.state_root == b""
    assert c.ai_snapshot() == before


def test_storage_floor_beats_a_cheap_price() -> None:
    """Governance can lower a price to its minimum; the storage cost is still charged."""
    cheap = AIChain({**TEST_PARAMS, "gas.createDatanet": 21_000}, n_keys=2)
    dear = AIChain({**TEST_PARAMS, "gas.createDatanet": 2_000_000}, n_keys=2)
    used = []
    for c in (cheap, dear):
        s = c.send(0, "Datanets", "createDatanet", "d", "x", "", "MIT", [c.addr(1)], 1, 1000)
        used.append(_exec_gas(s))
    # 14 fresh words at least (record fields, curator flag, counter): 22,100 gas each
    assert used[0] >= 14 * 22_100
    assert used[1] >= 2_000_000 and used[1] > used[0]


def test_receipt_native_equals_abi() -> None:
    """An inference receipt as the native type (0x62), with the signed maxTokens and the engine
    profile, records the same receipt, holds the same split and costs the same as the ABI call."""
    from ai_precompiles.addresses import INFERENCE, REWARDS
    from state.native import InferenceReceiptTransaction
    from tests.unit.ai_precompiles.ai_world import VALIDATOR, build_world

    a, b = build_world(), build_world()
    args = []
    for w in (a, b):
        req = w.request(w.adapter2, max_fee=10**15, nonce=77, deadline=2_000_000_000)
        args.append(w.receipt_args(req, w.contributions[:2], [6000, 4000], 10**15))
    abi = a.c.send(VALIDATOR, "Inference", "submitReceipt", *args[0])
    req, usig, output, engine, ids, weights, fee, vaddr, vsig = args[1]
    native = b.c.send_native(
        VALIDATOR, InferenceReceiptTransaction, user=req["user"], adapter_id=req["adapter_id"],
        prompt_hash=req["prompt_hash"], max_tokens=req["max_tokens"], max_fee=req["max_fee"],
        request_nonce=req["nonce"], deadline=req["deadline"], request_chain_id=req["chain_id"],
        commercial=int(req["commercial"]), user_signature=usig, output_hash=output, engine_profile=engine, contribution_ids=ids,
        weights_bp=weights, fee=fee, validator=vaddr, validator_signature=vsig)
    assert not native.computation.is_error
    assert native.computation.output == abi.computation.output  # the same receipt id
    for module in (INFERENCE, REWARDS):
        assert a.c.state._account_db._get_storage_root(module) == b.c.state._account_db._get_storage_root(module)
    assert [(lg.address, tuple(lg.topics), lg.data) for lg in abi.logs] == [
        (lg.address, tuple(lg.topics), lg.data) for lg in native.logs]
    assert _exec_gas(abi) == _exec_gas(native)
    assert b.c.call("Inference", "getReceipt", 1)["engine_profile"] == engine
