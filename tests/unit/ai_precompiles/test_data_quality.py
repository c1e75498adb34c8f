"""Data quality that costs the spammer (issue 22, item 3): MinHash sketches and the near-duplicate
flag, groups that share one attribution mass, bonds slashed for adversarial data, and the penalty
score that pauses a contributor's rewards. Each attack is a test."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak

import ai_precompiles as ap
from ai_precompiles import rewards, sketch
from ai_precompiles.addresses import DATANETS, DEFAULT_TREASURY, REWARDS
from ai_precompiles.datanets import REASON_ADVERSARIAL
from ai_precompiles.errors import decode_revert_reason
from ai_precompiles.registry import adapter_contribution_root
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Reverted
from tests.unit.ai_precompiles.ai_world import (
    BASE_AUTHOR,
    CONTRIB,
    CONTRIB2,
    CUR1,
    CUR2,
    CUR3,
    OWNER,
    USER,
    World,
    build_world,
)
from tests.unit.ai_precompiles.challenge_world import deploy_probe, probe_data

SYBIL, STRANGER = 10, 11
N_KEYS = 12
BOND = ETHER // 10
FEE = 10**15 + 7  # odd: the split has rounding remainders

ORIGINAL = (b"Aspirin irreversibly inhibits cyclooxygenase, which lowers thromboxane A2 in platelets; "
            b"a daily low dose therefore reduces the risk of a second heart attack, at the cost of a "
            b"higher risk of gastrointestinal bleeding, which is why guidelines weigh both before "
            b"recommending it for primary prevention in older adults.")
OTHER = (b"Metformin is the usual first medicine for type 2 diabetes: it lowers glucose production "
         b"in the liver, rarely causes hypoglycaemia on its own, and its most common side effects "
         b"are nausea and diarrhoea, which a slow dose increase or the extended-release form eases.")


def near_copy(text: bytes, i: int) -> bytes:
    """``text`` with one byte changed (a different byte for each ``i``)."""
    pos = (17 * i + 5) % len(text)
    return text[:pos] + bytes([(text[pos] + 1 + i // len(text)) % 256 or 1]) + text[pos + 1:]


def distinct_text(i: int) -> bytes:
    rng = random.Random(i)
    vocab = [f"w{n}x{n * 7 % 13}" for n in range(2000)]
    return " ".join(rng.choice(vocab) for _ in range(60)).encode()


# -- the sketch (off chain) ------------------------------------------------------------------------


def test_sketch_separates_near_copies_from_distinct_texts() -> None:
    s = sketch.compute_sketch(ORIGINAL)
    assert len(s) == sketch.SKETCH_BYTES and s == sketch.compute_sketch(ORIGINAL)  # deterministic
    # normalisation: case and whitespace do not change the shingles
    assert sketch.compute_sketch(ORIGINAL.upper().replace(b" ", b"  \n")) == s
    for i in range(10):
        assert sketch.similarity_bp(s, sketch.compute_sketch(near_copy(ORIGINAL, i))) >= 8000
    assert sketch.similarity_bp(s, sketch.compute_sketch(OTHER)) < 3000
    assert sketch.similarity_bp(sketch.compute_sketch(distinct_text(1)), sketch.compute_sketch(distinct_text(2))) < 3000
    assert len(set(sketch.band_keys(s))) == sketch.BANDS
    assert sketch.shingles(b"ab") == [b"ab"]
    # a huge blob costs no more than MAX_SHINGLED bytes of work
    assert len(sketch.shingles(b"x" * (sketch.MAX_SHINGLED + 10))) == sketch.MAX_SHINGLED - sketch.SHINGLE + 1


def test_split_with_groups() -> None:
    shares = {n: ap.get_param(AIChain().state, n) for n in rewards.SHARE_NAMES}
    fee = 10**18 + 3
    # no groups, or only singletons: the split of before
    base = rewards.split_fee(fee, [4000, 6000], shares, 1)
    assert rewards.split_fee(fee, [4000, 6000], shares, 1, [1, 2]) == base
    # eleven copies of one text at 800 bp and another text at 1200 bp: the group weighs 800 of 2000
    grouped = rewards.split_fee(fee, [800] * 11 + [1200], shares, 1, [1] * 11 + [2])
    pool = fee * shares["reward.contributors_bp"] // 10_000
    assert abs(sum(grouped.contributors[:11]) - base.contributors[0]) <= 11
    assert abs(grouped.contributors[11] - base.contributors[1]) <= 1
    assert grouped.total() == fee and sum(grouped.contributors) <= pool
    with pytest.raises(ValueError):
        rewards.split_fee(fee, [4000, 6000], shares, 1, [1])


# -- on chain --------------------------------------------------------------------------------------


def quality_world(params: dict[str, Any] | None = None) -> tuple[World, int]:
    """The standard world, plus datanet 2 (curator CUR1, quorum 1) asking a bond and a sketch."""
    w = build_world(params, n_keys=N_KEYS)
    c = w.c
    dn = c.send(OWNER, "Datanets", "createDatanet", "quality", "medical", "", "CC-BY-4.0",
                [c.addr(CUR1)], 1, 1 << 16).result
    c.send(OWNER, "Datanets", "setContributionPolicy", dn, BOND, True)
    return w, dn


def contribute(c: AIChain, key: int, dn: int, data: bytes, bond: int = BOND,
               sk: bytes | None = None) -> Any:
    content = keccak(data)
    salt = c.commit(key, dn, content, len(data), "CC-BY-4.0", b"\x00" * 32)
    return c.send(key, "Datanets", "contributeBonded", dn, content, len(data), "CC-BY-4.0", b"\x00" * 32, salt,
                  sketch.compute_sketch(data) if sk is None else sk, value=bond)


def quality(c: AIChain, cid: int) -> dict[str, Any]:
    return c.call("Datanets", "getQuality", cid)


def held_bonds(c: AIChain) -> int:
    n = c.call("Datanets", "contributionCount")
    return sum(q["bond"] for q in (quality(c, i) for i in range(1, n + 1)) if q["bond_status"] == 1)


def test_near_copy_is_flagged_and_joins_the_group() -> None:
    w, dn = quality_world()
    c = w.c
    original = contribute(c, CONTRIB, dn, ORIGINAL).result
    assert quality(c, original)["near_duplicate_of"] == 0
    assert quality(c, original)["group_id"] == original
    copy1 = contribute(c, SYBIL, dn, near_copy(ORIGINAL, 1))
    flagged = [lg for lg in copy1.logs if lg.topics[0] == ap.load_abi("Datanets").events["NearDuplicateFlagged"].topic0]
    assert len(flagged) == 1
    q = quality(c, copy1.result)
    assert (q["near_duplicate_of"], q["group_id"], q["sketched"]) == (original, original, True)
    assert q["similarity_bp"] >= 8000 and q["bond"] == BOND and q["bond_status"] == 1
    # a copy of the copy joins the same group, not a new one
    copy2 = contribute(c, SYBIL, dn, near_copy(near_copy(ORIGINAL, 1), 2)).result
    assert quality(c, copy2)["group_id"] == original
    other = contribute(c, CONTRIB2, dn, OTHER).result
    assert quality(c, other)["near_duplicate_of"] == 0 and quality(c, other)["group_id"] == other
    # the sketch is readable by anyone who wants to check it against the blob
    assert c.call("Datanets", "getSketch", other) == sketch.compute_sketch(OTHER)
    assert c.call("Datanets", "getSketch", w.contributions[0]) == b""
    with pytest.raises(Reverted, match="does not exist"):
        c.call("Datanets", "getSketch", 10_000)
    # the threshold is governance's: at 100 % a one-byte copy is no longer flagged
    w2, dn2 = quality_world({"datanet.near_duplicate_bp": 10_000})
    contribute(w2.c, CONTRIB, dn2, ORIGINAL)
    assert quality(w2.c, contribute(w2.c, SYBIL, dn2, near_copy(ORIGINAL, 1)).result)["near_duplicate_of"] == 0


def test_policy_and_sketch_rules() -> None:
    w, dn = quality_world()
    c = w.c
    count = c.call("Datanets", "contributionCount")
    content = keccak(ORIGINAL)
    salt = c.commit(CONTRIB, dn, content, len(ORIGINAL), "CC-BY-4.0", b"\x00" * 32)
    for args, value, reason in (
        ((sketch.compute_sketch(ORIGINAL)[:-1],), BOND, "a sketch is 256 bytes, not 255"),
        ((b"",), BOND, "this datanet requires each contribution's MinHash sketch"),
        ((sketch.compute_sketch(ORIGINAL),), BOND - 1, f"bond {BOND - 1} is below the datanet's minimum {BOND}"),
    ):
        with pytest.raises(Reverted) as e:
            c.send(CONTRIB, "Datanets", "contributeBonded", dn, content, len(ORIGINAL), "CC-BY-4.0",
                   b"\x00" * 32, salt, *args, value=value)
        assert e.value.reason == reason
    with pytest.raises(Reverted, match="use contributeBonded"):
        c.send(CONTRIB, "Datanets", "contribute", dn, content, len(ORIGINAL), "CC-BY-4.0", b"\x00" * 32, salt)
    with pytest.raises(Reverted, match="only the datanet owner"):
        c.send(STRANGER, "Datanets", "setContributionPolicy", dn, 0, False)
    with pytest.raises(Reverted, match="exceeds datanet.max_min_bond"):
        c.send(OWNER, "Datanets", "setContributionPolicy", dn, 101 * ETHER, False)
    with pytest.raises(Reverted, match="not payable"):
        c.send(CONTRIB, "Datanets", "contribute", w.datanet, content, 1, "CC-BY-4.0", b"\x00" * 32, salt, value=1)
    assert c.call("Datanets", "contributionCount") == count
    assert c.call("Datanets", "getContributionPolicy", dn) == {"min_bond": BOND, "require_sketch": True}
    # a datanet without a policy takes bonded and sketched contributions too (both optional)
    cid = contribute(c, CONTRIB, w.datanet, ORIGINAL, bond=0).result
    assert quality(c, cid)["bond_status"] == 0 and quality(c, cid)["sketched"]


def test_bonds_below_the_minimum_cannot_flood_a_datanet() -> None:
    """The attack: a flood of contributions with a tiny bond each. Every one is refused before
    anything is recorded, so a flood costs the datanet's minimum bond per contribution."""
    w, dn = quality_world()
    c = w.c
    before = c.call("Datanets", "getDatanet", dn)["contribution_count"]
    snapshot = c.ai_snapshot()
    for i in range(5):
        data = distinct_text(100 + i)
        with pytest.raises(Reverted, match="below the datanet's minimum"):
            contribute(c, SYBIL, dn, data, bond=BOND // 1000)
    assert c.call("Datanets", "getDatanet", dn)["contribution_count"] == before
    # only the commitments (one word each, no contribution) changed the Datanets account
    assert c.balance(DATANETS) == snapshot[DATANETS][0]
    contribute(c, SYBIL, dn, distinct_text(200))
    assert c.balance(DATANETS) == snapshot[DATANETS][0] + BOND == held_bonds(c)


def test_bonds_return_or_slash_and_penalties_pause_rewards() -> None:
    w, dn = quality_world({"datanet.penalty_threshold": 2})
    c = w.c
    a = [contribute(c, SYBIL, dn, distinct_text(300 + i)).result for i in range(4)]
    good = contribute(c, SYBIL, dn, OTHER).result
    assert c.balance(DATANETS) == 5 * BOND == held_bonds(c)
    sybil_balance = c.balance(c.addr(SYBIL))

    c.send(CUR1, "Datanets", "curate", good, True, 0)  # accepted: bond back
    c.send(CUR1, "Datanets", "curate", a[0], False, 7)  # rejected, not adversarial: bond back
    assert c.balance(c.addr(SYBIL)) == sybil_balance + 2 * BOND
    assert [quality(c, i)["bond_status"] for i in (good, a[0])] == [2, 2]
    assert c.call("Datanets", "penaltyScore", c.addr(SYBIL)) == 0

    treasury_before = ap.get_rewards(c.state, DEFAULT_TREASURY)["claimable"]
    sent = c.send(CUR1, "Datanets", "curate", a[1], False, REASON_ADVERSARIAL)
    assert quality(c, a[1])["bond_status"] == 3
    assert ap.get_rewards(c.state, DEFAULT_TREASURY)["claimable"] == treasury_before + BOND
    assert c.call("Datanets", "penaltyScore", c.addr(SYBIL)) == 1
    names = {e.topic0: n for n, e in ap.load_abi("Datanets").events.items()}
    assert [names[lg.topics[0]] for lg in sent.logs if lg.topics[0] in names] == [
        "ContributionCurated", "ContributionRejected", "BondSlashed", "ContributorPenalized"]
    assert c.balance(c.addr(SYBIL)) == sybil_balance + 2 * BOND
    assert c.balance(DATANETS) == held_bonds(c) == 2 * BOND
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable") + c.call("Rewards", "totalPending")

    # accepted data of the sybil's is in an adapter, served, and paid while its score is below 2
    c.send(OWNER, "Datanets", "publishVersion", dn)
    adapter = register_adapter(w, dn, 1, "good")
    rid1 = receipt(w, adapter, [good], [10_000])
    c.send(CUR1, "Datanets", "curate", a[2], False, REASON_ADVERSARIAL)  # score 2: paused
    assert c.call("Datanets", "penaltyScore", c.addr(SYBIL)) == 2
    pending = ap.get_rewards(c.state, c.addr(SYBIL))["pending"]
    assert pending > 0
    treasury_before = ap.get_rewards(c.state, DEFAULT_TREASURY)["claimable"]
    w.settle(rid1)
    # the share held before the pause is released to the treasury, not the sybil
    assert ap.get_rewards(c.state, c.addr(SYBIL)) == {"claimable": 0, "earned": 0, "pending": 0}
    assert ap.get_rewards(c.state, DEFAULT_TREASURY)["claimable"] >= treasury_before + pending
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable") + c.call("Rewards", "totalPending")
    # an honest contributor in the same datanet is still paid
    honest = contribute(c, CONTRIB, dn, ORIGINAL).result
    c.send(CUR1, "Datanets", "curate", honest, True, 0)
    c.send(OWNER, "Datanets", "publishVersion", dn)
    rid2 = receipt(w, register_adapter(w, dn, 2, "both"), [good, honest], [5000, 5000])
    w.settle(rid2)
    assert ap.get_rewards(c.state, c.addr(CONTRIB))["claimable"] > 0
    assert ap.get_rewards(c.state, c.addr(SYBIL))["claimable"] == 0


def test_quorum_of_adversarial_votes_is_needed_to_slash() -> None:
    """With three curators and quorum 2, one curator's 'adversarial' is not enough: a rejection
    slashes only when the adversarial votes alone made the quorum unreachable."""
    w = build_world(n_keys=N_KEYS)
    c = w.c
    dn = c.send(OWNER, "Datanets", "createDatanet", "q2", "x", "", "MIT", [c.addr(CUR1), c.addr(CUR2), c.addr(CUR3)],
                2, 1 << 16).result
    c.send(OWNER, "Datanets", "setContributionPolicy", dn, BOND, False)
    x, y = (contribute(c, SYBIL, dn, distinct_text(400 + i)).result for i in range(2))
    c.send(CUR1, "Datanets", "curate", x, False, REASON_ADVERSARIAL)
    c.send(CUR2, "Datanets", "curate", x, False, 9)
    assert quality(c, x)["bond_status"] == 2  # rejected, bond returned
    c.send(CUR1, "Datanets", "curate", y, False, REASON_ADVERSARIAL)
    c.send(CUR3, "Datanets", "curate", y, False, REASON_ADVERSARIAL)
    assert quality(c, y)["bond_status"] == 3
    assert c.call("Datanets", "penaltyScore", c.addr(SYBIL)) == 1


# -- the attack: ten near copies of one text are paid as one ---------------------------------------


def register_adapter(w: World, dn: int, version: int, tag: str) -> int:
    c = w.c
    spec = {"parent_id": w.base, "datanet_ids": [dn], "datanet_versions": [version],
            "contribution_root": adapter_contribution_root(c.state, [dn], [version]),
            "hyper_params_hash": keccak(text=tag), "weights_hash": keccak(text=f"{tag} w"),
            "attribution_index_hash": keccak(text=f"{tag} idx"), "manifest_hash": keccak(text=f"{tag} m"),
            "validator": c.addr(7), "license": "apache-2.0"}
    return int(c.send(BASE_AUTHOR, "ModelRegistry", "registerAdapter", spec).result)


def receipt(w: World, adapter: int, ids: list[int], weights: list[int]) -> int:
    req = w.request(adapter, FEE)
    sent = w.c.send(USER, "Inference", "submitReceipt", *w.receipt_args(req, ids, weights, FEE))
    return int(sent.result)


def test_ten_near_copies_are_paid_as_one() -> None:
    """An honest contributor's text O and another text X are attributed 40/60. A sybil adds ten
    one-byte copies of O; an adapter trained on all twelve gives each copy of O the same
    influence, normalised: 800 bp each and 1200 bp for X (the naive split would hand the group
    11 x 800 = 8800 bp). The group is paid what O alone was, within 1 bp of the fee, and X keeps
    its 60 %."""
    w, dn = quality_world()
    c = w.c
    o = contribute(c, CONTRIB, dn, ORIGINAL).result
    x = contribute(c, CONTRIB2, dn, OTHER).result
    for cid in (o, x):
        c.send(CUR1, "Datanets", "curate", cid, True, 0)
    c.send(OWNER, "Datanets", "publishVersion", dn)
    copies = [contribute(c, SYBIL, dn, near_copy(ORIGINAL, i)).result for i in range(10)]
    assert all(quality(c, cid)["group_id"] == o for cid in copies)
    for cid in copies:  # the curators see the flag but accept them (a lazy or fooled curator)
        c.send(CUR1, "Datanets", "curate", cid, True, 0)
    c.send(OWNER, "Datanets", "publishVersion", dn)
    one = register_adapter(w, dn, 1, "one")
    all12 = register_adapter(w, dn, 2, "all")

    def paid(rid: int) -> dict[bytes, int]:
        store = ap.storage.Store(c.state, ap.addresses.INFERENCE)
        r = ap.receipts.Receipt.decode(store, rid)
        who = {c.addr(k): k for k in (CONTRIB, CONTRIB2, SYBIL)}
        out = {k: 0 for k in who.values()}
        for acct, role, amount in ap.receipts.payouts_of(ap.context.Ctx.for_state(c.state), r):
            if role == rewards.CONTRIBUTOR:
                out[who[acct]] += amount
        return out

    before = paid(receipt(w, one, [o, x], [4000, 6000]))
    pending_before = {k: ap.get_rewards(c.state, c.addr(k))["pending"] for k in (CONTRIB, CONTRIB2, SYBIL)}
    after = paid(receipt(w, all12, [o, *copies, x], [800] * 11 + [1200]))
    pending_after = {k: ap.get_rewards(c.state, c.addr(k))["pending"] - pending_before[k]
                     for k in (CONTRIB, CONTRIB2, SYBIL)}
    assert pending_after == after  # the split held is the split computed
    one_bp = FEE // 10_000
    assert abs(after[CONTRIB] + after[SYBIL] - before[CONTRIB]) <= one_bp
    assert abs(after[CONTRIB2] - before[CONTRIB2]) <= one_bp
    # the copier shares the original's mass: 10 of its 11 parts, not 10 times it
    assert after[SYBIL] < before[CONTRIB] and after[CONTRIB] * 10 - after[SYBIL] <= 10
    # and the receipt settles as held: books balance
    w.settle(2)
    assert c.balance(REWARDS) == c.call("Rewards", "totalClaimable") + c.call("Rewards", "totalPending")


# -- bounded work and who may reach it -------------------------------------------------------------


def test_contribute_bonded_gas_is_flat_as_the_datanet_grows() -> None:
    """The LSH index is one word per band key: the 101st sketched contribution costs what the
    first did (100x the contributions), and so does a near copy's lookup."""
    w, dn = quality_world()
    c = w.c
    sent = contribute(c, CONTRIB, dn, distinct_text(0))
    first, ids = sent.gas_used, [sent.result]
    for i in range(1, 100):
        ids.append(contribute(c, CONTRIB, dn, distinct_text(i)).result)
    later = contribute(c, CONTRIB, dn, distinct_text(100)).gas_used
    # never more; less when some of its bands are already in the index (no new word to write)
    assert first - sketch.BANDS * 22_100 <= later <= first, (first, later)
    copy = contribute(c, SYBIL, dn, near_copy(distinct_text(50), 1))
    assert quality(c, copy.result)["near_duplicate_of"] == ids[50]
    assert copy.gas_used <= first * 11 // 10


def test_every_call_kind() -> None:
    w, dn = quality_world()
    c = w.c
    probe, abi = deploy_probe(c, STRANGER)
    fn = ap.load_abi("Datanets").by_name
    data = distinct_text(7)
    content = keccak(data)
    sk = sketch.compute_sketch(data)
    salt = b"\x01" * 32

    def call_data(name: str, *args: Any) -> bytes:
        return bytes(fn[name].encode_args(*args))

    commitment = ap.datanets.contribution_commitment(probe, dn, content, len(data), "MIT", b"\x00" * 32, salt)
    assert not c.send_raw(STRANGER, probe, probe_data(abi, "callWith", DATANETS,
                                                      call_data("commitContribution", commitment))).computation.is_error
    bonded = call_data("contributeBonded", dn, content, len(data), "MIT", b"\x00" * 32, salt, sk)
    before = c.ai_snapshot()
    # DELEGATECALL and CALLCODE never reach it: no bond minted, nothing recorded
    for name, args, value in (("claimAirdrop", (DATANETS, bonded), 0),
                              ("delegateMintThenCall", (DATANETS, bonded, 2, b""), BOND),
                              ("callcodeMintThenCall", (DATANETS, bonded, 1, BOND, b""), BOND)):
        sent = c.send_raw(STRANGER, probe, probe_data(abi, name, *args), value=value)
        assert sent.computation.is_error, name
        assert decode_revert_reason(bytes(sent.computation.output)) == \
            "Datanets: only CALL and STATICCALL may reach a precompile", name
    assert c.ai_snapshot() == before
    # STATICCALL: views answer, state changes are refused
    for payload, ok in ((call_data("getQuality", 1), True), (call_data("penaltyScore", probe), True),
                        (call_data("getContributionPolicy", dn), True), (bonded, False),
                        (call_data("setContributionPolicy", dn, 0, False), False)):
        sent = c.send_raw(STRANGER, probe, probe_data(abi, "staticProbe", DATANETS, payload))
        success, ret = decode(["bool", "bytes"], bytes(sent.computation.output))
        assert success is ok
        if not ok:
            assert decode_revert_reason(ret) == "state change in a static call"
    assert c.ai_snapshot() == before
    # CALL from a contract: the contract is the contributor and bonds its own value
    sent = c.send_raw(STRANGER, probe, probe_data(abi, "callWith", DATANETS, bonded), value=BOND)
    assert not sent.computation.is_error, decode_revert_reason(bytes(sent.computation.output))
    cid = c.call("Datanets", "contributionCount")
    assert c.call("Datanets", "getContribution", cid)["contributor"] == probe
    assert quality(c, cid)["bond"] == BOND
    c.send(CUR1, "Datanets", "curate", cid, True, 0)
    assert c.balance(probe) == BOND  # returned to the contract that bonded it


def test_a_second_candidate_finds_the_copy_behind_a_look_alike() -> None:
    """The band index keeps the first contribution per key, so an earlier look-alike P can hold
    most of the bands that a new sketch N shares with its real original O. P (named by 10 bands,
    similarity 40/64) is compared first and fails; O (5 bands, 60/64) is compared next and the
    copy is flagged. Sketches are bytes on chain, so they are written here minimum by minimum."""
    w, dn = quality_world()
    c = w.c
    rng = random.Random(5)

    def minima(n: int) -> list[bytes]:
        return [rng.randbytes(4) for _ in range(n)]

    rows = sketch.ROWS
    new = minima(sketch.NUM_PERM)
    look_alike = new[:10 * rows] + minima(sketch.NUM_PERM - 10 * rows)
    original = new[:15 * rows] + minima(rows)
    p = contribute(c, CONTRIB, dn, b"look-alike", sk=b"".join(look_alike)).result
    o = contribute(c, CONTRIB2, dn, b"original", sk=b"".join(original)).result
    assert quality(c, o)["near_duplicate_of"] == 0  # 40/64 to P: not a copy of it
    q = quality(c, contribute(c, SYBIL, dn, b"copy", sk=b"".join(new)).result)
    assert (q["near_duplicate_of"], q["group_id"], q["similarity_bp"]) == (o, o, 60 * 10_000 // 64)
    assert p != o
