"""Double-sign evidence on chain (``Staking.submitEvidence``) on the node's VM: every refusal
leaves the AI state as it was; a proven offence slashes, jails, and moves the offender out of the
next epoch's set; the escrows stay covered; the gas is bounded; governance sets the fraction and
the jail period. The evidence is built with ``consensus`` (votes signed by the staker's own key),
so the precompile's decoder is checked against the real encoder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import rlp
from eth.exceptions import Revert
from eth.vm.message import Message
from eth_utils import keccak

import ai_precompiles as ap
from ai_precompiles import evidence as pe
from ai_precompiles.addresses import DEFAULT_TREASURY, REWARDS, STAKING
from ai_precompiles.errors import AIError, decode_revert_reason
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import Vote, VoteType
from consensus.validator_set import POWER_UNIT, ValidatorSet
from tests.unit.ai_precompiles.ai_harness import CHAIN_ID, ETHER, AIChain, Reverted

PARAMS = {"staking.epoch_length": 4, "staking.unbonding_blocks": 40, "staking.evidence_max_age": 36,
          "staking.jail_blocks": 10,
          "gov.voting_period": 4, "gov.execution_delay": 1,
          "inference.challenge_window": 10, "inference.verdict_window": 10}
ANYONE, A, B, C, STRANGER = 0, 1, 2, 3, 4
STAKES = {A: 4 * ETHER, B: 3 * ETHER, C: 2 * ETHER}


def mine_to_next_epoch(c: AIChain) -> int:
    epoch = c.call("Staking", "currentEpoch")
    while c.call("Staking", "currentEpoch") == epoch:
        c.mine()
    return int(epoch + 1)


def staked_chain(params: dict[str, Any] | None = None, n_keys: int = 6) -> AIChain:
    c = AIChain({**PARAMS, **(params or {})}, n_keys=n_keys)
    for k, v in STAKES.items():
        c.send(k, "Staking", "stake", value=v)
    mine_to_next_epoch(c)
    return c


def vote(c: AIChain, key: int, height: int, block: bytes, round_: int = 0,
         type_: VoteType = VoteType.PREVOTE, chain_id: int = CHAIN_ID, signer: int | None = None) -> Vote:
    v = Vote(type_, height, round_, block, c.addr(key))
    return v.signed(chain_id, bytes(c.keys[key if signer is None else signer].key))


def double_sign(c: AIChain, key: int, height: int | None = None, round_: int = 0,
                type_: VoteType = VoteType.PREVOTE, **kw: Any) -> bytes:
    h = c.head.block_number if height is None else height
    first = vote(c, key, h, keccak(text=f"block x {h}"), round_, type_, **kw)
    second = vote(c, key, h, keccak(text=f"block y {h}"), round_, type_, **kw)
    return DuplicateVoteEvidence.of(first, second).encode()


def escrows_cover(c: AIChain) -> None:
    """The staking account holds exactly every stake and every unbonding amount; the rewards
    account covers every claimable balance."""
    owed = sum(c.call("Staking", "stakeOf", c.addr(i)) + c.call("Staking", "unbondingOf", c.addr(i))[0]
               for i in range(len(c.keys)))
    assert c.balance(STAKING) == owed
    assert c.balance(REWARDS) >= c.call("Rewards", "totalClaimable")


# -- the format: what consensus encodes is what the precompile reads -----------------------------


def test_precompile_reads_what_consensus_encodes_and_signs() -> None:
    c = AIChain(PARAMS, n_keys=2)
    raw = double_sign(c, A, height=7, round_=3, type_=VoteType.PRECOMMIT)
    ev = DuplicateVoteEvidence.decode(raw)
    ours = pe.decode_evidence(raw)
    for theirs, mine in ((ev.vote_a, ours.vote_a), (ev.vote_b, ours.vote_b)):
        assert (int(theirs.type), theirs.height, theirs.round, theirs.block_hash, theirs.validator,
                theirs.signature) == (mine.type, mine.height, mine.round, mine.block_hash,
                                      mine.validator, mine.signature)
        assert theirs.signing_hash(CHAIN_ID) == mine.signing_hash(CHAIN_ID)
    ours.check_shape()
    ours.check_signatures(CHAIN_ID)
    assert ev.verify(CHAIN_ID, {c.addr(A): 1})
    with pytest.raises(AIError, match="signature"):
        ours.check_signatures(CHAIN_ID + 1)
    assert not ev.verify(CHAIN_ID + 1, {c.addr(A): 1})


# -- a proven double sign: slash, jail, leave the next set ---------------------------------------


def test_evidence_slashes_jails_and_the_offender_leaves_the_next_epoch() -> None:
    c = staked_chain()
    epoch = c.call("Staking", "currentEpoch")
    set_now = ap.get_validator_set(c.state)
    assert [a for a, _ in set_now] == [c.addr(A), c.addr(B), c.addr(C)]
    h = c.head.block_number
    raw = double_sign(c, A, height=h, type_=VoteType.PRECOMMIT, round_=2)
    escrow, treasury = c.balance(STAKING), c.call("Rewards", "claimable", DEFAULT_TREASURY)

    sent = c.send(ANYONE, "Staking", "submitEvidence", raw)  # anyone may submit

    due = STAKES[A] * 500 // 10_000  # default staking.slash_fraction_bp: 5 %
    assert sent.result == due
    slashed = ap.load_abi("Staking").events["Slashed"]
    (log,) = [lg for lg in sent.logs if lg.topics[0] == slashed.topic0]
    assert (log.address, tuple(log.topics), log.data) == (STAKING, *slashed.encode(c.addr(A), h, due))
    jailed = ap.load_abi("Staking").events["Jailed"]
    release = sent.block.header.block_number + 10
    assert any(tuple(lg.topics) == jailed.encode(c.addr(A), h, release)[0] for lg in sent.logs)
    assert c.call("Staking", "stakeOf", c.addr(A)) == STAKES[A] - due
    assert c.call("Staking", "jailedUntil", c.addr(A)) == release
    assert c.call("Staking", "isPunished", c.addr(A), h)
    # slashed wei left the staking escrow for the treasury's claimable balance
    assert c.balance(STAKING) == escrow - due
    assert c.call("Rewards", "claimable", DEFAULT_TREASURY) == treasury + due
    escrows_cover(c)
    # the current epoch's set is fixed; the next one no longer has the offender, its power dropped
    assert ap.get_validator_set(c.state, epoch=epoch) == set_now
    assert c.call("Staking", "votingPower", c.addr(A), epoch + 1) == STAKES[A] - due
    nxt = mine_to_next_epoch(c)
    assert ap.get_validator_set(c.state) == [(c.addr(B), STAKES[B]), (c.addr(C), STAKES[C])]
    bft = ValidatorSet.from_stakes(ap.get_validator_set(c.state))
    assert bft.power_of(c.addr(A)) == 0 and bft.power_of(c.addr(B)) == STAKES[B] // POWER_UNIT
    vals, _ = c.call("Staking", "getValidatorSet", nxt)
    assert c.addr(A) not in vals


def test_jail_keeps_the_offender_out_until_unjail() -> None:
    c = staked_chain()
    c.send(ANYONE, "Staking", "submitEvidence", double_sign(c, B))
    release = c.call("Staking", "jailedUntil", c.addr(B))
    with pytest.raises(Reverted, match="jail period not over"):
        c.send(B, "Staking", "unjail")
    with pytest.raises(Reverted, match="not jailed"):
        c.send(A, "Staking", "unjail")
    c.send(B, "Staking", "stake", value=10 * ETHER)  # more stake buys no seat while jailed
    while c.head.block_number + 1 < release:
        c.mine()
    nxt = mine_to_next_epoch(c)
    assert c.addr(B) not in dict(ap.get_validator_set(c.state, epoch=nxt))
    c.send(B, "Staking", "unjail")
    assert c.call("Staking", "jailedUntil", c.addr(B)) == 0
    back = mine_to_next_epoch(c)
    power = STAKES[B] - STAKES[B] * 500 // 10_000 + 10 * ETHER
    assert ap.get_validator_set(c.state, epoch=back)[0] == (c.addr(B), power)
    escrows_cover(c)


def test_an_offender_that_unstaked_is_slashed_from_its_unbonding_amount() -> None:
    c = staked_chain()
    h = c.head.block_number
    raw = double_sign(c, C, height=h)
    c.send(C, "Staking", "unstake", STAKES[C])  # tries to run with its stake after the offence
    sent = c.send(ANYONE, "Staking", "submitEvidence", raw)
    due = STAKES[C] * 500 // 10_000
    assert sent.result == due
    assert c.call("Staking", "unbondingOf", c.addr(C))[0] == STAKES[C] - due
    escrows_cover(c)


def test_a_stake_left_below_min_holding_is_taken_whole() -> None:
    c = staked_chain({"staking.slash_fraction_bp": 9_999, "staking.min_holding": ETHER // 100})
    sent = c.send(ANYONE, "Staking", "submitEvidence", double_sign(c, C))
    assert sent.result == STAKES[C]  # 0.0002 ether would be left: dust is not allowed
    assert c.call("Staking", "stakeOf", c.addr(C)) == 0
    escrows_cover(c)


# -- refusals: each leaves every AI account as it was --------------------------------------------


def _mutants(c: AIChain) -> list[tuple[str, Callable[[int], bytes]]]:
    """(reason, evidence bytes for a transaction mined on top of head ``h``)."""
    x, y = keccak(text="x"), keccak(text="y")
    lo, hi = sorted((x, y))

    def good(h: int) -> DuplicateVoteEvidence:
        return DuplicateVoteEvidence.of(vote(c, A, h, x), vote(c, A, h, y))

    def swapped_signature(h: int) -> bytes:
        ev = good(h)
        b = ev.vote_b
        return DuplicateVoteEvidence(ev.vote_a, Vote(b.type, h, 0, b.block_hash, b.validator,
                                                     ev.vote_a.signature)).encode()

    return [
        ("not valid RLP", lambda h: b"\xc3\x01"),
        ("above the 600-byte cap", lambda h: b"\x00" * 601),
        ("must be an RLP list of 2 items", lambda h: rlp.encode([good(h).vote_a.encode()])),
        ("vote type 32 is not a prevote or precommit",
         lambda h: rlp.encode([good(h).vote_a.encode(), rlp.encode([32, h, 0, hi, c.addr(A), b"\x01" * 65])])),
        ("same block or not in canonical order",
         lambda h: DuplicateVoteEvidence(vote(c, A, h, x), vote(c, A, h, x)).encode()),
        ("same block or not in canonical order",
         lambda h: DuplicateVoteEvidence(vote(c, A, h, hi), vote(c, A, h, lo)).encode()),
        ("not for the same validator, height, round and step",
         lambda h: DuplicateVoteEvidence(vote(c, A, h, lo), vote(c, A, h - 1, hi)).encode()),
        ("not for the same validator, height, round and step",
         lambda h: DuplicateVoteEvidence(vote(c, A, h, lo), vote(c, A, h, hi, round_=1)).encode()),
        ("not for the same validator, height, round and step",
         lambda h: DuplicateVoteEvidence(vote(c, A, h, lo), vote(c, A, h, hi, type_=VoteType.PRECOMMIT)).encode()),
        ("not for the same validator, height, round and step",
         lambda h: DuplicateVoteEvidence(vote(c, A, h, lo), vote(c, B, h, hi)).encode()),
        # forged: A's name, the stranger's key; another chain's votes; a signature moved over
        ("signature is not the validator's", lambda h: double_sign(c, A, height=h, signer=STRANGER)),
        ("signature is not the validator's", lambda h: double_sign(c, A, height=h, chain_id=CHAIN_ID + 1)),
        ("signature is not the validator's", swapped_signature),
        ("not below the current block", lambda h: double_sign(c, A, height=h + 1)),
        ("not below the current block", lambda h: double_sign(c, A, height=h + 50)),
        ("is not in the validator set", lambda h: double_sign(c, STRANGER, height=h)),  # never staked
        ("is not in the validator set", lambda h: double_sign(c, A, height=1)),  # staked, not yet in the set
    ]


def test_every_refusal_changes_nothing() -> None:
    c = staked_chain()
    for reason, make in _mutants(c):
        before = c.ai_snapshot()
        with pytest.raises(Reverted, match=reason):
            c.send(ANYONE, "Staking", "submitEvidence", make(c.head.block_number))
        assert c.ai_snapshot() == before, reason
    assert c.call("Staking", "stakeOf", c.addr(A)) == STAKES[A]
    escrows_cover(c)


def test_old_evidence_and_a_replay_are_refused() -> None:
    c = staked_chain()
    h = c.head.block_number
    old = double_sign(c, B, height=h)
    c.send(ANYONE, "Staking", "submitEvidence", double_sign(c, A, height=h, round_=0))
    before = c.ai_snapshot()
    for raw in (double_sign(c, A, height=h, round_=0),  # the same offence again
                double_sign(c, A, height=h, round_=4, type_=VoteType.PRECOMMIT)):  # same height
        with pytest.raises(Reverted, match="already punished for height"):
            c.send(ANYONE, "Staking", "submitEvidence", raw)
    assert c.ai_snapshot() == before
    # a double signer goes on signing until the next epoch removes it: punished once per jail
    with pytest.raises(Reverted, match="jailed already"):
        c.send(ANYONE, "Staking", "submitEvidence", double_sign(c, A, height=c.head.block_number))
    assert c.ai_snapshot() == before
    c.mine(36 - (c.head.block_number - h))  # h + evidence_max_age + 1 is the first block refusing it
    with pytest.raises(Reverted, match="older than staking.evidence_max_age"):
        c.send(ANYONE, "Staking", "submitEvidence", old)
    assert c.ai_snapshot() == before


def test_submit_evidence_refuses_a_static_call() -> None:
    """STATICCALL (or eth_call with is_static) never slashes: the write check comes first."""
    c = staked_chain()
    state = c.state
    data = ap.load_abi("Staking").by_name["submitEvidence"].encode_args(double_sign(c, A))
    msg = Message(gas=1_000_000, to=STAKING, sender=c.addr(ANYONE), value=0, data=data, code=b"",
                  is_static=True)
    computation = state.get_computation(msg, state.get_transaction_context_class()(0, c.addr(ANYONE)))
    with pytest.raises(Revert):
        ap.MODULES["Staking"](computation)
    assert decode_revert_reason(bytes(computation.output)) == "state change in a static call"
    assert c.call("Staking", "stakeOf", c.addr(A)) == STAKES[A]


# -- gas: fixed work --------------------------------------------------------------------------------


def _exec_gas(sent: Any) -> int:
    tx = sent.block.transactions[0]
    return int(sent.gas_used - tx.intrinsic_gas)


def test_gas_is_flat_as_stakers_pile_up_and_bounded_when_the_list_is_long() -> None:
    small = staked_chain()
    crowd = staked_chain(n_keys=40)
    for k in range(6, 40):  # below min_stake: stakers, not candidates
        crowd.send(k, "Staking", "stake", value=ETHER // 2)
    mine_to_next_epoch(crowd)
    gas = [_exec_gas(c.send(ANYONE, "Staking", "submitEvidence", double_sign(c, A))) for c in (small, crowd)]
    assert gas[0] == gas[1]
    assert gas[0] < 400_000  # ~310k: mostly fresh SSTOREs (punished, jail, checkpoints, treasury credit)
    # a candidate list longer than max_validators: membership is checked by rebuilding the set, a
    # walk bounded by 2 * max_candidates
    full = staked_chain({"staking.max_validators": 2, "staking.max_candidates": 8}, n_keys=12)
    for k in range(6, 12):
        full.send(k, "Staking", "stake", value=ETHER + k)
    mine_to_next_epoch(full)
    walk = _exec_gas(full.send(ANYONE, "Staking", "submitEvidence", double_sign(full, A)))
    print(f"submitEvidence gas: {gas[0]} (constant path), {walk} (walk of {8} candidates)")
    assert gas[0] < walk < 1_000_000
    with pytest.raises(Reverted, match="not in the validator set"):  # 3rd stake: outside the 2 seats
        full.send(ANYONE, "Staking", "submitEvidence", double_sign(full, C))
    # oversized bytes are refused before any decoding or signature work
    before = full.ai_snapshot()
    with pytest.raises(Reverted, match="above the 600-byte cap") as err:
        full.send(ANYONE, "Staking", "submitEvidence", b"\xf8" * 100_000, gas=10_000_000)
    assert full.ai_snapshot() == before
    assert err.value.computation is not None


# -- governance sets the fraction and the jail period ---------------------------------------------


def _govern(c: AIChain, param: str, value: int) -> None:
    pid = c.send(A, "Governance", "propose", param, value).result
    for k in (A, B, C):
        c.send(k, "Governance", "vote", pid, True)
    p = c.call("Governance", "getProposal", pid)
    while c.head.block_number + 1 < p["executable_block"]:
        c.mine()
    c.send(ANYONE, "Governance", "execute", pid)
    assert c.call("Governance", "getParam", param) == value


def test_governance_changes_the_slash_fraction_and_the_jail_period() -> None:
    c = staked_chain()
    with pytest.raises(Reverted, match="must be within"):
        c.send(A, "Governance", "propose", "staking.slash_fraction_bp", 10_001)
    _govern(c, "staking.slash_fraction_bp", 2_500)
    _govern(c, "staking.jail_blocks", 30)
    sent = c.send(ANYONE, "Staking", "submitEvidence", double_sign(c, B))
    assert sent.result == STAKES[B] // 4
    assert c.call("Staking", "jailedUntil", c.addr(B)) == sent.block.header.block_number + 30
    escrows_cover(c)


def test_genesis_accepts_the_new_parameters_with_defaults() -> None:
    values = ap.get_params(AIChain({}, n_keys=1).state)
    assert values["staking.slash_fraction_bp"] == 500 and values["staking.jail_blocks"] == 1000
    # 0 would turn slashing (or the jail) off: refused since issue 19, like a value over the top
    for bad in ({"staking.slash_fraction_bp": 0}, {"staking.jail_blocks": 0},
                {"staking.slash_fraction_bp": 10_001}):
        with pytest.raises(AIError, match="must be within"):
            ap.genesis_accounts(bad)


# -- the escrow invariant through a whole life ----------------------------------------------------


def test_escrows_stay_covered_through_stakes_slashes_unbonding_and_withdrawals() -> None:
    c = staked_chain()
    escrows_cover(c)
    h = c.head.block_number
    ev_a = double_sign(c, A, height=h)
    c.send(A, "Staking", "unstake", ETHER)
    escrows_cover(c)
    c.send(ANYONE, "Staking", "submitEvidence", ev_a)
    escrows_cover(c)
    c.send(ANYONE, "Staking", "submitEvidence", double_sign(c, C))
    escrows_cover(c)
    c.mine(41)
    c.send(A, "Staking", "withdrawUnbonded")
    escrows_cover(c)
    treasury_due = c.call("Rewards", "claimable", DEFAULT_TREASURY)
    assert treasury_due == (STAKES[A] + STAKES[C]) * 500 // 10_000
    assert c.balance(REWARDS) >= treasury_due


# -- the native path (a Ctx over a state) runs the same code as the ABI call ------------------------


def test_native_call_equals_the_abi_call() -> None:
    abi_chain, native_chain = staked_chain(), staked_chain()
    raw = double_sign(abi_chain, A)
    assert raw == double_sign(native_chain, A)  # same keys, same head: the same evidence
    sent = abi_chain.send(ANYONE, "Staking", "submitEvidence", raw)
    state = native_chain.state
    ctx = ap.Ctx.for_state(state, sender=native_chain.addr(ANYONE))
    assert ap.submit_evidence(ctx, raw) == sent.result
    assert ctx.logs == [(lg.address, tuple(lg.topics), lg.data) for lg in sent.logs]
    read = ap.get_stake(state, native_chain.addr(A))
    assert read["stake"] == abi_chain.call("Staking", "stakeOf", abi_chain.addr(A))
    assert read["jailedUntil"] == abi_chain.call("Staking", "jailedUntil", abi_chain.addr(A)) > 0
    with pytest.raises(AIError, match="already punished"):
        ap.submit_evidence(ap.Ctx.for_state(state), raw)
