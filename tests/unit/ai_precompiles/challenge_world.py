"""A chain for the challenge game: the AI world of ``ai_world`` plus five staked judges (other
validators), a challenger that is no validator, and helpers to record, challenge and judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import keccak

import ai_precompiles as ap
from ai_precompiles.addresses import BY_NAME, INFERENCE, REWARDS, STAKING
from tests.unit.ai_precompiles.ai_harness import ETHER, AIChain, Sent
from tests.unit.ai_precompiles.ai_world import CONTRIB, VALIDATOR, World, build_world

#: Governance parameters of these chains: a receipt's window is 5 blocks, verdicts 6 more.
PARAMS = {"staking.unbonding_blocks": 40, "staking.jail_blocks": 10,
          "inference.challenge_window": 5, "inference.verdict_window": 6,
          "inference.committee_size": 3, "inference.max_missed_verdicts": 2}
#: judge key -> ether staked (other validators of the set; the accused VALIDATOR stakes 5)
JUDGES = {10: 2, 11: 3, 12: 4, 13: 5, 14: 6}
CHALLENGER, STRANGER = 15, 16
N_KEYS = 17
BOND = 10**17  # inference.challenge_bond's default
FEE = 10**15 + 7  # odd: the split has rounding remainders

PROBE = Path(__file__).parents[2] / "integration" / "ai" / "build" / "PrecompileProbe.json"


def mine_to_next_epoch(c: AIChain) -> int:
    epoch = c.call("Staking", "currentEpoch")
    while c.call("Staking", "currentEpoch") == epoch:
        c.mine()
    return int(epoch + 1)


def judged_world(params: dict[str, Any] | None = None, judges: dict[int, int] | None = None,
                 n_keys: int = N_KEYS) -> World:
    """The AI world with ``judges`` staked and their stake in force (the next epoch)."""
    w = build_world({**PARAMS, **(params or {})}, n_keys=n_keys)
    for k, eth in (JUDGES if judges is None else judges).items():
        w.c.send(k, "Staking", "stake", value=eth * ETHER)
    mine_to_next_epoch(w.c)
    return w


def record(w: World, fee: int = FEE, ids: list[int] | None = None, weights: list[int] | None = None,
           **kw: Any) -> Sent:
    """A receipt for adapter 2 (lineage: adapter 2 <- adapter 1 <- base), served by VALIDATOR."""
    ids = w.contributions if ids is None else ids
    weights = [5000, 3000, 2000][: len(ids)] if weights is None else weights
    req = w.request(w.adapter2, max_fee=fee)
    return w.c.send(VALIDATOR, "Inference", "submitReceipt", *w.receipt_args(req, ids, weights, fee, **kw))


def challenge(w: World, receipt_id: int, who: int = CHALLENGER, value: int = BOND) -> Sent:
    return w.c.send(who, "Inference", "challenge", receipt_id, value=value)


def key_of(c: AIChain, address: bytes) -> int:
    return next(i for i in range(len(c.keys)) if c.addr(i) == address)


def committee(c: AIChain, challenge_id: int) -> list[tuple[int, int]]:
    """(key index, power) of each committee member, in draw order."""
    ch = c.call("Inference", "getChallenge", challenge_id)
    return [(key_of(c, m), c.call("Inference", "committeePower", challenge_id, m)) for m in ch["members"]]


def judge(w: World, challenge_id: int, upheld: bool, members: list[int] | None = None) -> list[Sent]:
    """Members (default: all, in draw order) give ``upheld`` until the challenge is decided."""
    c = w.c
    sent = []
    for k in members if members is not None else [k for k, _ in committee(c, challenge_id)]:
        if c.call("Inference", "getChallenge", challenge_id)["status"] != 1:
            break
        sent.append(c.send(k, "Inference", "submitVerdict", challenge_id, upheld))
    return sent


def mine_to(c: AIChain, block: int) -> None:
    """Mine until the next transaction lands in ``block``."""
    while c.head.block_number + 1 < block:
        c.mine()


EVENT_NAMES = {ev.topic0: f"{m}.{name}" for m in ap.MODULES for name, ev in ap.load_abi(m).events.items()}


def events(sent: Sent) -> list[str]:
    """Names of the AI events a transaction emitted, in order."""
    return [EVENT_NAMES[lg.topics[0]] for lg in sent.logs if lg.topics and lg.topics[0] in EVENT_NAMES]


def books_balance(c: AIChain, extra: tuple[bytes, ...] = ()) -> None:
    """Each escrow holds exactly what its books owe: deposits and open bonds (inference),
    claimable and pending balances (rewards), stakes and unbonding amounts (staking); and the
    totals are the sums of the accounts' entries."""
    accounts = [c.addr(i) for i in range(len(c.keys))] + [ap.addresses.DEFAULT_TREASURY, *extra]
    state = c.state
    deposits = sum(ap.get_deposit(state, a) for a in accounts)
    assert c.balance(INFERENCE) == deposits + ap.challenges.get_bonds(state)
    books = [ap.get_rewards(state, a) for a in accounts]
    claimable = sum(b["claimable"] for b in books)
    pending = sum(b["pending"] for b in books)
    assert claimable == c.call("Rewards", "totalClaimable")
    assert pending == c.call("Rewards", "totalPending")
    assert c.balance(REWARDS) == claimable + pending
    stakes = [ap.get_stake(state, a) for a in accounts]
    assert c.balance(STAKING) == sum(s["stake"] + s["unbonding"] for s in stakes)


def total_wei(c: AIChain, extra: tuple[bytes, ...] = ()) -> int:
    """Every wei in existence on this chain: the keys' balances, the precompile accounts', the
    coinbase's (priority fees), any ``extra`` account, plus every base fee burnt since genesis."""
    accounts = {c.addr(i) for i in range(len(c.keys))} | set(BY_NAME.values()) | {b"\x00" * 20, *extra}
    burnt = 0
    for n in range(1, c.head.block_number + 1):
        h = c.chain.get_canonical_block_header_by_number(n)
        burnt += h.gas_used * h.base_fee_per_gas
    return sum(c.balance(a) for a in accounts) + burnt


# -- the attacker's contract (tests/integration/ai/contracts/PrecompileProbe.sol) -----------------


def deploy_probe(c: AIChain, key: int = STRANGER) -> tuple[bytes, dict[str, Any]]:
    art = json.loads(PROBE.read_text())
    address = c.deploy(key, bytes.fromhex(art["bytecode"][2:]))
    return address, {f["name"]: f for f in art["abi"] if f["type"] == "function"}


def probe_data(abi: dict[str, Any], name: str, *args: Any) -> bytes:
    fn = abi[name]
    types = [i["type"] for i in fn["inputs"]]
    selector = keccak(text=f"{name}({','.join(types)})")[:4]
    return selector + encode(types, list(args))


def inference_call(function: str, *args: Any) -> bytes:
    return bytes(ap.load_abi("Inference").by_name[function].encode_args(*args))


__all__ = ["CONTRIB", "VALIDATOR"]
