"""The AI state machine: datanets, model registry, inference receipts, rewards, staking
and governance, each a native precompile that keeps its records in its own storage."""

from __future__ import annotations

from typing import Any, Callable

#: address (20 bytes) -> precompile function ``fn(computation) -> computation``
PRECOMPILES: dict[bytes, Callable[[Any], Any]] = {}


def genesis_accounts(params: dict[str, Any] | None = None) -> dict[bytes, dict[str, Any]]:
    """Accounts the AI modules need at genesis: address -> {balance, nonce, code, storage}."""
    return {}
