"""Every AI rejection over real JSON-RPC: a clear revert reason and no state change.

For each bad operation, against one `ailedger dev` holding a built world:

- ``eth_call`` and ``eth_sendTransaction`` (which estimates first) answer code 3 with
  ``execution reverted: <reason>`` and the ABI-encoded ``Error(string)`` as ``data``, which
  decodes to the same reason;
- sent anyway with an explicit gas limit, the transaction is mined with status 0, emits no log,
  and every AI read (ai_ namespace and eth_call views) is unchanged;
- a contribution whose bytes the node does not hold is refused at admission (-32000) and
  never mined.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from ai_precompiles.addresses import BY_NAME
from state.native import DataContributionTransaction
from tests.integration.ai.client import (
    ADDR,
    AUTHOR2,
    CHAIN_ID,
    CONTRIB_A,
    CONTRIB_B,
    CUR1,
    ETHER,
    GWEI,
    KEY,
    OUTSIDER,
    OWNER,
    USER,
    VALIDATOR,
    AINode,
    RPCFailure,
    make_request,
    sign_receipt,
)
from tests.integration.ai.world import MAX_SIZE, World, adapter_spec, build_world
from tests.support.procs import start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai-rpc")]

VOTER = 12
FEE = 10**15


@dataclass
class Setup:
    node: AINode
    world: World
    pending: int
    """A contribution still waiting for curators."""
    used_nonce: int
    """A request nonce already spent by a valid receipt."""
    proposal: int
    deadline: int


#: The rules above the commitment's are checked first: these contributions never get that far.
NO_SALT = b"\x00" * 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    proc = start_ailedger([], tmp_path_factory.mktemp("ai_reject"))
    try:
        node = AINode(proc)
        w = build_world(node)
        data = b"pending contribution bytes"
        node.put_blob(data)
        pending, _ = node.contribute(CONTRIB_B, w.datanet, keccak(data), len(data), "CC-BY-4.0",
                                     keccak(text="pending meta"))
        deadline = int(node.head()["timestamp"], 16) + 10 * 3600
        req = make_request(USER, w.adapter2, FEE, nonce=5, deadline=deadline)
        node.do(VALIDATOR, "Inference", "submitReceipt", *sign_receipt(req, w.accepted[:1], [10_000], FEE).abi_args())
        # a governance proposal: stake in epoch 0 counts from epoch 1
        node.do(VOTER, "Staking", "stake", value=ETHER)
        epoch_length = int(node.rpc("ai_getParams")["staking.epoch_length"], 16)
        head = int(node.rpc("eth_blockNumber"), 16)
        node.rpc("anvil_mine", hex(epoch_length - head % epoch_length), "0x0")
        proposal, _ = node.do(VOTER, "Governance", "propose", "reward.validator_bp", 2500)
        yield Setup(node, w, pending, 5, proposal, deadline)
    finally:
        proc.kill()


def ai_state(s: Setup) -> str:
    """A digest of every AI read that a rejected operation could have touched."""
    node, w = s.node, s.world
    reads: list[Any] = [node.rpc("ai_getDatanet", w.datanet),
                        node.rpc("ai_listContributions", w.datanet, {}),
                        node.rpc("ai_getParams")]
    n_models = node.call(OWNER, "ModelRegistry", "modelCount")
    reads += [node.rpc("ai_getModel", m) for m in range(1, n_models + 1)]
    reads += [node.call(OWNER, "Datanets", "contributionCount"), node.call(OWNER, "Datanets", "datanetCount"),
              node.call(OWNER, "Inference", "receiptCount"), node.call(OWNER, "Rewards", "totalClaimable"),
              node.call(OWNER, "Inference", "depositOf", ADDR[USER]),
              [node.call(OWNER, "Inference", "nonceUsed", ADDR[USER], n) for n in range(1, 8)],
              list(node.call(OWNER, "Governance", "getProposal", s.proposal)),
              node.call(OWNER, "Governance", "hasVotedOn", s.proposal, ADDR[VOTER])]
    reads += [node.rpc("ai_getRewards", a) for a in ADDR[:13]]
    reads += [node.rpc("eth_getBalance", to_checksum_address(BY_NAME[m]), "latest")
              for m in ("Inference", "Rewards", "Staking")]
    return hashlib.sha256(json.dumps(reads, sort_keys=True, default=str).encode()).hexdigest()


def expect_rejected(s: Setup, who: int, module: str, fn: str, args: tuple[Any, ...], reason: str) -> None:
    node = s.node
    before = ai_state(s)
    to = to_checksum_address(BY_NAME[module])
    data = node.calldata(module, fn, *args)
    for attempt in (lambda: node.call_raw(who, to, data),
                    lambda: node.send_raw_call(who, to, data)):
        with pytest.raises(RPCFailure) as err:
            attempt()
        assert err.value.code == 3, err.value
        assert err.value.message == f"execution reverted: {reason}", err.value.message
        raw = bytes.fromhex(err.value.data[2:])
        assert raw[:4] == bytes.fromhex("08c379a0") and abi_decode(["string"], raw[4:])[0] == reason
    head = node.head()["number"]
    mined = node.send_raw_call(who, to, data, gas=2_000_000)
    assert mined.status == 0 and mined.logs == [] and mined.block_number == int(head, 16) + 1
    assert ai_state(s) == before, f"{fn} changed AI state although it reverted"


def test_non_curator_cannot_curate(setup: Setup) -> None:
    expect_rejected(setup, CONTRIB_A, "Datanets", "curate", (setup.pending, True, 0),
                    "sender is not a curator of this datanet")


def test_curator_cannot_vote_twice_and_decided_stays_decided(setup: Setup) -> None:
    expect_rejected(setup, CUR1, "Datanets", "curate", (setup.world.rejected, True, 0),
                    "contribution is already decided")


def test_contribution_over_the_size_limit(setup: Setup) -> None:
    big = b"x" * (MAX_SIZE + 1)
    setup.node.put_blob(big)  # the node holds the bytes: the chain's own limit must refuse it
    expect_rejected(setup, CONTRIB_A, "Datanets", "contribute",
                    (setup.world.datanet, keccak(big), len(big), "MIT", keccak(text="m"), NO_SALT),
                    f"contribution size {MAX_SIZE + 1} exceeds the datanet's limit {MAX_SIZE}")


def test_contribution_whose_hash_matches_no_blob_is_refused(setup: Setup) -> None:
    node, w = setup.node, setup.world
    before, head = ai_state(setup), node.rpc("eth_blockNumber")
    nonce = node.nonce(CONTRIB_A)
    missing = keccak(text="bytes nobody uploaded")
    with pytest.raises(RPCFailure) as err:
        node.send(CONTRIB_A, "Datanets", "contribute", w.datanet, missing, 10, "MIT", keccak(text="m"), NO_SALT,
                  gas=1_000_000)  # no estimate: the call would revert (no commitment) before admission
    assert err.value.code == -32000 and err.value.message.startswith("contribution refused: no blob")
    # the bytes exist but the declared size lies
    data = b"honest bytes"
    node.put_blob(data)
    with pytest.raises(RPCFailure) as err:
        node.send(CONTRIB_A, "Datanets", "contribute", w.datanet, keccak(data), len(data) + 1, "MIT",
                  keccak(text="m"), NO_SALT, gas=1_000_000)
    assert err.value.code == -32000 and "does not match the blob" in err.value.message
    # the native type is held to the same rule
    inner = DataContributionTransaction.sign(
        KEY[CONTRIB_A], chain_id=CHAIN_ID, nonce=nonce, max_priority_fee_per_gas=GWEI,
        max_fee_per_gas=20 * GWEI, gas=1_000_000, datanet_id=w.datanet, content_hash=missing,
        size=10, license=b"MIT", metadata_hash=keccak(text="m"), salt=NO_SALT)
    with pytest.raises(RPCFailure) as err:
        node.send_native(inner)
    assert err.value.code == -32000 and "contribution refused" in err.value.message
    # the blob store refuses bytes that do not match the hash they claim
    with pytest.raises(RPCFailure) as err:
        node.rpc("ai_putBlob", "0x" + b"abc".hex(), "0x" + keccak(b"abd").hex())
    assert err.value.code == -32000
    assert node.rpc("eth_blockNumber") == head and node.nonce(CONTRIB_A) == nonce
    assert ai_state(setup) == before


def test_adapter_whose_parent_does_not_exist(setup: Setup) -> None:
    spec = adapter_spec(999, [], [], b"\x00" * 32, "orphan")
    expect_rejected(setup, AUTHOR2, "ModelRegistry", "registerAdapter", (spec,),
                    "parent model 999 does not exist")


def receipt_args(s: Setup, nonce: int, **kw: Any) -> tuple[Any, ...]:
    ids = kw.pop("ids", s.world.accepted[:2])
    weights = kw.pop("weights", [6000, 4000])
    req = make_request(USER, s.world.adapter2, kw.pop("max_fee", FEE), nonce=nonce,
                       deadline=kw.pop("deadline", s.deadline))
    return sign_receipt(req, ids, weights, kw.pop("fee", FEE), **kw).abi_args()


def test_forged_user_signature(setup: Setup) -> None:
    expect_rejected(setup, VALIDATOR, "Inference", "submitReceipt",
                    receipt_args(setup, 6, user_key=KEY[OUTSIDER]),
                    "bad user signature: signer is not request.user")


def test_forged_validator_signature(setup: Setup) -> None:
    expect_rejected(setup, VALIDATOR, "Inference", "submitReceipt",
                    receipt_args(setup, 6, validator_key=KEY[OUTSIDER]),
                    "bad validator signature: signer is not the validator")


def test_replayed_request_nonce(setup: Setup) -> None:
    expect_rejected(setup, VALIDATOR, "Inference", "submitReceipt",
                    receipt_args(setup, setup.used_nonce, output=keccak(text="another output")),
                    "request nonce already used")


def test_expired_deadline(setup: Setup) -> None:
    node = setup.node
    deadline = int(node.head()["timestamp"], 16) + 60
    args = receipt_args(setup, 6, deadline=deadline)
    node.rpc("evm_increaseTime", 120)
    node.rpc("evm_mine")
    expect_rejected(setup, VALIDATOR, "Inference", "submitReceipt", args, "request deadline has passed")


def test_fee_above_the_maximum(setup: Setup) -> None:
    expect_rejected(setup, VALIDATOR, "Inference", "submitReceipt",
                    receipt_args(setup, 6, max_fee=FEE, fee=FEE + 1),
                    f"fee {FEE + 1} exceeds the request's max fee {FEE}")


def test_contribution_outside_the_lineage(setup: Setup) -> None:
    late = setup.world.late
    expect_rejected(setup, VALIDATOR, "Inference", "submitReceipt",
                    receipt_args(setup, 6, ids=[setup.world.accepted[0], late]),
                    f"contribution {late} is not in the adapter's lineage")


def test_weights_must_sum_to_the_whole(setup: Setup) -> None:
    expect_rejected(setup, VALIDATOR, "Inference", "submitReceipt",
                    receipt_args(setup, 6, weights=[5000, 4000]),
                    "attribution weights sum to 9000, not 10000 bp")


def test_vote_after_the_period(setup: Setup) -> None:
    node = setup.node
    # within the period the same vote would pass
    node.call(VOTER, "Governance", "vote", setup.proposal, True)
    end_block = node.call(OWNER, "Governance", "getProposal", setup.proposal)[6]
    head = int(node.rpc("eth_blockNumber"), 16)
    node.rpc("anvil_mine", hex(end_block - head + 1), "0x0")
    expect_rejected(setup, VOTER, "Governance", "vote", (setup.proposal, True), "voting period is over")


def test_valid_receipt_still_goes_through_afterwards(setup: Setup) -> None:
    """The rejections above spent nothing: nonce 6 is still free and the deposit still pays."""
    node = setup.node
    deadline = int(node.head()["timestamp"], 16) + 3600
    req = make_request(USER, setup.world.adapter2, FEE, nonce=6, deadline=deadline)
    _, mined = node.do(VALIDATOR, "Inference", "submitReceipt",
                       *sign_receipt(req, setup.world.accepted[:2], [6000, 4000], FEE).abi_args())
    assert mined.status == 1 and node.call(OWNER, "Inference", "nonceUsed", ADDR[USER], 6)


