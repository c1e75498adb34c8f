"""Fixed addresses of the AI precompiles: one place, so the VM, genesis, the RPC and docs agree.

The AI modules live at ``0x00000000000000000000000000000000000a10NN``. That range is far from
Ethereum's precompiles (0x01-0x11 up to Prague) and from the system contracts that Prague deploys
at high, hash-derived addresses (EIP-2935, EIP-4788, EIP-7002, EIP-7251), so no fork upgrade of
py-evm can collide with it.
"""

from __future__ import annotations


def _addr(n: int) -> bytes:
    return n.to_bytes(20, "big")


#: datanets: creation, contributions, curation, published versions (Merkle roots)
DATANETS = _addr(0xA1001)
#: model registry: base models, adapters, lineage tree
MODEL_REGISTRY = _addr(0xA1002)
#: inference receipts: requester deposits, signed requests, validator receipts
INFERENCE = _addr(0xA1003)
#: rewards: claimable balances from fee splits, claims
REWARDS = _addr(0xA1004)
#: staking: stakes, unbonding, validator set per epoch
STAKING = _addr(0xA1005)
#: governance: protocol parameters, proposals, votes, execution
GOVERNANCE = _addr(0xA1006)
#: default protocol treasury: an address with no code and no known key; governance can point
#: the ``treasury`` parameter elsewhere, and the treasury's accrued rewards wait for it there.
DEFAULT_TREASURY = _addr(0xA10FF)

#: module name (as in ``abi/<Name>.json``) -> address
BY_NAME: dict[str, bytes] = {
    "Datanets": DATANETS,
    "ModelRegistry": MODEL_REGISTRY,
    "Inference": INFERENCE,
    "Rewards": REWARDS,
    "Staking": STAKING,
    "Governance": GOVERNANCE,
}


def checksum(address: bytes) -> str:
    """The EIP-55 form, for docs, logs and the RPC."""
    # eth_utils loads on use (0.1-0.2 s): the CLI imports this module to build its --help.
    from eth_utils import to_checksum_address

    return to_checksum_address(address)
