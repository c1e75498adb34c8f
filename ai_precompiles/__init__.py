"""The AI state machine: datanets, model registry, inference receipts, rewards, staking and
governance, each a native precompile that keeps its records in its own account's storage.

Contract with ``state/``:

- :data:`PRECOMPILES` maps each 20-byte address to ``fn(computation) -> computation``; the VM
  merges it onto Prague's table.
- :func:`genesis_accounts` gives each precompile account (nonce 1, so EIP-161 never deletes it)
  and its initial storage (governance parameters, staking's first epoch anchor).
- Read helpers (``get_datanet`` ... ``get_validator_set``) take a read-only py-evm ``StateAPI``
  for the ``ai_`` RPC; operation functions (``contribute``, ``register_adapter``,
  ``submit_receipt``...) take a :class:`Ctx` for the native transaction types, and are the very
  functions the ABI path dispatches to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import addresses, datanets
from .abi import load as load_abi
from .abi import sol_source
from .addresses import BY_NAME, DATANETS, GOVERNANCE
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
from .merkle import leaf_hash, merkle_root, verify_proof
from .params import PARAMS, genesis_params, get_param, get_params, param_slot

MODULES: dict[str, Precompile] = {
    "Datanets": datanets.PRECOMPILE,
}

#: address (20 bytes) -> precompile function ``fn(computation) -> computation``
PRECOMPILES: dict[bytes, Callable[[Any], Any]] = {m.address: m for m in MODULES.values()}


def genesis_accounts(params: dict[str, Any] | None = None) -> dict[bytes, dict[str, Any]]:
    """Accounts the AI modules need at genesis: address -> {balance, nonce, code, storage}.

    ``params`` overrides governance parameter defaults (names as in ``params.PARAMS``); values
    are checked against their bounds.
    """
    values = genesis_params(params)
    accounts: dict[bytes, dict[str, Any]] = {
        addr: {"balance": 0, "nonce": 1, "code": b"", "storage": {}} for addr in BY_NAME.values()
    }
    accounts[GOVERNANCE]["storage"] = {param_slot(n): v + 1 for n, v in values.items()}
    for module in MODULES.values():
        init = getattr(module, "genesis_storage", None)
        if init is not None:
            accounts[module.address]["storage"].update(init(values))
    return accounts


__all__ = [
    "PRECOMPILES", "MODULES", "PARAMS", "Ctx", "addresses", "genesis_accounts", "load_abi",
    "sol_source", "get_param", "get_params", "DATANETS", "GOVERNANCE",
    "create_datanet", "contribute", "curate", "publish_version",
    "get_datanet", "get_contribution", "list_contributions", "get_version",
    "get_contribution_proof", "leaf_hash", "merkle_root", "verify_proof",
]
