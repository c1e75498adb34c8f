"""The whole life of the AI state machine over real JSON-RPC against one `ailedger dev`:
a datanet, contributions with their bytes in the blob store, curation to quorum (one rejected
with a reason code), a version and an inclusion proof checked in pure Python against the root
read by eth_call, a base model and a chain of two adapters, an EIP-712 signed request and the
validator's receipt, the payout to every party, the claims (balance deltas exact to the wei),
the ancestry of the inference, and the AI events through eth_getLogs and a WebSocket
eth_subscribe("logs").

One node and one built world per module; each test checks one aspect of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_utils import keccak, to_checksum_address
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

import ai_precompiles
from ai_precompiles import merkle
from ai_precompiles.addresses import BY_NAME
from ai_precompiles.addresses import DEFAULT_TREASURY as TREASURY
from tests.integration.ai.client import (
    ADDR,
    AUTHOR1,
    AUTHOR2,
    BASE_AUTHOR,
    CONTRIB_A,
    CONTRIB_B,
    CUR1,
    CUR2,
    ENGINE_PROFILE,
    KEY,
    OWNER,
    USER,
    VALIDATOR,
    AINode,
    Mined,
    SignedReceipt,
    make_request,
    request_tuple,
    request_typed,
    sign_receipt,
    sign_typed,
    typed_digest,
)
from tests.integration.ai.world import MAX_SIZE, REJECT_REASON, World, build_world
from tests.support.procs import start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai-rpc")]

AI_ADDRESSES = [to_checksum_address(BY_NAME[n]) for n in ("Datanets", "ModelRegistry", "Inference", "Rewards")]
FEE = 10**16 + 7  # odd, so the split has rounding remainders for the treasury
WEIGHTS = [5000, 3000, 2000]
CLAIMERS = (CONTRIB_A, CONTRIB_B, AUTHOR1, AUTHOR2, BASE_AUTHOR, VALIDATOR)


def topic0(module: str, event: str) -> str:
    return "0x" + ai_precompiles.MODULES[module].abi.events[event].topic0.to_bytes(32, "big").hex()


def id_topic(value: int | str) -> str:
    if isinstance(value, str):
        return "0x" + value[2:].lower().rjust(64, "0")
    return "0x" + value.to_bytes(32, "big").hex()


@dataclass
class Life:
    """The node after the whole life, and what the tests check against."""

    node: AINode
    world: World
    receipt: SignedReceipt
    receipt_tx: Mined
    first_block: int
    held: dict[int, dict[str, Any]] = field(default_factory=dict)
    """ai_getRewards of each party after the receipt, before it settled."""
    rewards_before_claim: dict[int, dict[str, Any]] = field(default_factory=dict)
    claimable_by_call: dict[int, int] = field(default_factory=dict)
    claims: dict[int, tuple[int, int, Mined]] = field(default_factory=dict)
    """account -> (balance before, balance after, the claim transaction)."""
    deposit_before: int = 0
    deposit_after: int = 0
    ws_logs: list[dict[str, Any]] = field(default_factory=list)


def drain(ws: ClientConnection, sub_id: str, quiet: float = 1.0) -> list[dict[str, Any]]:
    """Every notification of ``sub_id`` until the socket stays quiet for ``quiet`` seconds."""
    out = []
    while True:
        try:
            msg = json.loads(ws.recv(timeout=quiet))
        except TimeoutError:
            return out
        if msg.get("method") == "eth_subscription" and msg["params"]["subscription"] == sub_id:
            out.append(msg["params"]["result"])


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    proc = start_ailedger([], tmp_path_factory.mktemp("ai_life"))
    try:
        node = AINode(proc)
        with ws_connect(proc.ws_url, open_timeout=10) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                "params": ["logs", {"address": AI_ADDRESSES}]}))
            sub_id = json.loads(ws.recv(timeout=10))["result"]
            first_block = int(node.rpc("eth_blockNumber"), 16) + 1
            w = build_world(node)
            deadline = int(node.head()["timestamp"], 16) + 3600
            req = make_request(USER, w.adapter2, max_fee=2 * FEE, nonce=1, deadline=deadline)
            # The user signs in the wallet (the node's unlocked eth_signTypedData_v4).
            wallet_sig = bytes.fromhex(node.rpc("eth_signTypedData_v4", ADDR[USER],
                                                request_typed(req))[2:])
            signed = sign_receipt(req, w.accepted, WEIGHTS, FEE, user_signature=wallet_sig)
            deposit_before = node.call(USER, "Inference", "depositOf", ADDR[USER])
            receipt_id, receipt_tx = node.do(VALIDATOR, "Inference", "submitReceipt", *signed.abi_args())
            life = Life(node, w, signed, receipt_tx, first_block, deposit_before=deposit_before,
                        deposit_after=node.call(USER, "Inference", "depositOf", ADDR[USER]))
            for who in (*CLAIMERS, USER):
                life.held[who] = node.rpc("ai_getRewards", ADDR[who])
            node.settle(OWNER, receipt_id)  # the dev chain's window: one block
            for who in (*CLAIMERS, USER):
                life.rewards_before_claim[who] = node.rpc("ai_getRewards", ADDR[who])
                life.claimable_by_call[who] = node.call(OWNER, "Rewards", "claimable", ADDR[who])
            for who in CLAIMERS:
                before = node.balance(who)
                claimed = node.send(who, "Rewards", "claim")
                assert claimed.status == 1
                life.claims[who] = (before, node.balance(who), claimed)
            life.ws_logs = drain(ws, sub_id)
        yield life
    finally:
        proc.kill()


def test_datanet_contributions_and_curation_to_quorum(life: Life) -> None:
    node, w = life.node, life.world
    d = node.rpc("ai_getDatanet", w.datanet)
    assert d["owner"] == ADDR[OWNER] and d["name"] == "med-qa" and d["quorum"] == 2
    assert d["curators"] == [ADDR[CUR1], ADDR[CUR2]] and d["maxContributionSize"] == MAX_SIZE
    assert (d["contributionCount"], d["acceptedCount"], d["versionCount"]) == (5, 4, 1)
    for cid in w.accepted:
        c = node.rpc("ai_getContribution", cid)
        assert (c["status"], c["approvals"], c["blobAvailable"]) == (1, 2, True)
        blob = node.rpc("ai_getBlob", c["contentHash"])
        assert bytes.fromhex(blob["data"][2:]) == w.blobs[cid] and c["size"] == len(w.blobs[cid])
        assert c["contentHash"] == "0x" + keccak(w.blobs[cid]).hex()
    rej = node.rpc("ai_getContribution", w.rejected)
    assert (rej["status"], rej["rejections"], rej["reasonCode"]) == (2, 1, REJECT_REASON)
    # the same record through eth_call and the shipped ABI
    onchain = node.call(OWNER, "Datanets", "getContribution", w.rejected)
    assert (onchain[9], onchain[12]) == (2, REJECT_REASON)
    listed = node.rpc("ai_listContributions", w.datanet, {"status": "accepted"})
    assert [c["id"] for c in listed] == [*w.accepted, w.late]
    assert [c["id"] for c in node.rpc("ai_listContributions", w.datanet, {"status": "rejected"})] == [w.rejected]
    assert [c["id"] for c in node.rpc("ai_listContributions", w.datanet, {"offset": 1, "limit": 2})] == w.accepted[1:3]


def test_contribution_proofs_verify_without_trusting_the_node(life: Life) -> None:
    node, w = life.node, life.world
    version = node.call(OWNER, "Datanets", "getVersion", w.datanet, 1)
    root, count = version[2], version[3]
    assert count == len(w.accepted)
    for cid in w.accepted:
        proof = node.rpc("ai_getContributionProof", w.datanet, 1, cid)
        c = node.call(OWNER, "Datanets", "getContribution", cid)  # fields by eth_call
        leaf = merkle.leaf_hash(w.datanet, cid, bytes.fromhex(c[2][2:]), keccak(w.blobs[cid]),
                                len(w.blobs[cid]), c[8])
        siblings = [bytes.fromhex(s[2:]) for s in proof["proof"]]
        assert merkle.verify_proof(leaf, siblings, root)
        assert not merkle.verify_proof(keccak(leaf), siblings, root)
    # neither the rejected nor the late contribution is in version 1
    for cid in (w.rejected, w.late):
        with pytest.raises(Exception, match="-32001|not"):
            node.rpc("ai_getContributionProof", w.datanet, 1, cid)


def test_lineage_shows_the_path_and_the_authors(life: Life) -> None:
    node, w = life.node, life.world
    lineage = node.rpc("ai_getLineage", w.adapter2)
    assert [s["id"] for s in lineage["path"]] == [w.adapter2, w.adapter1, w.base]
    assert lineage["authors"] == [ADDR[AUTHOR2], ADDR[AUTHOR1], ADDR[BASE_AUTHOR]]
    assert node.call(OWNER, "ModelRegistry", "getLineage", w.adapter2) == [w.adapter2, w.adapter1, w.base]
    a1 = lineage["path"][1]
    assert a1["datanetVersionsDetail"][0]["contributionIds"] == w.accepted
    assert a1["contributionRootMatches"] is True
    assert lineage["contributors"] == {str(c): node.rpc("ai_getContribution", c)["contributor"]
                                       for c in w.accepted}
    assert node.rpc("ai_getModel", w.adapter1)["children"] == [w.adapter2]
    assert node.call(OWNER, "ModelRegistry", "inLineage", w.adapter2, w.accepted[0]) is True
    assert node.call(OWNER, "ModelRegistry", "inLineage", w.adapter2, w.late) is False


def test_request_digest_matches_the_wallet(life: Life) -> None:
    """The digest eth-account's EIP-712 encoder signs equals the precompile's requestDigest,
    and the wallet's (node's unlocked account) signature equals a local one."""
    node, r = life.node, life.receipt
    assert node.call(OWNER, "Inference", "requestDigest", request_tuple(r.request),
                     r.validator) == r.request_hash
    assert r.request_hash == typed_digest(request_typed(r.request))
    assert r.user_signature == sign_typed(request_typed(r.request), KEY[USER])


def expected_split(node: AINode) -> dict[str, int]:
    params = {k: int(v, 16) for k, v in node.rpc("ai_getParams").items()}
    pools = {k: FEE * params[f"reward.{k}_bp"] // 10_000
             for k in ("contributors", "author", "lineage", "validator")}
    c = [pools["contributors"] * wgt // 10_000 for wgt in WEIGHTS]
    out = {"A": c[0] + c[2], "B": c[1], "author": pools["author"],
           "ancestor": pools["lineage"] // 2, "validator": pools["validator"]}
    out["treasury"] = FEE - out["A"] - out["B"] - out["author"] - 2 * out["ancestor"] - out["validator"]
    return out


def test_payout_to_each_party(life: Life) -> None:
    node = life.node
    split = expected_split(node)
    want = {CONTRIB_A: split["A"], CONTRIB_B: split["B"], AUTHOR2: split["author"],
            AUTHOR1: split["ancestor"], BASE_AUTHOR: split["ancestor"],
            VALIDATOR: split["validator"], USER: 0}
    for who, amount in want.items():
        # held while the receipt's challenge window was open, then claimable once it settled
        assert (int(life.held[who]["pending"], 16), int(life.held[who]["claimable"], 16)) == (amount, 0), who
        assert int(life.rewards_before_claim[who]["pending"], 16) == 0, who
        assert int(life.rewards_before_claim[who]["claimable"], 16) == amount, who
        assert int(life.rewards_before_claim[who]["earned"], 16) == amount, who
        assert life.claimable_by_call[who] == amount, who
    treasury = node.call(OWNER, "Rewards", "claimable", to_checksum_address(TREASURY))
    assert treasury == split["treasury"] > 0
    assert life.deposit_before - life.deposit_after == FEE
    assert sum(want.values()) + treasury == FEE
    assert node.call(OWNER, "Inference", "nonceUsed", ADDR[USER], 1) is True


def test_claims_move_exactly_the_claimable_wei(life: Life) -> None:
    node = life.node
    for who, (before, after, tx) in life.claims.items():
        owed = int(life.rewards_before_claim[who]["claimable"], 16)
        assert owed > 0
        assert after - before == owed - tx.fee_paid, who
        assert int(node.rpc("ai_getRewards", ADDR[who])["claimable"], 16) == 0
        assert int(node.rpc("ai_getRewards", ADDR[who])["earned"], 16) == owed
    # the Rewards account holds exactly the unclaimed total (the treasury's share)
    rewards_balance = node.balance(to_checksum_address(BY_NAME["Rewards"]))
    assert rewards_balance == node.call(OWNER, "Rewards", "totalClaimable") == expected_split(node)["treasury"]


def test_inference_ancestry(life: Life) -> None:
    node, w, r = life.node, life.world, life.receipt
    anc = node.rpc("ai_getInferenceAncestry", life.receipt_tx.tx_hash)
    assert anc["transactionHash"] == life.receipt_tx.tx_hash
    assert anc["receipt"]["requestHash"] == "0x" + r.request_hash.hex()
    assert anc["receipt"]["outputHash"] == "0x" + r.output_hash.hex()
    assert anc["receipt"]["adapterId"] == w.adapter2 and anc["receipt"]["fee"] == FEE
    # what a re-run needs: the signed max tokens and engine, the weights of the adapter and base
    rec = anc["receipt"]
    assert (rec["maxTokens"], rec["engineProfile"]) == (32, "0x" + ENGINE_PROFILE.hex())
    assert rec["promptHash"] == "0x" + keccak(text="prompt").hex()
    assert rec["weightsHash"] == "0x" + keccak(text="weights a2").hex()
    assert rec["baseModelHash"] == "0x" + keccak(text="base weights").hex()
    assert rec["status"] == 0  # as of its block: pending; settled since
    assert node.rpc("ai_getReceipt", rec["id"])["receipt"]["status"] == 2
    assert anc["lineage"]["path"][0]["manifestHash"] == "0x" + keccak(text="manifest a2").hex()
    assert anc["lineage"]["path"][0]["attributionIndexHash"] == "0x" + keccak(text="index a2").hex()
    contributors = {w.accepted[0]: ADDR[CONTRIB_A], w.accepted[1]: ADDR[CONTRIB_B], w.accepted[2]: ADDR[CONTRIB_A]}
    assert [(a["contributionId"], a["weightBp"], a["datanetId"], a["contributor"], a["contentHash"])
            for a in anc["attributions"]] == [
        (cid, wgt, w.datanet, contributors[cid], "0x" + keccak(w.blobs[cid]).hex())
        for cid, wgt in zip(w.accepted, WEIGHTS, strict=True)]
    assert [s["id"] for s in anc["lineage"]["path"]] == [w.adapter2, w.adapter1, w.base]
    assert anc["lineage"]["path"][1]["datanetVersionsDetail"][0]["datanetId"] == w.datanet
    # a transaction that recorded no inference has no ancestry
    with pytest.raises(Exception, match="no inference"):
        node.rpc("ai_getInferenceAncestry", w.txs["createDatanet"].tx_hash)


def test_get_logs_follow_ids_by_indexed_topics(life: Life) -> None:
    node, w = life.node, life.world
    base = {"fromBlock": hex(life.first_block), "toBlock": "latest"}
    created = node.rpc("eth_getLogs", {**base, "topics": [topic0("Datanets", "DatanetCreated"), id_topic(w.datanet)]})
    assert len(created) == 1 and created[0]["transactionHash"] == w.txs["createDatanet"].tx_hash
    submitted = node.rpc("eth_getLogs", {**base, "address": AI_ADDRESSES[0],
                                         "topics": [topic0("Datanets", "ContributionSubmitted"), id_topic(w.datanet)]})
    assert sorted(int(s["topics"][2], 16) for s in submitted) == sorted([*w.accepted, w.rejected, w.late])
    one = node.rpc("eth_getLogs", {**base, "topics": [None, None, id_topic(w.accepted[1])]})
    assert {x["topics"][0] for x in one} >= {topic0("Datanets", "ContributionSubmitted"),
                                            topic0("Datanets", "ContributionAccepted")}
    rejected = node.rpc("eth_getLogs", {**base, "topics": [topic0("Datanets", "ContributionRejected")]})
    assert [int(x["topics"][2], 16) for x in rejected] == [w.rejected]
    assert int(rejected[0]["data"][-64:], 16) == REJECT_REASON
    version = node.rpc("eth_getLogs", {**base, "topics": [topic0("Datanets", "VersionPublished"), id_topic(w.datanet), id_topic(1)]})
    assert len(version) == 1
    adapters = node.rpc("eth_getLogs", {**base, "topics": [topic0("ModelRegistry", "AdapterRegistered")]})
    assert [(int(x["topics"][1], 16), int(x["topics"][2], 16)) for x in adapters] == [
        (w.adapter1, w.base), (w.adapter2, w.adapter1)]
    by_adapter = node.rpc("eth_getLogs", {**base, "topics": [topic0("Inference", "InferenceRecorded"), None,
                                                             id_topic(w.adapter2), id_topic(ADDR[USER])]})
    assert [x["transactionHash"] for x in by_adapter] == [life.receipt_tx.tx_hash]
    receipt_id = int(by_adapter[0]["topics"][1], 16)
    accrued = node.rpc("eth_getLogs", {**base, "topics": [topic0("Rewards", "RewardAccrued"), None, id_topic(receipt_id)]})
    assert sum(int(x["data"], 16) for x in accrued) == FEE
    assert {to_checksum_address("0x" + x["topics"][1][-40:]) for x in accrued} == {
        ADDR[a] for a in (CONTRIB_A, CONTRIB_B, AUTHOR1, AUTHOR2, BASE_AUTHOR, VALIDATOR)} | {
        to_checksum_address(TREASURY)}
    claimed = node.rpc("eth_getLogs", {**base, "topics": [topic0("Rewards", "RewardClaimed"), id_topic(ADDR[CONTRIB_B])]})
    assert len(claimed) == 1


def test_websocket_subscription_sees_the_same_ai_logs(life: Life) -> None:
    node = life.node
    polled = node.rpc("eth_getLogs", {"fromBlock": hex(life.first_block), "toBlock": "latest",
                                      "address": AI_ADDRESSES})

    def key(x: dict[str, Any]) -> tuple[Any, ...]:
        return (x["transactionHash"], x["logIndex"], x["address"].lower(), tuple(x["topics"]), x["data"])

    assert len(polled) > 20
    assert [key(x) for x in life.ws_logs] == [key(x) for x in polled]
    names = {x["topics"][0] for x in life.ws_logs}
    assert {topic0("Datanets", "DatanetCreated"), topic0("Datanets", "VersionPublished"),
            topic0("ModelRegistry", "AdapterRegistered"), topic0("Inference", "InferenceRecorded"),
            topic0("Rewards", "RewardPending"), topic0("Inference", "ReceiptSettled"),
            topic0("Rewards", "RewardAccrued"), topic0("Rewards", "RewardClaimed")} <= names


def test_whole_life_is_quick_enough(life: Life) -> None:
    """Guard on the share of the suite: one more receipt round-trip stays well under a second."""
    node, w = life.node, life.world
    started = time.monotonic()
    req = make_request(USER, w.adapter1, max_fee=FEE, nonce=2,
                       deadline=int(node.head()["timestamp"], 16) + 3600)
    signed = sign_receipt(req, [w.accepted[0]], [10_000], FEE // 3)
    _, mined = node.do(VALIDATOR, "Inference", "submitReceipt", *signed.abi_args())
    assert mined.status == 1 and time.monotonic() - started < 5
