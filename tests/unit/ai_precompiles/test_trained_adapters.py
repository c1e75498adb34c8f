"""A model builder asks a validator to train (issue 18): ``ModelRegistry.registerTrainedAdapter``
records the builder as author and the validator as trainer, spends the builder's nonce and pays
the fee from the builder's inference deposit to the validator. Every refusal reverts with its
reason and changes no AI state; only CALL reaches it; its gas does not grow with the parent's
children."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_abi import decode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from ai_precompiles import rewards, typed_data
from ai_precompiles.addresses import INFERENCE, MODEL_REGISTRY, REWARDS
from ai_precompiles.errors import decode_revert_reason
from ai_precompiles.registry import adapter_contribution_root
from tests.unit.ai_precompiles.ai_harness import CHAIN_ID, ETHER, Reverted, Sent
from tests.unit.ai_precompiles.ai_world import VALIDATOR, World, build_world
from tests.unit.ai_precompiles.challenge_world import deploy_probe, probe_data

pytestmark = pytest.mark.xdist_group("trained_adapters")

BUILDER, OTHER_VALIDATOR, UNSTAKED, STRANGER = 10, 11, 12, 13
FEE = 10**15 + 3


@pytest.fixture(scope="module")
def world() -> World:
    w = build_world(n_keys=14)
    w.c.send(BUILDER, "Inference", "deposit", value=ETHER // 10)
    w.c.send(OTHER_VALIDATOR, "Staking", "stake", value=2 * ETHER)
    return w


class Job:
    """One training request, its spec and signature, as a builder and its validator make them."""

    nonces = iter(range(1, 10_000))

    def __init__(self, w: World, builder: int = BUILDER, validator: int = VALIDATOR, **request: Any) -> None:
        self.w = w
        c = w.c
        self.request: dict[str, Any] = {
            "builder": c.addr(builder), "validator": c.addr(validator), "parent_id": w.base,
            "datanet_ids": [w.datanet], "datanet_versions": [1], "hyper_params_hash": keccak(text='{"seed":0}'),
            "license": "apache-2.0", "max_fee": FEE, "nonce": next(self.nonces),
            "deadline": c.head.timestamp + 3600, "chain_id": CHAIN_ID, **request}
        n = self.request["nonce"]
        self.spec: dict[str, Any] = {
            "parent_id": self.request["parent_id"], "datanet_ids": list(self.request["datanet_ids"]),
            "datanet_versions": list(self.request["datanet_versions"]),
            "contribution_root": adapter_contribution_root(c.state, [w.datanet], [1]),
            "hyper_params_hash": self.request["hyper_params_hash"], "weights_hash": keccak(text=f"trained w {n}"),
            "attribution_index_hash": keccak(text=f"trained idx {n}"), "manifest_hash": keccak(text=f"manifest {n}"),
            "validator": c.addr(validator), "license": self.request["license"]}
        self.signature = self.sign(builder)

    def sign(self, key: int) -> bytes:
        """As a wallet signs (eth-account's EIP-712 encoder, not ours)."""
        msg = encode_typed_data(full_message=typed_data.training_request_typed_data(self.request, CHAIN_ID))
        return bytes(Account.sign_message(msg, self.w.c.keys[key].key).signature)

    @property
    def digest(self) -> bytes:
        return typed_data.training_request_digest(self.request, CHAIN_ID)

    def args(self, fee: int = FEE) -> tuple[Any, ...]:
        return (self.spec, self.request, self.signature, fee)

    def register(self, sender: int = VALIDATOR, fee: int = FEE) -> Sent:
        return self.w.c.send(sender, "ModelRegistry", "registerTrainedAdapter", *self.args(fee))


def deposit(w: World, who: int = BUILDER) -> int:
    return int(w.c.call("Inference", "depositOf", w.c.addr(who)))


def assert_refused(w: World, reason: str, action: Callable[[], Any]) -> None:
    before = w.c.ai_snapshot()
    with pytest.raises(Reverted) as info:
        action()
    assert reason in (info.value.reason or ""), info.value.reason
    assert w.c.ai_snapshot() == before


def test_the_validator_registers_for_the_builder_and_is_paid(world: World) -> None:
    w, c = world, world.c
    job = Job(w)
    assert c.call("ModelRegistry", "trainingRequestDigest", job.request) == job.digest
    assert c.call("ModelRegistry", "trainingNonceUsed", c.addr(BUILDER), job.request["nonce"]) is False
    dep, claimable = deposit(w), c.call("Rewards", "claimable", c.addr(VALIDATOR))
    escrow, pot = c.balance(INFERENCE), c.balance(REWARDS)
    sent = job.register()
    adapter = sent.result
    model = c.call("ModelRegistry", "getModel", adapter)
    assert model["author"] == c.addr(BUILDER)  # the builder, not the sender
    assert model["validator"] == c.addr(VALIDATOR)
    assert model["parent_id"] == w.base and model["datanet_versions"] == [1]
    assert model["manifest_hash"] == job.spec["manifest_hash"]
    assert model["hyper_params_hash"] == job.request["hyper_params_hash"]
    # the fee moved from the builder's deposit to the validator's claimable rewards, wei for wei
    assert deposit(w) == dep - FEE
    assert c.call("Rewards", "claimable", c.addr(VALIDATOR)) == claimable + FEE
    assert c.balance(INFERENCE) == escrow - FEE and c.balance(REWARDS) == pot + FEE
    assert c.call("ModelRegistry", "trainingNonceUsed", c.addr(BUILDER), job.request["nonce"]) is True
    assert c.call("ModelRegistry", "adapterOfTrainingRequest", job.digest) == adapter
    assert c.call("ModelRegistry", "trainingRequestOf", adapter) == job.digest
    assert c.call("ModelRegistry", "trainingRequestOf", w.adapter1) == b"\x00" * 32
    events = ap_abi("ModelRegistry").events
    registered = [log for log in sent.logs if log.topics[0] == events["AdapterRegistered"].topic0]
    assert len(registered) == 1 and registered[0].topics[3] == int.from_bytes(c.addr(BUILDER), "big")
    (trained,) = [log for log in sent.logs if log.topics[0] == events["AdapterTrained"].topic0]
    assert tuple(trained.topics[1:]) == (adapter, int.from_bytes(c.addr(BUILDER), "big"),
                                         int.from_bytes(c.addr(VALIDATOR), "big"))
    assert decode(["bytes32", "uint256"], trained.data) == (job.digest, FEE)
    accrued = ap_abi("Rewards").events["RewardAccrued"].topic0
    assert any(log.topics[0] == accrued and log.topics[3] == rewards.TRAINER for log in sent.logs)
    # the builder, as author, may retire it; the validator may not
    with pytest.raises(Reverted, match="only the adapter's author"):
        c.send(VALIDATOR, "ModelRegistry", "retireAdapter", adapter)


def ap_abi(name: str) -> Any:
    import ai_precompiles

    return ai_precompiles.load_abi(name)


def test_a_fee_below_the_max_is_charged_as_given(world: World) -> None:
    w = world
    dep = deposit(w)
    Job(w).register(fee=FEE - 1000)
    assert deposit(w) == dep - (FEE - 1000)


def test_a_reused_nonce_is_refused(world: World) -> None:
    w = world
    first = Job(w)
    first.register()
    again = Job(w, nonce=first.request["nonce"])
    assert_refused(w, "training request nonce already used", again.register)


def test_a_bad_or_foreign_signature_is_refused(world: World) -> None:
    w = world
    job = Job(w)
    job.signature = job.sign(STRANGER)  # someone else signs the builder's request
    assert_refused(w, "bad builder signature: signer is not request.builder", job.register)
    job.signature = job.signature[:64]
    assert_refused(w, "bad builder signature: signature must be 65 bytes", job.register)
    job = Job(w)
    sig = bytearray(job.signature)
    s = int.from_bytes(sig[32:64], "big")
    sig[32:64] = (typed_data.SECP256K1_N - s).to_bytes(32, "big")  # the high-s twin of a good one
    job.signature = bytes(sig)
    assert_refused(w, "bad builder signature: malformed signature", job.register)
    # signed, then changed: the signature covers every field
    job = Job(w)
    job.request["max_fee"] = 10 * FEE
    assert_refused(w, "signer is not request.builder", lambda: job.register(fee=10 * FEE))


def test_only_the_requested_validator_registers(world: World) -> None:
    w = world
    job = Job(w)  # signed for VALIDATOR
    job.spec["validator"] = w.c.addr(OTHER_VALIDATOR)
    assert_refused(w, "only the request's validator", lambda: job.register(sender=OTHER_VALIDATOR))
    job = Job(w)
    job.spec["validator"] = w.c.addr(OTHER_VALIDATOR)  # the trainer credits someone else
    assert_refused(w, "the trainer names itself", job.register)


def test_an_unstaked_validator_is_refused(world: World) -> None:
    w = world
    job = Job(w, validator=UNSTAKED)
    assert_refused(w, "validator is not staked", lambda: job.register(sender=UNSTAKED))


@pytest.mark.parametrize("field,value", [
    ("parent_id", "adapter1"), ("datanet_versions", [2]), ("datanet_ids", [7]),
    ("hyper_params_hash", keccak(text="another recipe")), ("license", "proprietary"),
])
def test_the_spec_must_be_what_was_asked(world: World, field: str, value: Any) -> None:
    w = world
    job = Job(w)
    job.spec[field] = w.adapter1 if value == "adapter1" else value
    assert_refused(w, f"the spec's {field} is not the request's", job.register)


def test_a_trained_adapter_names_its_artifacts(world: World) -> None:
    w = world
    for name in ("manifest_hash", "attribution_index_hash"):
        job = Job(w)
        job.spec[name] = b"\x00" * 32
        assert_refused(w, "names its manifest and attribution index", job.register)


def test_other_chain_deadline_fee_and_deposit(world: World) -> None:
    w, c = world, world.c
    assert_refused(w, f"request is for chain 1, not {CHAIN_ID}", Job(w, chain_id=1).register)
    assert_refused(w, "training request deadline has passed",
                   Job(w, deadline=c.head.timestamp - 1).register)
    assert_refused(w, f"fee {FEE + 1} exceeds the request's max fee {FEE}",
                   lambda: Job(w).register(fee=FEE + 1))
    poor = Job(w, builder=STRANGER)  # no deposit at all
    assert_refused(w, f"builder deposit 0 is below the fee {FEE}", poor.register)
    free = Job(w, builder=STRANGER, max_fee=0)  # a validator may train for nothing
    assert free.register(fee=0).result > 0


def test_the_registry_rules_still_hold(world: World) -> None:
    w = world
    taken = Job(w)
    taken.spec["weights_hash"] = keccak(text="a1 w")  # adapter 1's weights
    assert_refused(w, "weights hash already registered", taken.register)
    unpublished = Job(w, datanet_versions=[9])
    unpublished.spec["datanet_versions"] = [9]
    assert_refused(w, "has no version 9", unpublished.register)
    assert_refused(w, "parent model 999 does not exist", _with_parent(Job(w, parent_id=999)).register)
    many = Job(w, datanet_ids=list(range(1, 18)), datanet_versions=[1] * 17)
    many.spec.update(datanet_ids=many.request["datanet_ids"], datanet_versions=many.request["datanet_versions"])
    assert_refused(w, "too many datanet versions", many.register)
    long = Job(w, license="x" * 10_000)
    long.spec["license"] = long.request["license"]
    assert_refused(w, "license too long", long.register)


def _with_parent(job: Job) -> Job:
    job.spec["parent_id"] = job.request["parent_id"]
    return job


def test_only_call_reaches_it(world: World) -> None:
    """DELEGATECALL would register in the caller's caller's name (the validator's), CALLCODE
    likewise; STATICCALL may not write; a contract's CALL is the contract, not the validator."""
    w, c = world, world.c
    probe, abi = deploy_probe(c, STRANGER)
    job = Job(w)
    data = ap_abi("ModelRegistry").by_name["registerTrainedAdapter"].encode_args(*job.args())
    before = c.ai_snapshot()
    for name, args in (("claimAirdrop", (MODEL_REGISTRY, data)),
                       ("delegateMintThenCall", (MODEL_REGISTRY, data, 1, b"")),
                       ("callcodeMintThenCall", (MODEL_REGISTRY, data, 1, 0, b""))):
        sent = c.send_raw(VALIDATOR, probe, probe_data(abi, name, *args))  # the validator is lured
        assert sent.computation.is_error, name
        assert decode_revert_reason(bytes(sent.computation.output)) == \
            "ModelRegistry: only CALL and STATICCALL may reach a precompile", name
    sent = c.send_raw(VALIDATOR, probe, probe_data(abi, "staticProbe", MODEL_REGISTRY, data))
    ok, ret = decode(["bool", "bytes"], bytes(sent.computation.output))
    assert not ok and decode_revert_reason(ret) == "state change in a static call"
    digest_call = ap_abi("ModelRegistry").by_name["trainingRequestDigest"].encode_args(job.request)
    sent = c.send_raw(VALIDATOR, probe, probe_data(abi, "staticProbe", MODEL_REGISTRY, digest_call))
    ok, ret = decode(["bool", "bytes"], bytes(sent.computation.output))
    assert ok and decode(["bytes32"], ret)[0] == job.digest
    sent = c.send_raw(VALIDATOR, probe, probe_data(abi, "callWith", MODEL_REGISTRY, data))
    assert sent.computation.is_error and decode_revert_reason(bytes(sent.computation.output)) == \
        "only the request's validator registers the adapter it trained"
    assert c.ai_snapshot() == before
    assert job.register().result > 0  # the same request, sent by the validator itself


def test_gas_does_not_grow_with_the_parents_children() -> None:
    w = build_world(n_keys=14)
    w.c.send(BUILDER, "Inference", "deposit", value=ETHER)

    def exec_gas(sent: Sent) -> int:
        return int(sent.gas_used - sent.block.transactions[0].intrinsic_gas)

    first = exec_gas(Job(w).register())
    second = exec_gas(Job(w).register())
    for _ in range(10):
        Job(w).register()
    twelfth = exec_gas(Job(w).register())
    assert second == twelfth, (first, second, twelfth)
    assert twelfth < 700_000
