"""The challenge game on the node's VM (issue 18, item 4): an honest receipt pays after its
window; a challenge within it draws a committee of other validators whose verdicts decide it;
upheld, the liar is slashed and jailed, the payouts reversed, the user refunded and the
challenger rewarded; rejected, the bond is lost; undecided, it returns; missed verdicts jail.
Every refusal changes nothing, under every call kind."""

from __future__ import annotations

import pytest
from eth_abi import decode

import ai_precompiles as ap
from ai_precompiles import challenges, rewards
from ai_precompiles.addresses import DEFAULT_TREASURY, INFERENCE
from ai_precompiles.errors import InvalidArgument, decode_revert_reason
from ai_precompiles.params import BP
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Reverted
from tests.unit.ai_precompiles.ai_world import (
    ADAPTER_AUTHOR,
    BASE_AUTHOR,
    CONTRIB,
    CONTRIB2,
    USER,
    VALIDATOR,
    build_world,
)
from tests.unit.ai_precompiles.challenge_world import (
    BOND,
    CHALLENGER,
    FEE,
    JUDGES,
    STRANGER,
    books_balance,
    challenge,
    committee,
    deploy_probe,
    events,
    inference_call,
    judge,
    judged_world,
    mine_to,
    mine_to_next_epoch,
    probe_data,
    record,
    total_wei,
)
from tests.unit.ai_precompiles.test_slashing import double_sign

PARTIES = (CONTRIB, CONTRIB2, ADAPTER_AUTHOR, BASE_AUTHOR, VALIDATOR)


def claimable(c: AIChain, key: int | bytes) -> int:
    return int(c.call("Rewards", "claimable", c.addr(key) if isinstance(key, int) else key))


def pending(c: AIChain, key: int | bytes) -> int:
    return int(c.call("Rewards", "pending", c.addr(key) if isinstance(key, int) else key))


def expected_split(c: AIChain, fee: int = FEE) -> dict[int | bytes, int]:
    """What ``record``'s receipt pays each party (3 contributions, lineage of 2 ancestors)."""
    s = rewards.split_fee(fee, [5000, 3000, 2000], ap.get_params(c.state), n_lineage=2)
    return {CONTRIB: s.contributors[0] + s.contributors[2], CONTRIB2: s.contributors[1],
            ADAPTER_AUTHOR: s.author, BASE_AUTHOR: sum(s.lineage), VALIDATOR: s.validator,
            DEFAULT_TREASURY: s.treasury}


# -- honest receipts and the window -----------------------------------------------------------------


def test_an_honest_receipt_pays_after_the_window() -> None:
    w = judged_world()
    c = w.c
    sent = record(w)
    rid = sent.result
    release = sent.block.header.block_number + 5
    assert c.call("Inference", "getReceipt", rid)["release_block"] == release
    owed = expected_split(c)
    assert {k: pending(c, k) for k in owed} == owed
    assert all(claimable(c, k) == 0 for k in owed)
    assert events(sent).count("Rewards.RewardPending") == len(owed)

    # inside the window settle() skips it: nothing becomes claimable
    early = c.send(STRANGER, "Inference", "settle", [rid])
    assert early.result == 0 and all(claimable(c, k) == 0 for k in owed)
    mine_to(c, release)
    settled = c.send(STRANGER, "Inference", "settle", [rid])  # anyone may settle
    assert settled.result == 1
    assert events(settled) == ["Rewards.RewardAccrued"] * len(owed) + ["Inference.ReceiptSettled"]
    assert {k: claimable(c, k) for k in owed} == owed
    assert all(pending(c, k) == 0 for k in owed)
    assert c.call("Inference", "getReceipt", rid)["status"] == 2
    books_balance(c)
    with pytest.raises(Reverted, match=f"receipt {rid} is settled"):
        challenge(w, rid)


def test_a_challenge_after_the_window_is_refused_and_changes_nothing() -> None:
    w = judged_world()
    c = w.c
    sent = record(w)
    mine_to(c, sent.block.header.block_number + 5)  # the receipt's releaseBlock
    before, wei = c.ai_snapshot(), c.balance(c.addr(CHALLENGER))
    with pytest.raises(Reverted, match="challenge window of receipt .* closed at block") as err:
        challenge(w, sent.result)
    assert c.ai_snapshot() == before
    spent = err.value.computation.get_gas_used()
    assert wei - c.balance(c.addr(CHALLENGER)) < BOND and spent > 0  # the bond came back; gas did not
    assert c.send(STRANGER, "Inference", "settle", [sent.result]).result == 1


def test_settle_is_bounded_and_refuses_unknown_receipts() -> None:
    w = judged_world()
    with pytest.raises(Reverted, match="at most 64 receipts"):
        w.c.send(STRANGER, "Inference", "settle", [1] * 65)
    with pytest.raises(Reverted, match="receipt 99 does not exist"):
        w.c.send(STRANGER, "Inference", "settle", [99])


# -- the three outcomes ---------------------------------------------------------------------------


def test_a_false_challenge_loses_its_bond() -> None:
    w = judged_world({"inference.verdict_window": 20})
    c = w.c
    rec = record(w)
    rid = rec.result
    owed = expected_split(c)
    opened = challenge(w, rid)
    cid = opened.result
    assert events(opened) == ["Inference.CommitteeMember"] * 3 + ["Inference.ChallengeOpened"]
    ch = c.call("Inference", "getChallenge", cid)
    assert (ch["receipt_id"], ch["challenger"], ch["accused"], ch["bond"], ch["status"]) == (
        rid, c.addr(CHALLENGER), c.addr(VALIDATOR), BOND, 1)
    assert ch["deadline"] == opened.block.header.block_number + 20
    assert {k for k, _ in committee(c, cid)} <= set(JUDGES)  # never the accused or the challenger
    assert c.call("Inference", "getReceipt", rid)["status"] == 1
    assert ap.challenges.get_bonds(c.state) == BOND
    books_balance(c)
    # a challenged receipt does not settle, even past its window
    mine_to(c, rec.block.header.block_number + 5)
    assert c.send(STRANGER, "Inference", "settle", [rid]).result == 0

    accused_before, treasury_before = claimable(c, VALIDATOR), claimable(c, DEFAULT_TREASURY)
    verdicts = judge(w, cid, upheld=False)
    decided = verdicts[-1]
    assert "Inference.ChallengeResolved" in events(decided) and "Inference.ReceiptSettled" in events(decided)
    ch = c.call("Inference", "getChallenge", cid)
    assert ch["status"] == 3 and ch["resolved_block"] == decided.block.header.block_number
    assert ch["rejected_power"] * 3 > ch["total_power"] * 2
    to_accused = BOND * 5000 // BP  # inference.bond_to_accused_bp's default
    assert claimable(c, VALIDATOR) - accused_before == owed[VALIDATOR] + to_accused
    assert claimable(c, DEFAULT_TREASURY) - treasury_before == owed[DEFAULT_TREASURY] + BOND - to_accused
    assert claimable(c, CHALLENGER) == 0 and pending(c, CHALLENGER) == 0
    assert claimable(c, CONTRIB) == owed[CONTRIB]  # the receipt stands
    assert c.call("Inference", "getReceipt", rid)["status"] == 2
    assert ap.challenges.get_bonds(c.state) == 0
    books_balance(c)
    late = [k for k, _ in committee(c, cid) if c.call("Inference", "verdictOf", cid, c.addr(k)) == 0]
    for k in late:  # decided: the rest of the committee has nothing left to say
        with pytest.raises(Reverted, match="decided already"):
            c.send(k, "Inference", "submitVerdict", cid, True)
    with pytest.raises(Reverted, match="decided already"):
        c.send(STRANGER, "Inference", "resolve", cid)


def test_an_upheld_challenge_slashes_reverses_refunds_and_rewards() -> None:
    w = judged_world()
    c = w.c
    deposit = c.call("Inference", "depositOf", c.addr(USER))
    rec = record(w)
    rid = rec.result
    assert c.call("Inference", "depositOf", c.addr(USER)) == deposit - FEE
    owed = expected_split(c)
    stake = c.call("Staking", "stakeOf", c.addr(VALIDATOR))
    treasury_before = claimable(c, DEFAULT_TREASURY)
    cid = challenge(w, rid).result
    decided = judge(w, cid, upheld=True)[-1]
    names = events(decided)
    assert {"Staking.Slashed", "Staking.Jailed", "Inference.ReceiptReversed",
            "Inference.ChallengeResolved"} <= set(names)
    assert names.count("Rewards.RewardRevoked") == len(owed)

    ch = c.call("Inference", "getChallenge", cid)
    slashed = stake * 1000 // BP  # inference.fraud_slash_bp's default, of stake + unbonding
    assert ch["status"] == 2 and ch["slashed"] == slashed
    assert c.call("Staking", "stakeOf", c.addr(VALIDATOR)) == stake - slashed
    assert c.call("Staking", "jailedUntil", c.addr(VALIDATOR)) == decided.block.header.block_number + 10
    # the payouts are undone and the user has its fee back
    assert c.call("Inference", "getReceipt", rid)["status"] == 3
    assert all(pending(c, k) == 0 and claimable(c, k) == 0 for k in owed if k != DEFAULT_TREASURY)
    assert c.call("Inference", "depositOf", c.addr(USER)) == deposit
    # the challenger: its bond back and half the slash (inference.challenger_reward_bp's default)
    reward = slashed * 5000 // BP
    assert claimable(c, CHALLENGER) == BOND + reward
    assert claimable(c, DEFAULT_TREASURY) - treasury_before == slashed - reward
    books_balance(c)
    # the liar serves nobody while jailed, and leaves the next epoch's set
    with pytest.raises(Reverted, match="validator is jailed"):
        record(w)
    epoch = c.call("Staking", "currentEpoch")
    assert c.addr(VALIDATOR) not in [a for a, _ in ap.get_validator_set(c.state, epoch=epoch + 1)]
    # a double sign while it was in the set is still punished: a fraud jail is no tombstone
    evidence = double_sign(c, VALIDATOR, height=decided.block.header.block_number)
    assert c.send(STRANGER, "Staking", "submitEvidence", evidence).result > 0
    paid = c.send(CHALLENGER, "Rewards", "claim")
    assert paid.result == BOND + reward


def test_an_undecided_challenge_returns_the_bond_and_counts_missed_verdicts() -> None:
    w = judged_world()
    c = w.c
    rid = record(w).result
    owed = expected_split(c)
    cid = challenge(w, rid).result
    members = committee(c, cid)
    smallest = min(members, key=lambda m: m[1])[0]
    c.send(smallest, "Inference", "submitVerdict", cid, True)  # one verdict, far from 2/3
    info = ap.get_challenge(c.state, cid)
    assert info is not None and info["outcome"] == "open"
    silent = [k for k, _ in members if k != smallest]
    assert info["owing"] == [ap.addresses.checksum(c.addr(k)) for k in silent]
    assert [o["challengeId"] for o in ap.owed_verdicts(c.state, c.addr(silent[0]))["owed"]] == [cid]
    assert ap.owed_verdicts(c.state, c.addr(smallest))["owed"] == []
    deadline = c.call("Inference", "getChallenge", cid)["deadline"]
    with pytest.raises(Reverted, match=f"takes verdicts until block {deadline}"):
        c.send(STRANGER, "Inference", "resolve", cid)
    mine_to(c, deadline + 1)
    with pytest.raises(Reverted, match=f"closed at block {deadline}"):
        c.send(silent[0], "Inference", "submitVerdict", cid, False)
    resolved = c.send(STRANGER, "Inference", "resolve", cid)  # anyone may resolve
    assert events(resolved).count("Inference.VerdictMissed") == len(silent)
    ch = c.call("Inference", "getChallenge", cid)
    assert ch["status"] == 4 and ch["slashed"] == 0
    assert claimable(c, CHALLENGER) == BOND
    assert c.call("Inference", "getReceipt", rid)["status"] == 2  # the receipt stands
    assert {k: claimable(c, k) for k in owed if k != DEFAULT_TREASURY} == {
        k: v for k, v in owed.items() if k != DEFAULT_TREASURY}
    assert [c.call("Inference", "missedVerdicts", c.addr(k)) for k in silent] == [1] * len(silent)
    assert c.call("Inference", "missedVerdicts", c.addr(smallest)) == 0
    assert ap.get_challenge(c.state, cid)["owing"] == []  # type: ignore[index]
    books_balance(c)


def test_missed_verdicts_jail_past_the_threshold() -> None:
    # every judge on every committee; judge 14 never answers, the others split below 2/3
    w = judged_world({"inference.committee_size": 10})
    c = w.c
    lazy = 14
    for round_ in (1, 2):
        cid = challenge(w, record(w).result).result
        assert {k for k, _ in committee(c, cid)} == set(JUDGES)
        for k, upheld in ((10, False), (11, False), (12, False), (13, True)):  # 9 vs 5 of 20
            c.send(k, "Inference", "submitVerdict", cid, upheld)
        mine_to(c, c.call("Inference", "getChallenge", cid)["deadline"] + 1)
        resolved = c.send(STRANGER, "Inference", "resolve", cid)
        assert c.call("Inference", "getChallenge", cid)["status"] == 4
        if round_ == 1:
            assert c.call("Inference", "missedVerdicts", c.addr(lazy)) == 1
            assert c.call("Staking", "jailedUntil", c.addr(lazy)) == 0
    # the second miss reaches inference.max_missed_verdicts: jailed, and the count restarts
    assert "Staking.Jailed" in events(resolved)
    assert c.call("Staking", "jailedUntil", c.addr(lazy)) == resolved.block.header.block_number + 10
    assert c.call("Inference", "missedVerdicts", c.addr(lazy)) == 0
    assert c.call("Staking", "stakeOf", c.addr(lazy)) == JUDGES[lazy] * ETHER  # no slash
    # a jailed validator judges no more, and leaves the next epoch's set
    cid = challenge(w, record(w).result).result
    assert lazy not in {k for k, _ in committee(c, cid)}
    epoch = c.call("Staking", "currentEpoch")
    assert c.addr(lazy) not in [a for a, _ in ap.get_validator_set(c.state, epoch=epoch + 1)]
    books_balance(c)


# -- refusals ---------------------------------------------------------------------------------------


def test_a_second_challenge_is_refused_while_one_is_open() -> None:
    w = judged_world()
    c = w.c
    rid = record(w).result
    cid = challenge(w, rid).result
    before = c.ai_snapshot()
    with pytest.raises(Reverted, match=f"challenged already \\(challenge {cid}\\)"):
        challenge(w, rid, who=STRANGER)
    assert c.ai_snapshot() == before and ap.challenges.get_bonds(c.state) == BOND


def test_only_the_committee_gives_verdicts_once_each() -> None:
    w = judged_world({"inference.verdict_window": 20})
    c = w.c
    cid = challenge(w, record(w).result).result
    members = [k for k, _ in committee(c, cid)]
    outsiders = [k for k in JUDGES if k not in members] + [VALIDATOR, STRANGER, CHALLENGER]
    assert len(outsiders) == 5  # two judges were not drawn, and the accused never is
    before = c.ai_snapshot()
    for k in outsiders:
        with pytest.raises(Reverted, match=f"is not on the committee of challenge {cid}"):
            c.send(k, "Inference", "submitVerdict", cid, True)
    assert c.ai_snapshot() == before
    low = min(committee(c, cid), key=lambda m: m[1])[0]
    c.send(low, "Inference", "submitVerdict", cid, False)
    with pytest.raises(Reverted, match="gave its verdict on challenge .* already"):
        c.send(low, "Inference", "submitVerdict", cid, True)
    with pytest.raises(Reverted, match="challenge 9 does not exist"):
        c.send(low, "Inference", "submitVerdict", 9, True)


def test_bad_bonds_missing_receipts_and_no_judges_are_refused() -> None:
    w = judged_world()
    c = w.c
    rid = record(w).result
    before = c.ai_snapshot()
    for value in (0, BOND - 1, BOND + 1):
        with pytest.raises(Reverted, match=f"bonds exactly {BOND} wei"):
            challenge(w, rid, value=value)
    with pytest.raises(Reverted, match="receipt 77 does not exist"):
        challenge(w, 77)
    assert c.ai_snapshot() == before
    # a set with no validator but the accused: nobody could judge
    lone = build_world({"staking.unbonding_blocks": 40, "inference.challenge_window": 5})
    mine_to_next_epoch(lone.c)
    req = lone.request(lone.adapter2, max_fee=FEE)
    lone_rid = lone.c.send(VALIDATOR, "Inference", "submitReceipt",
                           *lone.receipt_args(req, lone.contributions[:1], [10_000], FEE)).result
    with pytest.raises(Reverted, match="no validator but the accused"):
        lone.c.send(CONTRIB, "Inference", "challenge", lone_rid, value=BOND)


def test_a_judge_that_challenges_does_not_judge_its_own_challenge() -> None:
    w = judged_world({"inference.committee_size": 10})
    c = w.c
    cid = challenge(w, record(w).result, who=14).result
    assert {k for k, _ in committee(c, cid)} == set(JUDGES) - {14}


def test_parameters_are_checked_at_genesis_propose_and_execute() -> None:
    for bad in ({"inference.challenge_window": 0}, {"inference.challenge_bond": 0},
                {"inference.committee_size": 0}, {"inference.verdict_window": 0},
                {"inference.fraud_slash_bp": 0}, {"inference.challenger_reward_bp": 0},
                {"inference.max_missed_verdicts": 0}, {"inference.max_tokens": 0},
                {"inference.challenge_window": 30, "inference.verdict_window": 11}):  # 41 > 40
        with pytest.raises(InvalidArgument):
            ap.genesis_accounts({**_params(), **bad})
    w = judged_world({"gov.voting_period": 20})
    c = w.c
    with pytest.raises(Reverted, match="must be within"):
        c.send(VALIDATOR, "Governance", "propose", "inference.challenge_window", 0)
    with pytest.raises(Reverted, match="must not exceed staking.unbonding_blocks"):
        c.send(VALIDATOR, "Governance", "propose", "inference.verdict_window", 36)
    # each fits alone; executed one after the other, the second no longer does
    window = c.send(VALIDATOR, "Governance", "propose", "inference.challenge_window", 20).result
    verdicts = c.send(VALIDATOR, "Governance", "propose", "inference.verdict_window", 30).result
    for pid in (window, verdicts):
        for k in (VALIDATOR, *JUDGES):
            c.send(k, "Governance", "vote", pid, True)
    mine_to(c, c.call("Governance", "getProposal", verdicts)["executable_block"])
    c.send(STRANGER, "Governance", "execute", verdicts)
    with pytest.raises(Reverted, match="must not exceed staking.unbonding_blocks"):
        c.send(STRANGER, "Governance", "execute", window)
    assert c.call("Governance", "getParam", "inference.challenge_window") == 5


def _params() -> dict[str, int]:
    from tests.unit.ai_precompiles.ai_world import TEST_PARAMS
    from tests.unit.ai_precompiles.challenge_world import PARAMS

    return {**TEST_PARAMS, **PARAMS}


def test_max_tokens_and_the_engine_profile_are_required() -> None:
    w = judged_world()
    req = w.request(w.adapter2, max_fee=FEE)
    for bad_req, reason in ((dict(req, max_tokens=0), "maxTokens must be within"),
                            (dict(req, max_tokens=1025), "maxTokens must be within \\[1, 1024\\]")):
        with pytest.raises(Reverted, match=reason):
            w.c.send(VALIDATOR, "Inference", "submitReceipt",
                     *w.receipt_args(bad_req, w.contributions[:1], [10_000], FEE))
    with pytest.raises(Reverted, match="engineProfile is zero"):
        w.c.send(VALIDATOR, "Inference", "submitReceipt",
                 *w.receipt_args(req, w.contributions[:1], [10_000], FEE, engine=b"\x00" * 32))


# -- the committee draw -----------------------------------------------------------------------------


def test_the_draw_is_deterministic_and_stake_weighted() -> None:
    eligible = [(bytes([i]) * 20, p) for i, p in ((1, 1), (2, 2), (3, 4), (4, 8))]
    seed = b"s" * 32
    assert challenges.draw_committee(eligible, 2, seed) == challenges.draw_committee(eligible, 2, seed)
    assert sorted(challenges.draw_committee(eligible, 9, seed)) == sorted(eligible)  # fewer than asked
    first = {a: 0 for a, _ in eligible}
    for n in range(3000):
        (a, _), = challenges.draw_committee(eligible, 1, n.to_bytes(32, "big"))
        first[a] += 1
    # drawn first about in proportion to power (1:2:4:8 of 3000 = 200:400:800:1600)
    counts = [first[a] for a, _ in eligible]
    assert counts == sorted(counts)
    for count, p in zip(counts, (1, 2, 4, 8), strict=True):
        assert abs(count - 3000 * p / 15) < 120, counts


# -- who may reach it: CALL, DELEGATECALL, CALLCODE, STATICCALL -------------------------------------


def test_every_call_kind() -> None:
    w = judged_world({"inference.challenge_window": 20})
    c = w.c
    probe, abi = deploy_probe(c)
    rid = record(w).result
    supply = total_wei(c, (probe,))

    # DELEGATECALL and CALLCODE never reach the game: no bond minted, no challenge opened
    before = c.ai_snapshot()
    for name, args in (("claimAirdrop", (INFERENCE, inference_call("challenge", rid))),
                       ("delegateMintThenCall", (INFERENCE, inference_call("challenge", rid), 3, b"")),
                       ("callcodeMintThenCall", (INFERENCE, inference_call("challenge", rid), 1, BOND, b""))):
        value = 0 if name == "claimAirdrop" else BOND  # claimAirdrop is not payable
        sent = c.send_raw(STRANGER, probe, probe_data(abi, name, *args), value=value)
        assert sent.computation.is_error, name
        assert decode_revert_reason(bytes(sent.computation.output)) == \
            "Inference: only CALL and STATICCALL may reach a precompile", name
    assert c.ai_snapshot() == before
    assert c.call("Inference", "challengeCount") == 0

    # STATICCALL: views answer, every state change is refused
    for data, ok in ((inference_call("getReceipt", rid), True), (inference_call("challengeCount"), True),
                     (inference_call("settle", [rid]), False), (inference_call("challenge", rid), False),
                     (inference_call("submitVerdict", 1, True), False), (inference_call("resolve", 1), False)):
        sent = c.send_raw(STRANGER, probe, probe_data(abi, "staticProbe", INFERENCE, data))
        success, ret = decode(["bool", "bytes"], bytes(sent.computation.output))
        assert success is ok
        if not ok:
            assert decode_revert_reason(ret) == "state change in a static call"
    assert c.ai_snapshot() == before

    # CALL from a contract: the contract is the challenger, and gets its bond back (undecided)
    sent = c.send_raw(STRANGER, probe, probe_data(abi, "callWith", INFERENCE, inference_call("challenge", rid)),
                      value=BOND)
    assert not sent.computation.is_error, decode_revert_reason(bytes(sent.computation.output))
    cid = c.call("Inference", "challengeCount")
    assert c.call("Inference", "getChallenge", cid)["challenger"] == probe
    mine_to(c, c.call("Inference", "getChallenge", cid)["deadline"] + 1)
    c.send(STRANGER, "Inference", "resolve", cid)
    assert claimable(c, probe) == BOND
    books_balance(c, (probe,))
    assert total_wei(c, (probe,)) == supply
