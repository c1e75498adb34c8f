"""Protocol parameters: names, defaults, bounds, and where they live (governance storage).

Every module reads its parameters at run time through :func:`get_param`, so an executed
governance proposal takes effect in the next transaction. A parameter is stored at
``slot("param", name)`` in the governance account as ``value + 1``; 0 means "never set" and
reads as the default, so a parameter added by a later release needs no state migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .addresses import DEFAULT_TREASURY, GOVERNANCE
from .errors import InvalidArgument
from .storage import Store, slot

BP = 10_000  # basis points in a whole


@dataclass(frozen=True)
class Param:
    """One governable parameter."""

    #: value at genesis unless the genesis file overrides it
    default: int
    #: smallest value a proposal may set
    min: int
    #: largest value a proposal may set
    max: int
    #: what it controls
    doc: str


# Gas prices: each is at least the storage cost of the operation's typical path (see
# docs/ai_precompiles.md); the meter charges the storage cost anyway when it is higher.
_GAS = {
    "createDatanet": (250_000, "create a datanet"),
    "commitContribution": (30_000, "commit to a contribution (a block before it is submitted)"),
    "contribute": (160_000, "submit a contribution"),
    "curate": (60_000, "one curator's decision"),
    "setContributionPolicy": (50_000, "set a datanet's contribution policy (bond, sketch)"),
    "contributeBonded": (300_000, "submit a contribution with a bond and its MinHash sketch (+ storage of its LSH bands)"),
    "withdrawConsent": (60_000, "withdraw consent for a contribution (+ storage: at most 33 words of the withdrawal tree)"),
    "publishVersion": (80_000, "publish a datanet version (+ storage reads of its leaves)"),
    "registerBaseModel": (200_000, "register a base model"),
    "registerAdapter": (300_000, "register an adapter"),
    "registerTrainedAdapter": (350_000, "register an adapter a builder asked a validator to train and pay its fee (+ gas.signature)"),
    "registerMergedAdapter": (400_000, "register a merge of 2..16 adapters (+ storage reads of its parents' datanet versions)"),
    "retireAdapter": (30_000, "retire an adapter"),
    "deposit": (30_000, "deposit for inference fees"),
    "withdraw": (30_000, "withdraw an inference deposit"),
    "requestWithdrawal": (30_000, "start the lock before an inference deposit can be withdrawn"),
    "submitReceipt": (250_000, "record an inference receipt and hold its fee split pending"),
    "settle": (30_000, "settle receipts whose challenge window is over (+ storage per party)"),
    "challenge": (150_000, "challenge a receipt with a bond and draw its committee (+ storage per candidate read)"),
    "submitVerdict": (50_000, "a committee member's verdict on a challenge (+ the resolution it decides)"),
    "resolve": (50_000, "resolve a challenge after its verdict deadline (+ settling its receipt)"),
    "claim": (30_000, "claim accrued rewards"),
    "stake": (80_000, "stake"),
    "unstake": (80_000, "start unbonding"),
    "withdrawUnbonded": (30_000, "withdraw matured unbonding stake"),
    "submitEvidence": (100_000, "check double-sign evidence and slash (+ 2 x gas.signature)"),
    "unjail": (80_000, "leave jail after staking.jail_blocks and stand for the set again"),
    "propose": (150_000, "create a governance proposal"),
    "vote": (50_000, "vote on a proposal"),
    "execute": (60_000, "execute a passed proposal"),
    "proposeModel": (150_000, "propose an adapter for deployment with a bond"),
    "proposeUpgrade": (150_000, "propose a named upgrade at a height"),
    "closeProposal": (60_000, "close a proposal that did not pass and settle its bond"),
    "setApprovalPolicy": (50_000, "set whether a datanet's or base model's adapters need an approved model proposal"),
}

PARAMS: dict[str, Param] = {
    # reward split of an inference fee, basis points; the treasury receives the remainder
    "reward.contributors_bp": Param(5000, 0, BP, "fee share of attributed contributors, by weight"),
    "reward.author_bp": Param(1500, 0, BP, "fee share of the adapter's author"),
    "reward.lineage_bp": Param(1000, 0, BP, "fee share of the lineage's authors (base model and ancestor adapters), equal per ancestor"),
    "reward.validator_bp": Param(2000, 0, BP, "fee share of the validator that served the request"),
    "treasury": Param(int.from_bytes(DEFAULT_TREASURY, "big"), 1, 2**160 - 1, "address credited with the treasury share and all rounding remainders"),
    # curation
    "datanet.min_quorum": Param(1, 1, 64, "smallest approval quorum a datanet may set"),
    "datanet.max_quorum": Param(16, 1, 64, "largest approval quorum a datanet may set"),
    "datanet.max_curators": Param(32, 1, 256, "most curators in a datanet"),
    "datanet.max_size_cap": Param(1 << 30, 1, 1 << 40, "upper bound of a datanet's max contribution size (bytes)"),
    # data quality (docs/ai_precompiles.md, "Near duplicates, bonds and penalties")
    "datanet.near_duplicate_bp": Param(8000, 5000, BP, "estimated Jaccard similarity (bp) of two contributions' MinHash sketches from which the later one is flagged a near duplicate and joins the earlier one's group (below 5000 the LSH bands rarely find the pair)"),
    "datanet.max_min_bond": Param(100 * 10**18, 0, 2**128, "largest bond (wei) a datanet's policy may require of each contribution"),
    "datanet.penalty_threshold": Param(3, 1, 1_000_000, "adversarial rejections after which a contributor's rewards are paused (its released shares go to the treasury)"),
    # registry / inference
    "registry.max_depth": Param(32, 1, 256, "longest adapter chain from a base model"),
    "registry.max_datanet_versions": Param(16, 1, 256, "datanet versions an adapter may declare"),
    "registry.retire_delay": Param(600, 1, 30 * 86_400, "seconds a retired adapter still takes inference receipts, so requests already signed and served are paid (as inference.withdraw_delay holds a deposit)"),
    "inference.max_attributions": Param(64, 1, 1024, "attribution pairs in one receipt"),
    "inference.withdraw_delay": Param(600, 1, 30 * 86_400, "seconds a deposit stays chargeable after a withdrawal is requested, so requests already signed can still be paid"),
    "inference.max_tokens": Param(1024, 1, 1_000_000, "most tokens a signed request may ask to generate (greedy decoding)"),
    # the challenge game (docs/ai_precompiles.md, "Challenges"): none of these may be 0, which
    # would turn the defence off (no window, free challenges, no committee, no penalty)
    "inference.challenge_window": Param(100, 1, 1_000_000, "blocks a receipt's payouts stay pending after it is recorded; anyone may challenge it during them"),
    "inference.challenge_bond": Param(10**17, 1, 2**128, "wei a challenger bonds (sent with challenge()); lost to the accused and the treasury if the committee rejects the challenge"),
    "inference.committee_size": Param(7, 1, 100, "validators drawn, stake-weighted, to judge a challenge (the accused, the challenger and jailed validators excluded; fewer when the set is smaller)"),
    "inference.verdict_window": Param(100, 1, 1_000_000, "blocks after a challenge during which its committee submits verdicts"),
    "inference.fraud_slash_bp": Param(1000, 1, BP, "share of the accused validator's stake (at its receipt's epoch) slashed when a challenge is upheld, basis points"),
    "inference.challenger_reward_bp": Param(5000, 1, BP, "share of an upheld challenge's slash paid to the challenger on top of its bond; the rest goes to the treasury"),
    "inference.bond_to_accused_bp": Param(5000, 0, BP, "share of a rejected challenge's bond paid to the accused validator; the rest goes to the treasury"),
    "inference.max_missed_verdicts": Param(3, 1, 1_000, "verdicts a committee member may fail to submit by their deadlines before it is jailed (staking.jail_blocks); the count restarts at each jail"),
    # staking
    "staking.epoch_length": Param(100, 1, 1_000_000, "blocks per epoch; a change applies from the next epoch boundary"),
    "staking.unbonding_blocks": Param(300, 2, 10_000_000, "blocks an unstaked amount waits before it can be withdrawn; at least staking.epoch_length + staking.evidence_max_age, so an offence is still slashable from the unbonding amount"),
    "staking.evidence_max_age": Param(200, 1, 10_000_000, "blocks after a double sign during which its evidence is accepted on chain"),
    "staking.min_stake": Param(10**18, 1, 2**128, "stake (wei) to be in the validator set"),
    "staking.max_validators": Param(100, 1, 1_000, "size of the validator set (largest stakes first)"),
    "staking.min_holding": Param(10**16, 1, 2**128, "smallest non-zero stake an account may hold (wei): a stake or unstake leaving less is refused"),
    "staking.max_candidates": Param(100, 1, 1_000, "accounts with at least staking.min_stake tracked as validator candidates; a newcomer with a larger stake takes the smallest one's seat"),
    "staking.slash_fraction_bp": Param(500, 1, BP, "share of the offender's stake (at the offence's epoch) slashed for a proven double sign, basis points; it goes to the treasury"),
    "staking.jail_blocks": Param(1000, 1, 10_000_000, "blocks a slashed validator stays jailed (out of the set from the next epoch) before unjail() may return it"),
    # governance
    "gov.voting_period": Param(100, 1, 10_000_000, "blocks a proposal is open for votes"),
    "gov.execution_delay": Param(20, 1, 10_000_000, "blocks after voting closes before execution"),
    "gov.quorum_bp": Param(4000, 1, BP, "share of the snapshot's total stake that must vote"),
    "gov.min_proposer_stake": Param(1, 1, 2**128, "stake (wei, at the snapshot epoch) needed to propose"),
    # model proposals (docs/ai_precompiles.md, "Model proposals"): OpenLedger's Governor figures
    # (quorum 5%, a one-week vote, a timelock) in blocks of the 2 s block time consensus aims at
    "gov.model_voting_period": Param(302_400, 1, 10_000_000, "blocks a model proposal is open for votes (a week of 2 s blocks)"),
    "gov.model_timelock": Param(86_400, 1, 10_000_000, "blocks after a model proposal's vote closes before it may be executed (two days of 2 s blocks)"),
    "gov.model_quorum_bp": Param(500, 1, BP, "share of the snapshot's total stake that must vote on a model proposal"),
    "gov.model_threshold_bp": Param(5000, 1, BP - 1, "a model proposal passes when its yes votes are more than this share of the votes cast"),
    "gov.model_min_bond": Param(10**18, 1, 2**128, "smallest bond (wei) a model proposal is sent with"),
    "gov.model_slash_bp": Param(6667, 1, BP, "a model proposal that fails with no votes of at least this share of the votes cast loses its bond to the treasury"),
    "gov.upgrade_min_lead": Param(20, 1, 10_000_000, "fewest blocks between executing an upgrade proposal and its height, so node operators can install it"),
    # gas
    "gas.read": Param(2_600, 100, 1_000_000, "price of a view call (storage reads are charged on top when higher)"),
    "gas.signature": Param(3_000, 3_000, 1_000_000, "price of one signature recovery (as ecrecover)"),
    **{f"gas.{fn}": Param(g, 21_000 if g >= 21_000 else 5_000, 10_000_000, f"price of {doc}")
       for fn, (g, doc) in _GAS.items()},
}

#: Parameters bound by the rule ``challenge_window + verdict_window <= staking.unbonding_blocks``.
CHALLENGE_SPAN = ("inference.challenge_window", "inference.verdict_window", "staking.unbonding_blocks")
#: Parameters bound by the rule ``epoch_length + evidence_max_age <= staking.unbonding_blocks``.
EVIDENCE_SPAN = ("staking.epoch_length", "staking.evidence_max_age", "staking.unbonding_blocks")

REWARD_SHARES = ("reward.contributors_bp", "reward.author_bp", "reward.lineage_bp",
                 "reward.validator_bp")


def param_slot(name: str) -> int:
    return slot("param", name)


def get_param(store_or_state: Store | Any, name: str) -> int:
    """Current value of parameter ``name`` (metered when given a governance :class:`Store`)."""
    if name not in PARAMS:
        raise InvalidArgument(f"unknown parameter {name}")
    if isinstance(store_or_state, Store):
        raw = store_or_state.get(param_slot(name))
    else:
        raw = store_or_state.get_storage(GOVERNANCE, param_slot(name))
    return raw - 1 if raw else PARAMS[name].default


def get_params(state: Any) -> dict[str, int]:
    """All parameters (read helper for ``ai_getParams``)."""
    return {name: get_param(state, name) for name in PARAMS}


def check_param(name: str, value: int, current: dict[str, int]) -> None:
    """Raise unless ``value`` is allowed for ``name`` given the other current values.

    Governance calls it when a proposal is made and again when it is executed (other proposals
    may have moved the values it is checked against meanwhile); genesis, for every value the
    file sets. Besides each parameter's bounds (none may be 0 where 0 turns a defence off: no
    slash, no jail, no delay), the rules between parameters are the chain's invariants:

    - ``staking.epoch_length + staking.evidence_max_age <= staking.unbonding_blocks``: a validator
      that unstakes keeps its voting power to the end of the epoch, and a double sign of its last
      block may be proven up to ``evidence_max_age`` blocks later; its stake must still be
      unbonding then, or the slash takes nothing (issue 19, attack 4).
    - ``inference.challenge_window + inference.verdict_window <= staking.unbonding_blocks``: the
      same for a lying receipt decided by a challenge.
    """
    p = PARAMS.get(name)
    if p is None:
        raise InvalidArgument(f"unknown parameter {name}")
    if not p.min <= value <= p.max:
        raise InvalidArgument(f"{name} must be within [{p.min}, {p.max}]")
    merged = dict(current, **{name: value})
    if name in REWARD_SHARES and sum(merged[s] for s in REWARD_SHARES) > BP:
        raise InvalidArgument("reward shares must not exceed 10000 bp in total")
    if name in ("datanet.min_quorum", "datanet.max_quorum") and (
            merged["datanet.min_quorum"] > merged["datanet.max_quorum"]):
        raise InvalidArgument("datanet.min_quorum must not exceed datanet.max_quorum")
    if name in ("staking.max_validators", "staking.max_candidates") and (
            merged["staking.max_validators"] > merged["staking.max_candidates"]):
        raise InvalidArgument("staking.max_validators must not exceed staking.max_candidates")
    if name in EVIDENCE_SPAN and (merged["staking.epoch_length"] + merged["staking.evidence_max_age"]
                                  > merged["staking.unbonding_blocks"]):
        # A validator votes with its stake to the end of the epoch it unstakes in, and its
        # offence is provable for evidence_max_age blocks after: the stake must wait that long.
        raise InvalidArgument("staking.epoch_length + staking.evidence_max_age must not exceed "
                              "staking.unbonding_blocks")
    if name in CHALLENGE_SPAN and (merged["inference.challenge_window"] + merged["inference.verdict_window"]
                                   > merged["staking.unbonding_blocks"]):
        # A validator that lies and unstakes at once must still be slashable when the committee
        # decides: the slash takes from the unbonding amount, which waits staking.unbonding_blocks.
        raise InvalidArgument("inference.challenge_window + inference.verdict_window must not exceed "
                              "staking.unbonding_blocks")


def set_param(store: Store, name: str, value: int) -> None:
    store.set(param_slot(name), value + 1)


def genesis_params(overrides: dict[str, int] | None) -> dict[str, int]:
    """Defaults with ``overrides`` applied and checked."""
    values = {n: p.default for n, p in PARAMS.items()}
    for name, value in (overrides or {}).items():
        if name not in PARAMS:
            raise InvalidArgument(f"unknown parameter {name}")
        try:
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            values[name] = int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value)
        except ValueError:
            raise InvalidArgument(f"{name}: expected an integer (or a 0x hex string), not {value!r}") from None
    for name in overrides or {}:  # rules between parameters hold for the whole set, in any order
        check_param(name, values[name], values)
    return values
