"""Authorship bound to the author (issue 19, attacks 7 and 8), against a real `ailedger dev` whose
pool holds transactions between blocks (automine off, blocks by ``evm_mine``), as a public node's
pool does between block times:

- 7: a pending ``contribute()`` read from ``txpool_content`` and sent again from another account
  with a higher tip, verbatim or with the copier's own (just made) commitment: the copier owns
  nothing, the honest contributor owns its bytes.
- 8: the adapter's author retires it in front of a served request's receipt: the receipt is
  recorded and the validator paid; only later requests are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from ai_precompiles.addresses import BY_NAME
from ai_precompiles.datanets import contribution_commitment
from tests.integration.ai.client import (
    ADDR,
    AUTHOR2,
    CONTRIB_A,
    GWEI,
    OUTSIDER,
    USER,
    VALIDATOR,
    AINode,
    make_request,
    sign_receipt,
)
from tests.integration.ai.world import World, build_world
from tests.support.procs import start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai_authorship")]
DATANETS = to_checksum_address(BY_NAME["Datanets"])
COPIER = OUTSIDER
FEE = 10**15


@dataclass
class Setup:
    node: AINode
    world: World


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    proc = start_ailedger([], tmp_path_factory.mktemp("ai_authorship"))
    try:
        node = AINode(proc)
        world = build_world(node)
        node.rpc("evm_setAutomine", False)  # from here on the pool holds what is sent
        yield Setup(node, world)
    finally:
        proc.kill()


def send(node: AINode, who: int, to: str, data: str, tip: int) -> str:
    """eth_sendTransaction into the pool (not mined yet); its hash."""
    return str(node.rpc("eth_sendTransaction", {"from": ADDR[who], "to": to, "data": data, "gas": hex(1_000_000),
                                                "maxPriorityFeePerGas": hex(tip), "maxFeePerGas": hex(50 * GWEI)}))


def mine(node: AINode) -> dict[str, Any]:
    node.rpc("evm_mine")
    return dict(node.rpc("eth_getBlockByNumber", "latest", False))


def status(node: AINode, tx_hash: str) -> int:
    return int(node.rpc("eth_getTransactionReceipt", tx_hash)["status"], 16)


def pending_from(node: AINode, who: int) -> list[dict[str, Any]]:
    content = node.rpc("txpool_content")["pending"]
    mine_ = next((txs for sender, txs in content.items() if sender.lower() == ADDR[who].lower()), {})
    return list(mine_.values())


def contributions(node: AINode, datanet: int) -> list[dict[str, Any]]:
    return list(node.rpc("ai_listContributions", datanet, {}))


def contribution_by_hash(node: AINode, datanet: int, content_hash: bytes) -> dict[str, Any] | None:
    return next((c for c in contributions(node, datanet) if c["contentHash"] == "0x" + content_hash.hex()), None)


def test_a_pending_contribution_copied_from_the_pool_gives_the_copier_nothing(setup: Setup) -> None:
    node, w = setup.node, setup.world
    data = b"The heron of Lake Vell sleeps at noon and hunts at dusk."
    node.put_blob(data)
    h, meta = keccak(data), keccak(text="heron meta")
    # The honest contributor commits (a salted hash: nothing to copy), then contributes.
    salt = keccak(text="honest salt")
    commitment = contribution_commitment(bytes.fromhex(ADDR[CONTRIB_A][2:]), w.datanet, h, len(data), "CC-BY-4.0",
                                         meta, salt)
    committed = send(node, CONTRIB_A, DATANETS, node.calldata("Datanets", "commitContribution", commitment), GWEI)
    mine(node)
    assert status(node, committed) == 1
    honest = send(node, CONTRIB_A, DATANETS,
                  node.calldata("Datanets", "contribute", w.datanet, h, len(data), "CC-BY-4.0", meta, salt), GWEI)
    # The copier reads it from the pool ...
    (seen,) = pending_from(node, CONTRIB_A)
    assert seen["hash"] == honest
    args = abi_decode(["uint256", "bytes32", "uint256", "string", "bytes32", "bytes32"], bytes.fromhex(seen["input"][10:]))
    # ... sends it verbatim from its own account with a higher tip, and also the same
    # contribution under its own name, its commitment and contribution in front of the honest one.
    verbatim = send(node, COPIER, DATANETS, seen["input"], 5 * GWEI)
    own_salt = keccak(text="copier salt")
    own_commit = send(node, COPIER, DATANETS, node.calldata("Datanets", "commitContribution", contribution_commitment(
        bytes.fromhex(ADDR[COPIER][2:]), *args[:5], own_salt)), 5 * GWEI)
    own = send(node, COPIER, DATANETS, node.calldata("Datanets", "contribute", *args[:5], own_salt), 5 * GWEI)
    block = mine(node)
    order = block["transactions"]
    assert order.index(verbatim) < order.index(honest) and order.index(own) < order.index(honest)
    assert (status(node, verbatim), status(node, own_commit), status(node, own), status(node, honest)) == (0, 1, 0, 1)
    c = contribution_by_hash(node, w.datanet, h)
    assert c is not None and c["contributor"].lower() == ADDR[CONTRIB_A].lower()
    # A block later its own commitment is mature, but the bytes are taken: by their author.
    again = send(node, COPIER, DATANETS, node.calldata("Datanets", "contribute", *args[:5], own_salt), 5 * GWEI)
    mine(node)
    assert status(node, again) == 0
    with pytest.raises(Exception, match="content already contributed"):
        node.call(COPIER, "Datanets", "contribute", *args[:5], own_salt)
    assert [x for x in contributions(node, w.datanet) if x["contributor"].lower() == ADDR[COPIER].lower()] == []


def test_retiring_in_front_of_a_served_receipt_voids_nothing(setup: Setup) -> None:
    node, w = setup.node, setup.world
    deadline = int(node.head()["timestamp"], 16) + 3600
    served = sign_receipt(make_request(USER, w.adapter2, FEE, nonce=801, deadline=deadline), w.accepted[:1],
                          [10_000], FEE)
    later = sign_receipt(make_request(USER, w.adapter2, FEE, nonce=802, deadline=deadline + 7200), w.accepted[:1],
                         [10_000], FEE)
    inference = to_checksum_address(BY_NAME["Inference"])
    pending_before = node.call(VALIDATOR, "Rewards", "pending", ADDR[VALIDATOR])
    receipt_tx = send(node, VALIDATOR, inference, node.calldata("Inference", "submitReceipt", *served.abi_args()), GWEI)
    retire = send(node, AUTHOR2, to_checksum_address(BY_NAME["ModelRegistry"]),
                  node.calldata("ModelRegistry", "retireAdapter", w.adapter2), 10 * GWEI)
    block = mine(node)
    assert block["transactions"].index(retire) < block["transactions"].index(receipt_tx)
    assert (status(node, retire), status(node, receipt_tx)) == (1, 1)
    assert node.call(VALIDATOR, "Rewards", "pending", ADDR[VALIDATOR]) > pending_before
    model = node.rpc("ai_getModel", w.adapter2)
    assert model["retired"] and model["receiptsUntil"] == int(block["timestamp"], 16) + 600
    # Past registry.retire_delay, a receipt is refused: the node no longer serves it either.
    node.rpc("evm_increaseTime", hex(600))
    mine(node)
    late = send(node, VALIDATOR, inference, node.calldata("Inference", "submitReceipt", *later.abi_args()), GWEI)
    mine(node)
    assert status(node, late) == 0
    with pytest.raises(Exception, match=f"adapter {w.adapter2} is retired"):
        node.call(VALIDATOR, "Inference", "submitReceipt", *later.abi_args())
