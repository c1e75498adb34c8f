"""Each rejection from the issue reverts with a clear reason and changes no AI state.

"No state change": balance, nonce and storage root of every AI precompile account are equal
before and after the failed transaction (the sender still pays gas, as on Ethereum).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_utils import keccak

from tests.unit.ai_precompiles.ai_harness import Reverted
from tests.unit.ai_precompiles.ai_world import CONTRIB, CUR1, CUR3, OWNER, USER, VALIDATOR, World

pytestmark = pytest.mark.xdist_group("ai_world")


def assert_rejected(w: World, reason: str, action: Callable[[], Any]) -> Reverted:
    before = w.c.ai_snapshot()
    with pytest.raises(Reverted) as info:
        action()
    assert reason in (info.value.reason or ""), info.value.reason
    assert w.c.ai_snapshot() == before
    return info.value


#: The rules above the commitment's are checked first: these contributions never get that far.
NO_SALT = b"\x00" * 32


def _receipt(w: World, **kw: Any) -> Callable[[], Any]:
    fee = kw.pop("fee", 1000)
    req = w.request(w.adapter2, max_fee=kw.pop("max_fee", 10_000), nonce=kw.pop("nonce", None),
                    deadline=kw.pop("deadline", None))
    ids = kw.pop("ids", w.contributions[:2])
    weights = kw.pop("weights", [6000, 4000])
    args = w.receipt_args(req, ids, weights, fee, **kw)
    return lambda: w.c.send(VALIDATOR, "Inference", "submitReceipt", *args)


def test_non_curator_curating(world: World) -> None:
    c = world.c
    pending = c.contribute(CONTRIB, world.datanet, keccak(text="pending"), 5, "MIT", b"\x00" * 32).result
    assert_rejected(world, "not a curator",
                    lambda: c.send(CONTRIB, "Datanets", "curate", pending, True, 0))
    c.send(CUR1, "Datanets", "curate", pending, False, 9)
    assert_rejected(world, "already voted",
                    lambda: c.send(CUR1, "Datanets", "curate", pending, True, 0))
    assert_rejected(world, "already decided",
                    lambda: c.send(CUR3, "Datanets", "curate", world.contributions[0], True, 0))


def test_contribution_over_size_limit(world: World) -> None:
    assert_rejected(world, "exceeds the datanet's limit", lambda: world.c.send(
        CONTRIB, "Datanets", "contribute", world.datanet, keccak(text="big"), 4097, "MIT",
        b"\x00" * 32, NO_SALT))
    assert_rejected(world, "already contributed", lambda: world.c.send(
        CONTRIB, "Datanets", "contribute", world.datanet, keccak(text="blob 0"), 10, "MIT",
        b"\x00" * 32, NO_SALT))
    assert_rejected(world, "does not exist", lambda: world.c.send(
        CONTRIB, "Datanets", "contribute", 99, keccak(text="x"), 10, "MIT", b"\x00" * 32, NO_SALT))
    assert_rejected(world, "no commitment to this contribution by the sender", lambda: world.c.send(
        CONTRIB, "Datanets", "contribute", world.datanet, keccak(text="never committed"), 10, "MIT",
        b"\x00" * 32, NO_SALT))


def test_publish_by_non_owner_and_nothing_new(world: World) -> None:
    assert_rejected(world, "only the datanet owner",
                    lambda: world.c.send(CONTRIB, "Datanets", "publishVersion", world.datanet))


def test_adapter_with_missing_parent(world: World) -> None:
    spec = {"parent_id": 999, "datanet_ids": [], "datanet_versions": [],
            "contribution_root": b"\x00" * 32, "hyper_params_hash": b"\x00" * 32,
            "weights_hash": keccak(text="orphan"), "attribution_index_hash": b"\x00" * 32, "manifest_hash": b"\x00" * 32,
            "validator": world.c.addr(VALIDATOR), "license": ""}
    assert_rejected(world, "parent model 999 does not exist",
                    lambda: world.c.send(OWNER, "ModelRegistry", "registerAdapter", spec))
    spec = dict(spec, parent_id=world.base, datanet_ids=[world.datanet], datanet_versions=[7])
    assert_rejected(world, "has no version 7",
                    lambda: world.c.send(OWNER, "ModelRegistry", "registerAdapter", spec))


def test_forged_user_signature(world: World) -> None:
    req = world.request(world.adapter2, max_fee=10_000)
    forged = world.sign_request(req, key=CONTRIB)  # someone else signs the user's request
    args = world.receipt_args(req, world.contributions[:1], [10000], 100, user_sig=forged)
    assert_rejected(world, "bad user signature",
                    lambda: world.c.send(VALIDATOR, "Inference", "submitReceipt", *args))
    garbage = world.receipt_args(req, world.contributions[:1], [10000], 100,
                                 user_sig=b"\x01" * 65)
    assert_rejected(world, "bad user signature",
                    lambda: world.c.send(VALIDATOR, "Inference", "submitReceipt", *garbage))


def test_forged_validator_signature(world: World) -> None:
    assert_rejected(world, "bad validator signature", _receipt(world, validator_key=CONTRIB))


def test_unstaked_validator(world: World) -> None:
    assert_rejected(world, "validator is not staked",
                    _receipt(world, validator_key=CONTRIB, validator=CONTRIB))


def test_replayed_request_nonce(world: World) -> None:
    nonce = 10_000
    _receipt(world, nonce=nonce)()
    assert_rejected(world, "nonce already used", _receipt(world, nonce=nonce))


def test_expired_deadline(world: World) -> None:
    past = world.c.head.timestamp - 1
    assert_rejected(world, "deadline has passed", _receipt(world, deadline=past))


def test_fee_above_max(world: World) -> None:
    assert_rejected(world, "exceeds the request's max fee", _receipt(world, fee=10_001))


def test_fee_above_deposit(world: World) -> None:
    big = 10**30
    assert_rejected(world, "deposit", _receipt(world, fee=big, max_fee=big))


def test_contribution_outside_lineage(world: World) -> None:
    # accepted, but after the version the adapters trained on
    assert_rejected(world, f"contribution {world.late} is not in the adapter's lineage",
                    _receipt(world, ids=[world.late], weights=[10000]))
    assert_rejected(world, "is not in the adapter's lineage",
                    _receipt(world, ids=[world.rejected], weights=[10000]))


def test_weights_not_summing_to_whole(world: World) -> None:
    assert_rejected(world, "sum to 9000", _receipt(world, weights=[5000, 4000]))
    assert_rejected(world, "differ in length", _receipt(world, weights=[10000]))


def test_bad_calldata_and_value(world: World) -> None:
    from ai_precompiles.addresses import DATANETS

    def raw(data: bytes, value: int = 0) -> Any:
        sent = world.c.send_raw(USER, DATANETS, data, value)
        if sent.computation.is_error:
            from ai_precompiles.errors import decode_revert_reason

            raise Reverted(decode_revert_reason(bytes(sent.computation.output)), sent.computation)
        return sent

    assert_rejected(world, "unknown function selector", lambda: raw(b"\xde\xad\xbe\xef"))
    sel = world.c.call  # keep flake happy about unused names
    del sel
    from ai_precompiles import load_abi

    fn = load_abi("Datanets").by_name["curate"]
    assert_rejected(world, "does not decode", lambda: raw(fn.selector + b"\x01\x02"))
    assert_rejected(world, "not payable", lambda: world.c.send(
        USER, "Datanets", "curate", 1, True, 0, value=1))
