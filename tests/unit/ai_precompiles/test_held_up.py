"""What held up in issue 8's attack on a running node, and must keep holding (on LedgerVM).

Covered here: a receipt whose fee, weights or adapter changed after signing; high-s and
other-chain signatures; duplicate attribution ids; one deposit double-spent by two receipts in one
block; double claims (in two blocks and in one); flash stake after a proposal. The rest of the
list is covered where noted in docs/ai_precompiles.md ("Security").
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from ai_precompiles.errors import decode_revert_reason
from ai_precompiles.typed_data import SECP256K1_N
from tests.unit.ai_precompiles.ai_harness import ETHER
from tests.unit.ai_precompiles.ai_world import CONTRIB, CONTRIB2, USER, VALIDATOR, World
from tests.unit.ai_precompiles.test_rejections import assert_rejected
from tests.unit.ai_precompiles.test_staking_governance import mine_to_next_epoch

pytestmark = pytest.mark.xdist_group("ai_world")


def _send(w: World, args: tuple[object, ...]) -> object:
    return w.c.send(VALIDATOR, "Inference", "submitReceipt", *args)


def _flip_s(sig: bytes) -> bytes:
    """The same signature with ``s`` mirrored to the high half (still valid to plain ECDSA)."""
    s = int.from_bytes(sig[32:64], "big")
    v = sig[64]
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v if v >= 27 else 1 - v])


def test_fee_weights_or_adapter_changed_after_signing(world: World) -> None:
    ids = world.contributions[:2]
    req = world.request(world.adapter2, max_fee=10_000)
    args = list(world.receipt_args(req, ids, [6000, 4000], 1000))
    fee_changed = tuple(args[:6] + [2000] + args[7:])
    assert_rejected(world, "bad validator signature", lambda: _send(world, fee_changed))
    weights_changed = tuple(args[:5] + [[4000, 6000]] + args[6:])
    assert_rejected(world, "bad validator signature", lambda: _send(world, weights_changed))
    output_changed = tuple(args[:2] + [b"\x09" * 32] + args[3:])
    assert_rejected(world, "bad validator signature", lambda: _send(world, output_changed))
    engine_changed = tuple(args[:3] + [keccak(text="another engine")] + args[4:])
    assert_rejected(world, "bad validator signature", lambda: _send(world, engine_changed))
    # the user signed for adapter2; the validator re-signs a receipt naming adapter1
    user_sig = world.sign_request(req)
    moved = dict(req, adapter_id=world.adapter1)
    adapter_changed = world.receipt_args(moved, ids, [6000, 4000], 1000, user_sig=user_sig)
    assert_rejected(world, "bad user signature", lambda: _send(world, adapter_changed))
    max_fee_raised = world.receipt_args(dict(req, max_fee=10**18), ids, [6000, 4000], 10**17,
                                        user_sig=user_sig)
    assert_rejected(world, "bad user signature", lambda: _send(world, max_fee_raised))
    # the user allowed 32 tokens: a receipt for a longer run is not the request it signed
    more_tokens = world.receipt_args(dict(req, max_tokens=33), ids, [6000, 4000], 1000, user_sig=user_sig)
    assert_rejected(world, "bad user signature", lambda: _send(world, more_tokens))
    _send(world, tuple(args))  # the untouched receipt still goes through


def test_high_s_signatures_are_refused(world: World) -> None:
    ids = world.contributions[:1]
    req = world.request(world.adapter2, max_fee=10_000)
    args = list(world.receipt_args(req, ids, [10_000], 500))
    high_user = tuple(args[:1] + [_flip_s(args[1])] + args[2:])
    assert_rejected(world, "bad user signature: malformed signature", lambda: _send(world, high_user))
    high_validator = tuple(args[:8] + [_flip_s(args[8])])
    assert_rejected(world, "bad validator signature: malformed signature",
                    lambda: _send(world, high_validator))


def test_request_signed_for_another_chain(world: World) -> None:
    req = dict(world.request(world.adapter2, max_fee=10_000), chain_id=1)
    args = world.receipt_args(req, world.contributions[:1], [10_000], 500)
    assert_rejected(world, "request is for chain 1", lambda: _send(world, args))


def test_duplicate_attribution_ids(world: World) -> None:
    cid = world.contributions[0]
    req = world.request(world.adapter2, max_fee=10_000)
    args = world.receipt_args(req, [cid, cid], [5000, 5000], 500)
    assert_rejected(world, "attributed twice", lambda: _send(world, args))


def test_one_deposit_cannot_pay_two_receipts_in_one_block(world: World) -> None:
    c = world.c
    c.send(CONTRIB2, "Inference", "deposit", value=ETHER)  # a fresh requester
    balance = c.call("Inference", "depositOf", c.addr(CONTRIB2))
    fee = balance // 2 + 1
    reqs = [world.request(world.adapter2, max_fee=fee, user=CONTRIB2) for _ in range(2)]
    args = [world.receipt_args(r, world.contributions[:1], [10_000], fee, user_sig=world.sign_request(r, CONTRIB2))
            for r in reqs]
    first, second = c.send_block([(VALIDATOR, "Inference", "submitReceipt", a) for a in args])
    assert not first.is_error and second.is_error
    assert "deposit" in (decode_revert_reason(bytes(second.output)) or "")
    assert c.call("Inference", "depositOf", c.addr(CONTRIB2)) == balance - fee


def test_double_claims(world: World) -> None:
    c = world.c
    req = world.request(world.adapter2, max_fee=10_000)
    rid = _send(world, world.receipt_args(req, world.contributions[:1], [10_000], 10_000)).result  # type: ignore[attr-defined]
    world.settle(rid)
    claimable = c.call("Rewards", "claimable", c.addr(CONTRIB))
    assert claimable > 0
    total = c.call("Rewards", "totalClaimable")
    first, second = c.send_block([(CONTRIB, "Rewards", "claim", ()), (CONTRIB, "Rewards", "claim", ())])
    assert not first.is_error and second.is_error
    assert decode_revert_reason(bytes(second.output)) == "nothing to claim"
    assert c.call("Rewards", "totalClaimable") == total - claimable
    assert_rejected(world, "nothing to claim", lambda: c.send(CONTRIB, "Rewards", "claim"))


def test_flash_stake_after_a_proposal_has_no_vote(world: World) -> None:
    c = world.c
    mine_to_next_epoch(c)  # VALIDATOR's stake is effective
    pid = c.send(VALIDATOR, "Governance", "propose", "reward.author_bp", 1400).result
    c.send(USER, "Staking", "stake", value=100 * ETHER)  # a whale arrives after the snapshot
    assert_rejected(world, "no voting power at the proposal's snapshot epoch",
                    lambda: c.send(USER, "Governance", "vote", pid, True))
    mine_to_next_epoch(c)  # its stake is effective now, but not at the snapshot
    assert_rejected(world, "no voting power at the proposal's snapshot epoch",
                    lambda: c.send(USER, "Governance", "vote", pid, True))
    c.send(VALIDATOR, "Governance", "vote", pid, True)
    p = c.call("Governance", "getProposal", pid)
    assert p["yes_votes"] == 5 * ETHER and p["total_power"] == 5 * ETHER


def test_views_under_staticcall_and_writes_refused(world: World) -> None:
    """A static frame (STATICCALL, or eth_call with is_static) runs views and refuses writes."""
    from eth.vm.message import Message

    from ai_precompiles import MODULES, load_abi
    from ai_precompiles.addresses import REWARDS

    state = world.c.state
    fn = load_abi("Rewards").by_name
    for name, args, ok in (("totalEarned", (world.c.addr(CONTRIB),), True), ("claim", (), False)):
        msg = Message(gas=1_000_000, to=REWARDS, sender=world.c.addr(CONTRIB), value=0,
                      data=fn[name].encode_args(*args), code=b"", is_static=True)
        computation = state.get_computation(msg, state.get_transaction_context_class()(0, world.c.addr(CONTRIB)))
        if ok:
            MODULES["Rewards"](computation)
            assert fn[name].decode_result(bytes(computation.output)) > 0
        else:
            with pytest.raises(Exception) as info:
                MODULES["Rewards"](computation)
            assert decode_revert_reason(bytes(computation.output)) == "state change in a static call"
            assert type(info.value).__name__ == "Revert"


def test_flip_s_helper() -> None:
    """The high-s helper is an involution that really moves s above n/2."""
    sig = keccak(b"a") + (5).to_bytes(32, "big") + b"\x1b"
    assert _flip_s(_flip_s(sig)) == sig
    assert int.from_bytes(_flip_s(sig)[32:64], "big") > SECP256K1_N // 2
