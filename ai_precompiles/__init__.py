"""The AI state machine: datanets, model registry, inference receipts, rewards, staking and
governance, each a native precompile that keeps its records in its own account's storage.

Contract with ``state/``:

- :data:`PRECOMPILES` maps each 20-byte address to ``fn(computation) -> computation``; the VM
  merges it onto Prague's table.
- :func:`genesis_accounts` gives each precompile account (nonce 1, so EIP-161 never deletes it)
  and its initial storage (governance parameters, staking's first epoch anchor).
- Read helpers (``get_datanet`` ... ``get_validator_set``, ``get_challenge``, ``owed_verdicts``,
  ``get_pending``) take a read-only py-evm ``StateAPI`` for the ``ai_`` RPC; operation functions
  (``contribute``, ``register_adapter``, ``submit_receipt``, ``settle``, ``challenge``...) take a
  :class:`Ctx` for the native transaction types, and are the very functions the ABI path
  dispatches to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    addresses,
    challenges,
    datanets,
    governance,
    inference,
    registry,
    rewards,
    staking,
    typed_data,
)
from .abi import load as load_abi
from .abi import sol_source
from .addresses import BY_NAME, DATANETS, GOVERNANCE
from .challenges import (
    challenge,
    get_challenge,
    get_missed_verdicts,
    list_challenges,
    owed_verdicts,
    resolve,
    submit_verdict,
)
from .context import Ctx
from .datanets import (
    contribute,
    create_datanet,
    curate,
    get_contribution,
    get_contribution_proof,
    get_datanet,
    get_version,
    list_contributions,
    publish_version,
)
from .dispatch import Precompile
from .governance import execute, get_proposal, propose, vote
from .inference import (
    deposit,
    get_deposit,
    get_inference,
    get_receipt,
    receipt_id_for_request,
    settle,
    submit_receipt,
    withdraw,
)
from .merkle import leaf_hash, merkle_root, verify_proof
from .params import PARAMS, genesis_params, get_param, get_params, param_slot
from .registry import (
    get_lineage,
    get_model,
    register_adapter,
    register_base_model,
    retire_adapter,
)
from .rewards import claim, get_pending, get_rewards, split_fee
from .staking import get_epoch, get_stake, get_validator_set, submit_evidence, unjail

MODULES: dict[str, Precompile] = {
    "Datanets": datanets.PRECOMPILE,
    "ModelRegistry": registry.PRECOMPILE,
    "Inference": inference.PRECOMPILE,
    "Rewards": rewards.PRECOMPILE,
    "Staking": staking.PRECOMPILE,
    "Governance": governance.PRECOMPILE,
}

#: address (20 bytes) -> precompile function ``fn(computation) -> computation``
PRECOMPILES: dict[bytes, Callable[[Any], Any]] = {m.address: m for m in MODULES.values()}


#: Code of each precompile account. Never executed (the precompile table is consulted first),
#: but Solidity (>= 0.8.10) checks ``extcodesize`` before a call whose function returns
#: nothing, and would revert on an empty account. 0xFE (INVALID) is what a stub should be.
CODE_STUB = b"\xfe"


def genesis_accounts(params: dict[str, Any] | None = None) -> dict[bytes, dict[str, Any]]:
    """Accounts the AI modules need at genesis: address -> {balance, nonce, code, storage}.

    ``params`` overrides governance parameter defaults (names as in ``params.PARAMS``); values
    are checked against their bounds. ``params["validators"] = {"0xaddr": stake_wei}`` stakes
    genesis validators (effective from epoch 0; the staking account holds their wei).
    """
    params = dict(params or {})
    validators = staking.parse_validators(params.pop("validators", None))
    values = genesis_params(params)
    accounts: dict[bytes, dict[str, Any]] = {
        addr: {"balance": 0, "nonce": 1, "code": CODE_STUB, "storage": {}} for addr in BY_NAME.values()
    }
    accounts[GOVERNANCE]["storage"] = {param_slot(n): v + 1 for n, v in values.items()}
    accounts[addresses.STAKING]["storage"] = staking.genesis_storage(values, validators)
    accounts[addresses.STAKING]["balance"] = sum(validators.values())
    return accounts


__all__ = [
    "typed_data", "register_base_model", "register_adapter", "retire_adapter", "get_model",
    "get_lineage", "deposit", "withdraw", "submit_receipt", "get_receipt", "get_inference",
    "get_deposit", "receipt_id_for_request", "claim", "get_rewards", "get_pending", "split_fee",
    "settle", "challenge", "submit_verdict", "resolve", "get_challenge", "list_challenges",
    "owed_verdicts", "get_missed_verdicts", "challenges",
    "get_validator_set", "get_epoch", "get_stake", "submit_evidence", "unjail", "propose", "vote", "execute", "get_proposal",
    "PRECOMPILES", "MODULES", "PARAMS", "Ctx", "addresses", "genesis_accounts", "load_abi",
    "sol_source", "get_param", "get_params", "DATANETS", "GOVERNANCE",
    "create_datanet", "contribute", "curate", "publish_version",
    "get_datanet", "get_contribution", "list_contributions", "get_version",
    "get_contribution_proof", "leaf_hash", "merkle_root", "verify_proof",
]
