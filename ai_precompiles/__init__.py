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

The package imports lazily (PEP 562): ``import ai_precompiles.addresses`` or ``typed_data``
does not load py-evm, so the CLI and tools read the addresses and the module names
(:data:`addresses.BY_NAME`, the one list of them) without paying for the VM. Every public name
below loads its submodule on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

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
        upgrades,
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

    #: module name (as in ``abi/<Name>.json``, in the order of ``addresses.BY_NAME``) -> precompile
    MODULES: dict[str, Precompile]
    #: address (20 bytes) -> precompile function ``fn(computation) -> computation``
    PRECOMPILES: dict[bytes, Callable[[Any], Any]]

#: Public name -> (submodule, name there): what ``ai_precompiles.<name>`` loads on first use.
_EXPORTS: dict[str, tuple[str, str]] = {
    "load_abi": ("abi", "load"), "sol_source": ("abi", "sol_source"),
    "BY_NAME": ("addresses", "BY_NAME"), "DATANETS": ("addresses", "DATANETS"),
    "GOVERNANCE": ("addresses", "GOVERNANCE"),
    "Ctx": ("context", "Ctx"),
    **{name: ("challenges", name) for name in (
        "challenge", "get_challenge", "get_missed_verdicts", "list_challenges", "owed_verdicts", "resolve",
        "submit_verdict")},
    **{name: ("datanets", name) for name in (
        "contribute", "create_datanet", "curate", "get_contribution", "get_contribution_proof",
        "get_datanet", "get_version", "list_contributions", "publish_version")},
    "Precompile": ("dispatch", "Precompile"),
    **{name: ("governance", name) for name in ("execute", "get_proposal", "propose", "vote")},
    **{name: ("inference", name) for name in (
        "deposit", "get_deposit", "get_inference", "get_receipt", "receipt_id_for_request",
        "settle", "submit_receipt", "withdraw")},
    **{name: ("merkle", name) for name in ("leaf_hash", "merkle_root", "verify_proof")},
    **{name: ("params", name) for name in ("PARAMS", "genesis_params", "get_param", "get_params", "param_slot")},
    **{name: ("registry", name) for name in (
        "get_lineage", "get_model", "register_adapter", "register_base_model", "retire_adapter")},
    **{name: ("rewards", name) for name in ("claim", "get_pending", "get_rewards", "split_fee")},
    **{name: ("staking", name) for name in ("get_epoch", "get_stake", "get_validator_set", "submit_evidence", "unjail")},
}


def _load_modules() -> dict[str, Precompile]:
    """Each name of ``addresses.BY_NAME`` -> the ``PRECOMPILE`` of the submodule that declares
    that name. Every submodule is looked at, so a new precompile is its own module plus its
    entry in ``BY_NAME``; a precompile without an address, or an address without a precompile,
    fails here, at first use, rather than as a call that reverts."""
    from .addresses import BY_NAME
    from .dispatch import Precompile

    found: dict[str, Precompile] = {}
    for info in pkgutil.iter_modules(__path__):
        declared = getattr(importlib.import_module(f"{__name__}.{info.name}"), "PRECOMPILE", None)
        if isinstance(declared, Precompile):
            if declared.name in found or BY_NAME.get(declared.name) != declared.address:
                raise ImportError(f"precompile {declared.name} ({info.name}.py) is declared twice or not at "
                                  "its address in addresses.BY_NAME")
            found[declared.name] = declared
    if set(found) != set(BY_NAME):
        raise ImportError(f"addresses.BY_NAME names {sorted(set(BY_NAME) - set(found))} with no precompile module")
    return {name: found[name] for name in BY_NAME}


def _modules() -> dict[str, Precompile]:
    if "MODULES" not in globals():
        globals()["MODULES"] = _load_modules()
    modules: dict[str, Precompile] = globals()["MODULES"]
    return modules


def __getattr__(name: str) -> object:
    """PEP 562: load a public name (or a submodule) the first time it is asked for."""
    value: object
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    elif name == "MODULES":
        value = _modules()
    elif name == "PRECOMPILES":
        value = {m.address: m for m in _modules().values()}
    elif name in {info.name for info in pkgutil.iter_modules(__path__)}:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


#: Code of each precompile account. Never executed (the precompile table is consulted first),
#: but Solidity (>= 0.8.10) checks ``extcodesize`` before a call whose function returns
#: nothing, and would revert on an empty account. 0xFE (INVALID) is what a stub should be.
CODE_STUB = b"\xfe"


def genesis_accounts(params: dict[str, Any] | None = None) -> dict[bytes, dict[str, Any]]:
    """Accounts the AI modules need at genesis: address -> {balance, nonce, code, storage}.

    ``params`` overrides governance parameter defaults (names as in ``params.PARAMS``); values
    are checked against their bounds. ``params["validators"] = {"0xaddr": stake_wei}`` stakes
    genesis validators (effective from epoch 0; the staking account holds their wei);
    ``params["baseModels"]`` registers base models in block 0 (``registry.genesis_storage``).
    """
    from . import registry, staking
    from .addresses import BY_NAME, GOVERNANCE, MODEL_REGISTRY, STAKING
    from .params import genesis_params, param_slot

    params = dict(params or {})
    validators = staking.parse_validators(params.pop("validators", None))
    models = registry.genesis_storage(params.pop("baseModels", None))
    values = genesis_params(params)
    accounts: dict[bytes, dict[str, Any]] = {
        addr: {"balance": 0, "nonce": 1, "code": CODE_STUB, "storage": {}} for addr in BY_NAME.values()
    }
    accounts[GOVERNANCE]["storage"] = {param_slot(n): v + 1 for n, v in values.items()}
    accounts[STAKING]["storage"] = staking.genesis_storage(values, validators)
    accounts[STAKING]["balance"] = sum(validators.values())
    accounts[MODEL_REGISTRY]["storage"] = models
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
    "datanets", "registry", "inference", "rewards", "staking", "governance", "upgrades", "BY_NAME",
    "Precompile", "CODE_STUB", "genesis_params", "param_slot",
]
