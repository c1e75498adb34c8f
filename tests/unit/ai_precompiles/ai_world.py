"""A chain built once per module and driven through the whole life of the AI modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from ai_precompiles import typed_data
from tests.unit.ai_precompiles.ai_harness import CHAIN_ID, ETHER, AIChain

#: The engine profile the test validator signs (keccak-256 of a profile blob).
ENGINE = keccak(text="engine profile: sidecar 0.1, torch 2.13.0+cpu, float32, spans+grad v1")

# key roles
OWNER, CUR1, CUR2, CUR3, CONTRIB, BASE_AUTHOR, ADAPTER_AUTHOR, VALIDATOR, USER, CONTRIB2 = range(10)

TEST_PARAMS = {
    "staking.epoch_length": 4,
    # an unstake unbonds for an epoch and the evidence age (params.check_param's rule)
    "staking.unbonding_blocks": 12,
    "staking.evidence_max_age": 2,
    # a receipt settles from the next block; verdicts close before an unstake unbonds
    "inference.challenge_window": 1,
    "inference.verdict_window": 2,
    "gov.voting_period": 6,
    "gov.execution_delay": 4,
}


@dataclass
class World:
    """The chain after a datanet, curation, a version, a base model and two adapters."""

    c: AIChain
    datanet: int = 0
    contributions: list[int] = field(default_factory=list)
    rejected: int = 0
    late: int = 0  # accepted after version 1: outside every adapter's lineage
    base: int = 0
    adapter1: int = 0
    adapter2: int = 0
    next_nonce: int = 1

    def request(self, adapter: int, max_fee: int, nonce: int | None = None,
                deadline: int | None = None, user: int = USER, commercial: bool = False) -> dict[str, Any]:
        if nonce is None:
            nonce = self.next_nonce
            self.next_nonce += 1
        return {"user": self.c.addr(user), "validator": self.c.addr(VALIDATOR), "adapter_id": adapter,
                "prompt_hash": keccak(text=f"prompt {nonce}"), "max_tokens": 32, "max_fee": max_fee,
                "nonce": nonce, "deadline": deadline if deadline is not None
                else self.c.head.timestamp + 3600, "chain_id": CHAIN_ID, "commercial": commercial}

    def sign_request(self, req: dict[str, Any], key: int = USER) -> bytes:
        """Sign as a wallet would (eth_account's EIP-712 encoder, not ours)."""
        msg = encode_typed_data(full_message=typed_data.request_typed_data(req, CHAIN_ID))
        return bytes(Account.sign_message(msg, self.c.keys[key].key).signature)

    def receipt_args(self, req: dict[str, Any], ids: list[int], weights: list[int], fee: int,
                     user_sig: bytes | None = None, validator_key: int = VALIDATOR,
                     validator: int = VALIDATOR, output: bytes = b"\x07" * 32,
                     engine: bytes = ENGINE) -> tuple[Any, ...]:
        vaddr = self.c.addr(validator)
        req = {**req, "validator": vaddr}  # the request names the validator that serves it
        user_sig = user_sig if user_sig is not None else self.sign_request(req)
        rh = typed_data.request_digest(req, CHAIN_ID)
        digest = typed_data.receipt_digest(rh, output, engine, ids, weights, fee, vaddr, CHAIN_ID)
        vsig = typed_data.sign(digest, bytes(self.c.keys[validator_key].key))
        return (req, user_sig, output, engine, ids, weights, fee, vaddr, vsig)

    def settle(self, *receipt_ids: int) -> int:
        """Mine past the receipts' challenge windows and settle them; how many settled."""
        release = max(self.c.call("Inference", "getReceipt", rid)["release_block"] for rid in receipt_ids)
        while self.c.head.block_number + 1 < release:
            self.c.mine()
        return int(self.c.send(USER, "Inference", "settle", list(receipt_ids)).result)


def build_world(params: dict[str, Any] | None = None, n_keys: int = 10) -> World:
    c = AIChain({**TEST_PARAMS, **(params or {})}, n_keys=n_keys)
    w = World(c)
    a = c.addr
    w.datanet = c.send(OWNER, "Datanets", "createDatanet", "med-qa", "medical", "ipfs://desc",
                       "CC-BY-4.0", [a(CUR1), a(CUR2), a(CUR3)], 2, 4096).result
    for i in range(4):
        who = CONTRIB if i % 2 == 0 else CONTRIB2
        w.contributions.append(c.contribute(who, w.datanet, keccak(text=f"blob {i}"), 100 + i, "CC-BY-4.0",
                                            keccak(text=f"meta {i}")).result)
    c1, c2, c3, c4 = w.contributions
    for cid in (c1, c2, c3):
        c.send(CUR1, "Datanets", "curate", cid, True, 0)
        c.send(CUR2, "Datanets", "curate", cid, True, 0)
    c.send(CUR1, "Datanets", "curate", c4, False, 3)
    c.send(CUR2, "Datanets", "curate", c4, False, 5)
    w.rejected = c4
    w.contributions = [c1, c2, c3]
    c.send(OWNER, "Datanets", "publishVersion", w.datanet)
    w.late = c.contribute(CONTRIB, w.datanet, keccak(text="late"), 10, "MIT", keccak(text="meta late")).result
    c.send(CUR1, "Datanets", "curate", w.late, True, 0)
    c.send(CUR3, "Datanets", "curate", w.late, True, 0)
    w.base = c.send(BASE_AUTHOR, "ModelRegistry", "registerBaseModel", keccak(text="base w"),
                    keccak(text="cfg"), keccak(text="tok"), "apache-2.0").result
    from ai_precompiles.registry import adapter_contribution_root

    root = adapter_contribution_root(c.state, [w.datanet], [1])
    spec = {"parent_id": w.base, "datanet_ids": [w.datanet], "datanet_versions": [1],
            "contribution_root": root, "hyper_params_hash": keccak(text="hp1"),
            "weights_hash": keccak(text="a1 w"), "attribution_index_hash": keccak(text="idx1"),
            "manifest_hash": keccak(text="manifest1"),
            "validator": a(VALIDATOR), "license": "apache-2.0"}
    w.adapter1 = c.send(BASE_AUTHOR, "ModelRegistry", "registerAdapter", spec).result
    spec2 = dict(spec, parent_id=w.adapter1, datanet_ids=[], datanet_versions=[],
                 contribution_root=b"\x00" * 32, weights_hash=keccak(text="a2 w"),
                 hyper_params_hash=keccak(text="hp2"))
    w.adapter2 = c.send(ADAPTER_AUTHOR, "ModelRegistry", "registerAdapter", spec2).result
    c.send(VALIDATOR, "Staking", "stake", value=5 * ETHER)
    c.send(USER, "Inference", "deposit", value=ETHER)
    return w


