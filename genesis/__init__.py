"""Genesis: the genesis file format, its validation, chain parameters and the dev accounts.

Importing it is light (no eth-account, no py-evm): the CLI reads the dev constants from here.
"""

from genesis.dev import (
    DEV_BALANCE_ETH,
    DEV_BASE_FEE,
    DEV_CHAIN_ID,
    DEV_GAS_LIMIT,
    DEV_MNEMONIC,
    DEV_PATH,
    DevAccount,
    derive_accounts,
    derive_validator_key,
    dev_genesis,
)
from genesis.format import (
    POWER_UNIT,
    Genesis,
    GenesisAccount,
    GenesisError,
    GenesisValidator,
    decode_genesis,
    load_genesis,
    save_genesis,
)

__all__ = [
    "DEV_BALANCE_ETH", "DEV_BASE_FEE", "DEV_CHAIN_ID", "DEV_GAS_LIMIT", "DEV_MNEMONIC", "DEV_PATH",
    "POWER_UNIT", "DevAccount", "Genesis", "GenesisAccount", "GenesisError", "GenesisValidator", "decode_genesis",
    "derive_accounts", "derive_validator_key", "dev_genesis", "load_genesis", "save_genesis",
]
