"""Genesis: the genesis file format, its validation, chain parameters and the dev accounts."""

from genesis.dev import DEV_CHAIN_ID, DEV_MNEMONIC, DevAccount, derive_accounts, dev_genesis
from genesis.format import (
    Genesis,
    GenesisAccount,
    GenesisError,
    GenesisValidator,
    decode_genesis,
    load_genesis,
    save_genesis,
)

__all__ = [
    "DEV_CHAIN_ID", "DEV_MNEMONIC", "DevAccount", "Genesis", "GenesisAccount",
    "GenesisError", "GenesisValidator", "decode_genesis", "derive_accounts",
    "dev_genesis", "load_genesis", "save_genesis",
]
