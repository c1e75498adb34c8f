"""The AI world the integration tests start from, built over JSON-RPC through the ABI path:
a datanet with two curators (quorum 2), five contributions (three accepted into version 1, one
rejected with a reason code, one accepted after the version so outside every lineage), a base
model, a chain of two adapters, a staked validator and a user deposit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak

from ai_precompiles import merkle

from .client import (
    ADDR,
    AUTHOR1,
    AUTHOR2,
    BASE_AUTHOR,
    CONTRIB_A,
    CONTRIB_B,
    CUR1,
    CUR2,
    ETHER,
    OWNER,
    USER,
    VALIDATOR,
    AINode,
    Mined,
)

MAX_SIZE = 4096
REJECT_REASON = 7


@dataclass
class World:
    """Ids and transactions of the built world (mutable: tests extend it as they go)."""

    datanet: int = 0
    accepted: list[int] = field(default_factory=list)
    """Contribution ids accepted into version 1, in acceptance order."""
    rejected: int = 0
    late: int = 0
    """Accepted after version 1: in no adapter's lineage."""
    blobs: dict[int, bytes] = field(default_factory=dict)
    """Contribution id -> the bytes uploaded for it."""
    base: int = 0
    adapter1: int = 0
    adapter2: int = 0
    txs: dict[str, Mined] = field(default_factory=dict)
    """Named transactions of the build (e.g. ``createDatanet``, ``curate-reject``)."""


def blob_bytes(i: int) -> bytes:
    return (f"contribution {i}: " + "q&a " * (20 + i)).encode()


def contribute(node: AINode, w: World, who: int, data: bytes, meta: str) -> int:
    node.put_blob(data)
    cid, mined = node.contribute(who, w.datanet, keccak(data), len(data), "CC-BY-4.0", keccak(text=meta))
    w.blobs[cid] = data
    w.txs[f"contribute-{cid}"] = mined
    return int(cid)


def version_root(node: AINode, datanet: int, version: int) -> bytes:
    """The version's Merkle root recomputed here from getContribution reads (eth_call)."""
    ver = node.call(OWNER, "Datanets", "getVersion", datanet, version)
    leaves = []
    for i in range(ver[3]):
        cid = node.call(OWNER, "Datanets", "acceptedContributionAt", datanet, i)
        c = node.call(OWNER, "Datanets", "getContribution", cid)
        leaves.append(merkle.leaf_hash(c[1], c[0], bytes.fromhex(c[2][2:]), c[5], c[6], c[8]))
    return merkle.merkle_root(leaves)


def adapter_spec(parent: int, datanets: list[int], versions: list[int], root: bytes, tag: str,
                 validator: int = VALIDATOR) -> tuple[Any, ...]:
    return (parent, datanets, versions, root, keccak(text=f"hp {tag}"), keccak(text=f"weights {tag}"),
            keccak(text=f"index {tag}"), keccak(text=f"manifest {tag}"), ADDR[validator], "apache-2.0")


def build_world(node: AINode, stake: int = 2 * ETHER, deposit: int = ETHER) -> World:
    w = World()
    w.datanet, w.txs["createDatanet"] = node.do(
        OWNER, "Datanets", "createDatanet", "med-qa", "medical", "ipfs://med-qa", "CC-BY-4.0",
        [ADDR[CUR1], ADDR[CUR2]], 2, MAX_SIZE)
    ids = [contribute(node, w, who, blob_bytes(i), f"meta {i}")
           for i, who in enumerate((CONTRIB_A, CONTRIB_B, CONTRIB_A, CONTRIB_B))]
    for cid in ids[:3]:
        node.do(CUR1, "Datanets", "curate", cid, True, 0)
        _, w.txs[f"accept-{cid}"] = node.do(CUR2, "Datanets", "curate", cid, True, 0)
        w.accepted.append(cid)
    w.rejected = ids[3]
    _, w.txs["curate-reject"] = node.do(CUR1, "Datanets", "curate", w.rejected, False, REJECT_REASON)
    _, w.txs["publishVersion"] = node.do(OWNER, "Datanets", "publishVersion", w.datanet)
    w.late = contribute(node, w, CONTRIB_A, blob_bytes(9), "meta late")
    node.do(CUR1, "Datanets", "curate", w.late, True, 0)
    node.do(CUR2, "Datanets", "curate", w.late, True, 0)
    w.base, w.txs["registerBaseModel"] = node.do(
        BASE_AUTHOR, "ModelRegistry", "registerBaseModel", keccak(text="base weights"),
        keccak(text="base config"), keccak(text="base tokenizer"), "apache-2.0")
    root = version_root(node, w.datanet, 1)
    w.adapter1, w.txs["adapter1"] = node.do(
        AUTHOR1, "ModelRegistry", "registerAdapter", adapter_spec(w.base, [w.datanet], [1], root, "a1"))
    w.adapter2, w.txs["adapter2"] = node.do(
        AUTHOR2, "ModelRegistry", "registerAdapter", adapter_spec(w.adapter1, [], [], b"\x00" * 32, "a2"))
    node.do(VALIDATOR, "Staking", "stake", value=stake)
    node.do(USER, "Inference", "deposit", value=deposit)
    return w
