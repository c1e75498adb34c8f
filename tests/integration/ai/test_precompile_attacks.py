"""Issue 8's attacks on the AI precompiles, made against a real ``ailedger dev`` over JSON-RPC
by a stranger's Solidity contracts (tests/integration/ai/contracts/PrecompileProbe.sol, compiled
with solc-js, output committed): each fails, nothing changes, and the node keeps serving.

The rule they check (ai_precompiles/dispatch.py): only CALL and STATICCALL reach a precompile.
DELEGATECALL and CALLCODE are refused before anything runs, so no ``msg.value`` that never moved
is credited (minting) and no contract can act as the user who called it (impersonation).
STATICCALL runs views and refuses writes. An EIP-7702 delegation to a precompile runs nothing.
No operation does work that grows with what others can add: ``propose`` and the validator set
keep their gas as stakers pile up; ``registerAdapter`` and receipts as children pile up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract

from ai_precompiles.addresses import BY_NAME
from tests.integration.ai.client import (
    ADDR,
    AUTHOR2,
    CHAIN_ID,
    CONTRIB_B,
    CUR1,
    ETHER,
    GWEI,
    KEY,
    OWNER,
    USER,
    VALIDATOR,
    AINode,
    Mined,
    RPCFailure,
    make_request,
    sign_receipt,
)
from tests.integration.ai.world import World, adapter_spec, build_world
from tests.support.procs import start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai-rpc")]

BUILD = Path(__file__).resolve().parent / "build"
ATTACKER, VOTER, DELEGATOR = 13, 12, 14
WRONG_KIND = "only CALL and STATICCALL may reach a precompile"
FEE = 10**15


def addr(module: str) -> str:
    return to_checksum_address(BY_NAME[module])


@dataclass
class Setup:
    node: AINode
    world: World
    probe: Contract
    swarm: Contract
    pending: int
    """A contribution still waiting for curators (CUR1 has not voted)."""
    proposal: int
    deadline: int
    next_nonce: int = 10


def deploy(node: AINode, name: str, who: int = ATTACKER) -> Contract:
    art = json.loads((BUILD / f"{name}.json").read_text())
    factory = node.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    mined = node.mined(factory.constructor().transact({"from": ADDR[who]}).to_0x_hex())
    assert mined.status == 1
    return node.w3.eth.contract(address=to_checksum_address(mined.receipt["contractAddress"]),
                                abi=art["abi"])


def mine_to_next_epoch(node: AINode) -> None:
    epoch_length = int(node.rpc("ai_getParams")["staking.epoch_length"], 16)
    head = int(node.rpc("eth_blockNumber"), 16)
    node.rpc("anvil_mine", hex(epoch_length - head % epoch_length), "0x0")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    proc = start_ailedger([], tmp_path_factory.mktemp("ai_attacks"))
    try:
        node = AINode(proc)
        w = build_world(node)
        data = b"pending contribution for the impersonation test"
        node.put_blob(data)
        pending, _ = node.contribute(CONTRIB_B, w.datanet, keccak(data), len(data), "CC-BY-4.0",
                                     keccak(text="pending"))
        node.do(VOTER, "Staking", "stake", value=ETHER)
        mine_to_next_epoch(node)
        proposal, _ = node.do(VOTER, "Governance", "propose", "reward.validator_bp", 2500)
        deadline = int(node.head()["timestamp"], 16) + 10 * 3600
        probe = deploy(node, "PrecompileProbe")
        swarm = deploy(node, "StakerSwarm")
        yield Setup(node, w, probe, swarm, pending, proposal, deadline)
    finally:
        proc.kill()


def ai_state(s: Setup, extra: tuple[str, ...] = ()) -> str:
    """Digest of every AI read an attack could have touched, and the escrows' balances."""
    node, w = s.node, s.world
    who = [*(ADDR[i] for i in (OWNER, CUR1, USER, VALIDATOR, AUTHOR2, VOTER, ATTACKER)), s.probe.address, *extra]
    reads: list[Any] = [node.rpc("ai_getDatanet", w.datanet), node.rpc("ai_getParams"),
                        node.rpc("ai_getContribution", s.pending)]
    n_models = node.call(OWNER, "ModelRegistry", "modelCount")
    reads += [node.rpc("ai_getModel", m) for m in range(1, n_models + 1)]
    reads += [node.call(OWNER, "Inference", "receiptCount"), node.call(OWNER, "Rewards", "totalClaimable"),
              list(node.call(OWNER, "Governance", "getProposal", s.proposal)),
              node.call(OWNER, "Governance", "proposalCount")]
    for a in who:
        reads += [node.call(OWNER, "Inference", "depositOf", a), node.call(OWNER, "Staking", "stakeOf", a),
                  list(node.call(OWNER, "Staking", "unbondingOf", a)),
                  node.call(OWNER, "Governance", "hasVotedOn", s.proposal, a),
                  node.call(OWNER, "Datanets", "hasVoted", s.pending, a), node.rpc("ai_getRewards", a)]
    reads += [node.rpc("eth_getBalance", addr(m), "latest") for m in ("Inference", "Rewards", "Staking")]
    return hashlib.sha256(json.dumps(reads, sort_keys=True, default=str).encode()).hexdigest()


def revert_reason(err: RPCFailure) -> str:
    assert err.code == 3, err
    raw = bytes.fromhex(str(err.data)[2:])
    assert raw[:4] == bytes.fromhex("08c379a0"), raw
    return str(abi_decode(["string"], raw[4:])[0])


def exec_gas(node: AINode, mined: Mined) -> int:
    """Gas a mined transaction used beyond its intrinsic gas (which varies with calldata bytes)."""
    data = bytes.fromhex(node.rpc("eth_getTransactionByHash", mined.tx_hash)["input"][2:])
    zeros = data.count(0)
    return mined.gas_used - (21_000 + 4 * zeros + 16 * (len(data) - zeros))


def attack(s: Setup, who: int, fn: Any, value: int = 0, reason: str = WRONG_KIND,
           extra: tuple[str, ...] = ()) -> Mined:
    """Simulate ``fn`` (must revert with ``reason``), send it anyway with a fixed gas limit (must
    be mined with status 0), and check that no AI state changed and the node still mines."""
    node = s.node
    before = ai_state(s, extra)
    with pytest.raises(RPCFailure) as err:
        node.rpc("eth_call", {"from": ADDR[who], "to": fn.address, "data": fn._encode_transaction_data(),
                              "value": hex(value)}, "latest")
    assert reason in revert_reason(err.value)
    head = int(node.head()["number"], 16)
    tx = fn.transact({"from": ADDR[who], "value": value, "gas": 3_000_000})
    mined = node.mined(tx.to_0x_hex())
    assert mined.status == 0 and mined.logs == [] and mined.block_number == head + 1
    assert ai_state(s, extra) == before
    return mined


# -- 1. value minted through DELEGATECALL / CALLCODE -------------------------------------------


@pytest.mark.parametrize("module, credit, payout", [
    ("Inference", ("deposit", ()), ("withdraw", (5 * ETHER,))),
    ("Staking", ("stake", ()), ("unstake", (5 * ETHER,))),
])
def test_delegatecall_mints_nothing(setup: Setup, module: str, credit: tuple[str, tuple[Any, ...]],
                                    payout: tuple[str, tuple[Any, ...]]) -> None:
    node = setup.node
    escrow_before = node.balance(addr(module))
    data = bytes.fromhex(node.calldata(module, credit[0], *credit[1])[2:])
    attack(setup, ATTACKER, setup.probe.functions.delegateMintThenCall(addr(module), data, 5, b""),
           value=ETHER)
    # the second half of the attack: the sender takes the five credits out of the escrow
    with pytest.raises(RPCFailure):
        node.call_raw(ATTACKER, addr(module), node.calldata(module, *[payout[0], *payout[1]]))
    assert node.balance(addr(module)) == escrow_before


@pytest.mark.parametrize("module, credit, payout", [
    ("Inference", "deposit", ("withdraw", 5 * ETHER)),
    ("Staking", "stake", ("unstake", 5 * ETHER)),
])
def test_callcode_mints_nothing(setup: Setup, module: str, credit: str, payout: tuple[str, int]) -> None:
    node = setup.node
    data = bytes.fromhex(node.calldata(module, credit)[2:])
    out = bytes.fromhex(node.calldata(module, payout[0], payout[1])[2:])
    attack(setup, ATTACKER, setup.probe.functions.callcodeMintThenCall(addr(module), data, 5, ETHER, out),
           value=ETHER)


@pytest.mark.parametrize("fn, args, value", [
    ("challenge", (1,), 10**17), ("submitVerdict", (1, True), 0), ("resolve", (1,), 0), ("settle", ([1],), 0),
], ids=["challenge", "submitVerdict", "resolve", "settle"])
def test_the_challenge_game_is_reached_by_call_only(setup: Setup, fn: str, args: tuple[Any, ...],
                                                    value: int) -> None:
    """Issue 18's challenge game under every call kind: DELEGATECALL (a bond credited for wei that
    never moved, a verdict or challenge in the caller's name) and CALLCODE are refused before any
    work, STATICCALL refuses the write; nothing changes."""
    node, probe = setup.node, setup.probe
    data = bytes.fromhex(node.calldata("Inference", fn, *args)[2:])
    attack(setup, ATTACKER, probe.functions.delegateMintThenCall(addr("Inference"), data, 3, b""), value=value)
    attack(setup, ATTACKER, probe.functions.callcodeMintThenCall(addr("Inference"), data, 1, value, b""),
           value=value)
    attack(setup, VALIDATOR, probe.functions.claimAirdrop(addr("Inference"), data))
    ok, ret = probe.functions.staticProbe(addr("Inference"), data).call({"from": ADDR[ATTACKER]})
    assert not ok and abi_decode(["string"], ret[4:])[0] == "state change in a static call"


# -- 2. impersonation through DELEGATECALL -------------------------------------------------------


def _victims(s: Setup) -> list[tuple[int, str, str, tuple[Any, ...]]]:
    w = s.world
    return [
        (VOTER, "Governance", "vote", (s.proposal, True)),
        (VALIDATOR, "Staking", "unstake", (ETHER,)),
        (AUTHOR2, "ModelRegistry", "retireAdapter", (w.adapter2,)),
        (CUR1, "Datanets", "curate", (s.pending, True, 0)),
        (USER, "Inference", "requestWithdrawal", (ETHER // 2,)),
    ]


@pytest.mark.parametrize("case", range(5), ids=["vote", "unstake", "retireAdapter", "curate", "requestWithdrawal"])
def test_delegatecall_cannot_act_as_the_caller(setup: Setup, case: int) -> None:
    node = setup.node
    victim, module, fn, args = _victims(setup)[case]
    # what the victim may do itself is allowed: the attack would succeed if the frame passed
    node.call(victim, module, fn, *args)
    data = bytes.fromhex(node.calldata(module, fn, *args)[2:])
    attack(setup, victim, setup.probe.functions.claimAirdrop(addr(module), data))


# -- STATICCALL: views yes, writes no ---------------------------------------------------------


def test_staticcall_runs_views_and_refuses_writes(setup: Setup) -> None:
    node, probe = setup.node, setup.probe
    view = bytes.fromhex(node.calldata("Inference", "depositOf", ADDR[USER])[2:])
    ok, ret = probe.functions.staticProbe(addr("Inference"), view).call({"from": ADDR[ATTACKER]})
    assert ok and abi_decode(["uint256"], ret)[0] == node.call(OWNER, "Inference", "depositOf", ADDR[USER]) > 0
    for module, fn, args in (("Staking", "unstake", (1,)), ("Rewards", "claim", ()),
                             ("Governance", "vote", (setup.proposal, True))):
        write = bytes.fromhex(node.calldata(module, fn, *args)[2:])
        ok, ret = probe.functions.staticProbe(addr(module), write).call({"from": ADDR[VOTER]})
        assert not ok
        assert abi_decode(["string"], ret[4:])[0] == "state change in a static call"


def test_call_from_a_contract_credits_the_contract(setup: Setup) -> None:
    """The legitimate way in still works: a CALL with value is credited to the calling contract."""
    node, probe = setup.node, setup.probe
    escrow = node.balance(addr("Inference"))
    data = bytes.fromhex(node.calldata("Inference", "deposit")[2:])
    mined = node.mined(probe.functions.callWith(addr("Inference"), data).transact(
        {"from": ADDR[ATTACKER], "value": 3 * GWEI}).to_0x_hex())
    assert mined.status == 1
    assert node.call(OWNER, "Inference", "depositOf", probe.address) == 3 * GWEI
    assert node.call(OWNER, "Inference", "depositOf", ADDR[ATTACKER]) == 0
    assert node.balance(addr("Inference")) == escrow + 3 * GWEI


def test_eip7702_delegation_to_a_precompile_runs_nothing(setup: Setup) -> None:
    """An EOA that delegates its code to the Inference precompile (EIP-7702): the precompile
    never runs in its name. A transaction to it with deposit() and value halts on the
    precompile account's 0xFE stub; a contract's CALL to it is a plain transfer (py-evm treats
    a delegation to a precompile as empty code). Nobody is credited, the escrow is unchanged."""
    node = setup.node
    tx_nonce = int(node.rpc("eth_getTransactionCount", ADDR[DELEGATOR], "latest"), 16)
    auth = Account.sign_authorization(
        {"chainId": CHAIN_ID, "address": addr("Inference"), "nonce": tx_nonce + 1}, KEY[DELEGATOR])
    tx = {"type": 4, "chainId": CHAIN_ID, "nonce": tx_nonce, "to": ADDR[OWNER], "value": 0,
          "gas": 200_000, "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI, "data": b"",
          "authorizationList": [auth]}
    raw = Account.sign_transaction(tx, KEY[DELEGATOR]).raw_transaction
    set_code = node.mined(node.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex()))
    assert set_code.status == 1
    code = node.rpc("eth_getCode", ADDR[DELEGATOR], "latest")
    assert code == "0xef0100" + bytes(BY_NAME["Inference"]).hex()
    before = ai_state(setup, (ADDR[DELEGATOR],))
    escrow, held = node.balance(addr("Inference")), node.balance(DELEGATOR)
    deposit = node.calldata("Inference", "deposit")
    direct = node.send_raw_call(ATTACKER, ADDR[DELEGATOR], deposit, value=ETHER, gas=200_000)
    assert direct.status == 0 and direct.logs == []
    assert node.balance(DELEGATOR) == held
    via = node.mined(setup.probe.functions.callWith(ADDR[DELEGATOR], bytes.fromhex(deposit[2:])).transact(
        {"from": ADDR[ATTACKER], "value": ETHER, "gas": 300_000}).to_0x_hex())
    assert via.status == 1 and via.logs == []
    assert node.balance(DELEGATOR) == held + ETHER and node.balance(addr("Inference")) == escrow
    assert ai_state(setup, (ADDR[DELEGATOR],)) == before


# -- 4. work that grows with what others add -------------------------------------------------


def test_one_wei_stakes_are_refused(setup: Setup) -> None:
    node = setup.node
    min_holding = int(node.rpc("ai_getParams")["staking.min_holding"], 16)
    with pytest.raises(RPCFailure) as err:
        node.call_raw(ATTACKER, addr("Staking"), node.calldata("Staking", "stake"), value=1)
    assert "staking.min_holding" in revert_reason(err.value)
    with pytest.raises(RPCFailure) as err:  # nor can an unstake leave dust behind
        node.call_raw(VOTER, addr("Staking"), node.calldata("Staking", "unstake", ETHER - min_holding + 1))
    assert "staking.min_holding" in revert_reason(err.value)


def test_propose_and_validator_set_gas_stay_flat_as_stakers_pile_up(setup: Setup) -> None:
    """Issue 8 locked governance with ~3,600 one-wei stakes (propose walked every staker at
    ~8,400 gas each). Now 120 more stakers, at the smallest stake allowed, change nothing."""
    node, swarm = setup.node, setup.swarm
    min_holding = int(node.rpc("ai_getParams")["staking.min_holding"], 16)
    epoch = node.call(OWNER, "Staking", "currentEpoch")

    def measure() -> tuple[int, int]:
        _, mined = node.do(VOTER, "Governance", "propose", "reward.validator_bp", 2500)
        view = node.rpc("eth_estimateGas", {"from": ADDR[OWNER], "to": addr("Staking"),
                                            "data": node.calldata("Staking", "getValidatorSet", epoch + 1)})
        return mined.gas_used, int(view, 16)

    propose_before, set_before = measure()
    for _ in range(3):
        mined = node.mined(swarm.functions.spawn(addr("Staking"), 40, min_holding).transact(
            {"from": ADDR[ATTACKER], "value": 40 * min_holding, "gas": 25_000_000}).to_0x_hex())
        assert mined.status == 1
    assert len([lg for lg in mined.logs if lg["address"].lower() == addr("Staking").lower()]) == 40
    propose_after, set_after = measure()
    # the quorum base now counts the new stakes, read from one running total
    pid = node.call(OWNER, "Governance", "proposalCount")
    assert node.call(OWNER, "Governance", "getProposal", pid)[10] == node.call(
        OWNER, "Governance", "getProposal", setup.proposal)[10]  # stakes count from the next epoch
    # a binary search over the total's checkpoints may read one more word (log2 of epochs)
    assert abs(propose_after - propose_before) <= 2 * 2_100, (propose_before, propose_after)
    assert set_after == set_before, (set_before, set_after)


def test_register_adapter_and_receipt_gas_stay_flat_as_children_pile_up(setup: Setup) -> None:
    """Issue 8: registerAdapter and receipts decoded the whole Model record, with its unbounded
    children list (2,100 gas a child). Now 15 more children of the base change nothing."""
    node, w = setup.node, setup.world

    def child(i: int) -> Mined:
        _, mined = node.do(OWNER, "ModelRegistry", "registerAdapter",
                           adapter_spec(w.base, [], [], b"\x00" * 32, f"flat child {i}"))
        return mined

    def receipt() -> Mined:
        req = make_request(USER, w.adapter2, FEE, nonce=setup.next_nonce, deadline=setup.deadline)
        setup.next_nonce += 1
        _, mined = node.do(VALIDATOR, "Inference", "submitReceipt",
                           *sign_receipt(req, w.accepted[:2], [6000, 4000], FEE).abi_args())
        return mined

    child(0)
    receipt()  # first credits of each party: fresh slots
    first, receipt_before = exec_gas(node, child(1)), exec_gas(node, receipt())
    for i in range(2, 17):
        child(i)
    last, receipt_after = exec_gas(node, child(17)), exec_gas(node, receipt())
    assert last == first, (first, last)
    assert receipt_after == receipt_before, (receipt_before, receipt_after)


def test_node_still_serves_after_every_attack(setup: Setup) -> None:
    node = setup.node
    _, mined = node.do(USER, "Inference", "deposit", value=GWEI)
    assert mined.status == 1
    assert node.call(OWNER, "Staking", "stakeOf", ADDR[VALIDATOR]) == 2 * ETHER
