"""Double-sign evidence against a real ``ailedger dev`` over JSON-RPC (issue 11: evidence lands on
chain and slashes).

A dev account stakes and enters the validator set at the next epoch; the test signs two
conflicting precommits with that account's own key (``consensus.messages.Vote``), the node's
evidence-pool helper wraps them in a signed ``Staking.submitEvidence`` transaction, and
``eth_sendRawTransaction`` lands it: a ``Slashed`` log, the stake lowered, the treasury credited,
and the offender gone from the next epoch's ``ai_getValidatorSet``. Forged evidence, a replay,
evidence from an unstaked key, and the DELEGATECALL / STATICCALL ways in are each refused with a
clear revert reason, and change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract

import ai_precompiles
from ai_precompiles.addresses import BY_NAME, DEFAULT_TREASURY
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import Vote, VoteType
from node.bft.evidence import submit_evidence_calldata, submit_evidence_transaction
from tests.integration.ai.client import ADDR, CHAIN_ID, ETHER, KEY, AINode, RPCFailure
from tests.support.procs import start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slashing")]

OFFENDER, HONEST, SUBMITTER, UNSTAKED, ATTACKER = 15, 16, 17, 18, 19
STAKE = 3 * ETHER
STAKING = to_checksum_address(BY_NAME["Staking"])
BUILD = Path(__file__).resolve().parents[1] / "ai" / "build"


@dataclass
class Chain:
    node: AINode
    epoch: int
    """The epoch the validators were in when the evidence was made."""
    height: int
    """Height of the double sign."""


def mine_to_next_epoch(node: AINode) -> int:
    epoch_length = int(node.rpc("ai_getParams")["staking.epoch_length"], 16)
    head = int(node.rpc("eth_blockNumber"), 16)
    node.rpc("anvil_mine", hex(epoch_length - head % epoch_length), "0x0")
    return int(node.call(0, "Staking", "currentEpoch"))


def double_sign(who: int, height: int, signer: int | None = None, round_: int = 0,
                chain_id: int = CHAIN_ID) -> DuplicateVoteEvidence:
    """Two precommits for different blocks at ``height``, signed with ``signer``'s dev key (the
    offender's own by default)."""
    key = KEY[who if signer is None else signer]
    votes = [Vote(VoteType.PRECOMMIT, height, round_, keccak(text=f"fork {side} {height}"),
                  bytes.fromhex(ADDR[who][2:])).signed(chain_id, key) for side in ("a", "b")]
    return DuplicateVoteEvidence.of(*votes)


def validator_set(node: AINode, block: str = "latest") -> dict[str, int]:
    return {v["address"].lower(): int(v["power"], 16) for v in node.rpc("ai_getValidatorSet", block)}


def staking_state(node: AINode, epoch: int) -> str:
    reads: list[Any] = [node.balance(STAKING), node.balance(to_checksum_address(BY_NAME["Rewards"])),
                        node.call(0, "Rewards", "totalClaimable"),
                        node.call(0, "Staking", "getValidatorSet", epoch + 1), node.rpc("ai_getValidatorSet", "latest")]
    for who in (OFFENDER, HONEST, UNSTAKED):
        reads += [node.call(0, "Staking", "stakeOf", ADDR[who]), node.call(0, "Staking", "unbondingOf", ADDR[who]),
                  node.call(0, "Staking", "jailedUntil", ADDR[who])]
    return json.dumps(reads, default=str)


def revert_reason(err: RPCFailure) -> str:
    assert err.code == 3, err
    raw = bytes.fromhex(str(err.data)[2:])
    return str(abi_decode(["string"], raw[4:])[0])


def send_evidence(node: AINode, ev: DuplicateVoteEvidence, who: int = SUBMITTER) -> dict[str, Any]:
    raw = submit_evidence_transaction(ev, KEY[who], nonce=node.nonce(who),
                                      max_fee=int(node.rpc("eth_gasPrice"), 16), chain_id=CHAIN_ID)
    tx_hash = node.rpc("eth_sendRawTransaction", "0x" + raw.hex())
    receipt = node.rpc("eth_getTransactionReceipt", tx_hash)
    assert receipt is not None
    return dict(receipt)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    proc = start_ailedger([], tmp_path_factory.mktemp("slashing"))
    try:
        node = AINode(proc)
        assert int(node.rpc("eth_chainId"), 16) == CHAIN_ID
        for who in (OFFENDER, HONEST):
            node.do(who, "Staking", "stake", value=STAKE)
        epoch = mine_to_next_epoch(node)
        members = validator_set(node)
        assert members[ADDR[OFFENDER].lower()] == STAKE and members[ADDR[HONEST].lower()] == STAKE
        node.rpc("anvil_mine", "0x2", "0x0")
        height = int(node.rpc("eth_blockNumber"), 16) - 1
        yield Chain(node, epoch, height)
    finally:
        proc.kill()


def test_evidence_in_a_transaction_slashes_and_the_offender_leaves_the_next_set(chain: Chain) -> None:
    node, h = chain.node, chain.height
    treasury = node.call(0, "Rewards", "claimable", to_checksum_address(DEFAULT_TREASURY))
    escrow = node.balance(STAKING)
    receipt = send_evidence(node, double_sign(OFFENDER, h))
    assert int(receipt["status"], 16) == 1, receipt

    due = STAKE * 500 // 10_000  # staking.slash_fraction_bp's default: 5 %
    slashed = ai_precompiles.load_abi("Staking").events["Slashed"]
    logs = [lg for lg in receipt["logs"] if int(lg["topics"][0], 16) == slashed.topic0]
    assert len(logs) == 1 and logs[0]["address"].lower() == STAKING.lower()
    assert int(logs[0]["topics"][1], 16) == int(ADDR[OFFENDER], 16)
    assert abi_decode(["uint256", "uint256"], bytes.fromhex(logs[0]["data"][2:])) == (h, due)
    # the same log through the event filter clients use
    found = node.c["Staking"].events.Slashed().get_logs(from_block=int(receipt["blockNumber"], 16))
    assert [(e.args.validator, e.args.height, e.args.amount) for e in found] == [(ADDR[OFFENDER], h, due)]

    assert node.call(0, "Staking", "stakeOf", ADDR[OFFENDER]) == STAKE - due
    assert node.call(0, "Staking", "isPunished", ADDR[OFFENDER], h)
    assert node.call(0, "Staking", "jailedUntil", ADDR[OFFENDER]) == int(receipt["blockNumber"], 16) + 1000
    assert node.balance(STAKING) == escrow - due
    assert node.call(0, "Rewards", "claimable", to_checksum_address(DEFAULT_TREASURY)) == treasury + due
    # this epoch's set is fixed; the next one has no offender
    assert validator_set(node)[ADDR[OFFENDER].lower()] == STAKE
    nxt = mine_to_next_epoch(node)
    assert nxt == chain.epoch + 1
    members = validator_set(node)
    assert ADDR[OFFENDER].lower() not in members and members[ADDR[HONEST].lower()] == STAKE
    vals, _ = node.call(0, "Staking", "getValidatorSet", nxt)
    assert ADDR[OFFENDER] not in vals and ADDR[HONEST] in vals


@pytest.mark.parametrize("case", ["forged", "replay", "unstaked", "future", "other chain"])
def test_bad_evidence_is_refused_with_a_reason_and_changes_nothing(chain: Chain, case: str) -> None:
    node = chain.node
    head = int(node.rpc("eth_blockNumber"), 16)
    h = chain.height
    ev, reason = {
        "forged": (double_sign(HONEST, h, signer=ATTACKER), "a vote's signature is not the validator's on this chain"),
        "replay": (double_sign(OFFENDER, h, round_=2), f"was already punished for height {h}"),
        "unstaked": (double_sign(UNSTAKED, h), "is not in the validator set of height"),
        "future": (double_sign(HONEST, head + 5), "is not below the current block"),
        "other chain": (double_sign(HONEST, h, chain_id=CHAIN_ID + 1),
                        "a vote's signature is not the validator's on this chain"),
    }[case]
    if case == "replay" and not node.call(0, "Staking", "isPunished", ADDR[OFFENDER], h):
        assert int(send_evidence(node, double_sign(OFFENDER, h))["status"], 16) == 1  # the first time
    before = staking_state(node, chain.epoch)
    with pytest.raises(RPCFailure) as err:
        node.call_raw(SUBMITTER, STAKING, "0x" + submit_evidence_calldata(ev).hex())
    assert reason in revert_reason(err.value)
    assert "execution reverted" in err.value.message
    receipt = send_evidence(node, ev)  # sent anyway (fixed gas limit): mined, failed, no log
    assert int(receipt["status"], 16) == 0 and receipt["logs"] == []
    assert staking_state(node, chain.epoch) == before


def _deploy_probe(node: AINode) -> Contract:
    art = json.loads((BUILD / "PrecompileProbe.json").read_text())
    factory = node.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    mined = node.mined(factory.constructor().transact({"from": ADDR[ATTACKER]}).to_0x_hex())
    assert mined.status == 1
    return node.w3.eth.contract(address=to_checksum_address(mined.receipt["contractAddress"]), abi=art["abi"])


def test_delegatecall_and_staticcall_cannot_submit_evidence(chain: Chain) -> None:
    node = chain.node
    probe = _deploy_probe(node)
    fresh = double_sign(HONEST, int(node.rpc("eth_blockNumber"), 16) - 1)
    data = submit_evidence_calldata(fresh)
    before = staking_state(node, chain.epoch)
    # DELEGATECALL: refused before anything runs
    fn = probe.functions.claimAirdrop(STAKING, data)
    with pytest.raises(RPCFailure) as err:
        node.rpc("eth_call", {"from": ADDR[ATTACKER], "to": probe.address,
                              "data": fn._encode_transaction_data()}, "latest")
    assert "only CALL and STATICCALL may reach a precompile" in revert_reason(err.value)
    mined = node.mined(fn.transact({"from": ADDR[ATTACKER], "gas": 3_000_000}).to_0x_hex())
    assert mined.status == 0 and mined.logs == []
    # STATICCALL: a write is refused
    ok, ret = probe.functions.staticProbe(STAKING, data).call({"from": ADDR[ATTACKER]})
    assert not ok and abi_decode(["string"], ret[4:])[0] == "state change in a static call"
    assert staking_state(node, chain.epoch) == before
    # the same evidence through a plain CALL works: the refusals were about the frame
    receipt = send_evidence(node, fresh)
    assert int(receipt["status"], 16) == 1
    assert node.call(0, "Staking", "stakeOf", ADDR[HONEST]) == STAKE - STAKE * 500 // 10_000
