"""The dev chain's genesis: the standard development mnemonic's accounts, prefunded as
anvil and Hardhat do, on ailedger's own chain id.

Importing this module is light: eth-account (about 0.6 s with its HD-wallet code) is imported
by the functions that derive keys, so the CLI and tools read the ``DEV_*`` constants from here
instead of keeping copies.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genesis.format import Genesis, GenesisAccount, GenesisValidator

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

#: The mnemonic every Ethereum dev tool prefunds (anvil, Hardhat, Foundry).
DEV_MNEMONIC = "test test test test test test test test test test test junk"
#: ailedger's dev chain id (anvil and Hardhat use 31337; ours differs so wallets keep them apart).
DEV_CHAIN_ID = 31415
DEV_GAS_LIMIT = 30_000_000
DEV_BASE_FEE = 1_000_000_000
DEV_BALANCE_ETH = 10_000
#: Derivation path of the dev accounts; ``{}`` is the account index.
DEV_PATH = "m/44'/60'/0'/0/{}"
#: The dev validator's key comes from another branch of the same mnemonic, so that
#: block rewards never change a dev account's balance (anvil's coinbase is not one either).
DEV_VALIDATOR_PATH = "m/44'/60'/1'/0/0"
#: AI parameters of the dev chain: a receipt's payouts settle from the next block, so that on
#: automine `infer` then `rewards claim` pays at once (the claim settles first). With a one-block
#: window a receipt can only be challenged in its own block; a chain that wants to exercise
#: challenges sets a longer ``inference.challenge_window`` in its genesis file.
DEV_AI_PARAMS: dict[str, int] = {"inference.challenge_window": 1}


def _from_mnemonic(mnemonic: str, path: str) -> LocalAccount:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()  # a flag eth-account wants before mnemonics
    return Account.from_mnemonic(mnemonic, account_path=path)


@dataclass(frozen=True)
class DevAccount:
    """One prefunded dev account."""

    address: str
    """Checksummed address."""
    private_key: bytes
    """32-byte secp256k1 private key (the dev mnemonic is public: never use it for value)."""


def derive_accounts(mnemonic: str, count: int, path: str = DEV_PATH) -> list[DevAccount]:
    """The first ``count`` accounts of ``mnemonic`` along BIP-44 ``path``."""
    accounts = []
    for i in range(count):
        acct = _from_mnemonic(mnemonic, path.format(i))
        accounts.append(DevAccount(acct.address, bytes(acct.key)))
    return accounts


def derive_validator_key(mnemonic: str) -> bytes:
    """The dev validator's key: the first account of ``mnemonic``'s second BIP-44 account."""
    return bytes(_from_mnemonic(mnemonic, DEV_VALIDATOR_PATH).key)


def dev_genesis(
    chain_id: int = DEV_CHAIN_ID,
    mnemonic: str = DEV_MNEMONIC,
    accounts: int = 20,
    balance_eth: int = DEV_BALANCE_ETH,
    gas_limit: int = DEV_GAS_LIMIT,
    base_fee: int = DEV_BASE_FEE,
    timestamp: int | None = None,
    extra_alloc: dict[bytes, GenesisAccount] | None = None,
    validator_stake: int = 0,
    base_models: Sequence[dict[str, str]] = (),
) -> Genesis:
    """A one-validator genesis that prefunds ``accounts`` accounts of ``mnemonic``.

    ``validator_stake`` (wei) stakes the dev validator in block 0 and ``base_models`` registers
    base models there (``ai.baseModels``, see ``ai_precompiles.registry.genesis_storage``, with
    the validator as author when an entry names none): what ``ailedger dev`` needs to serve
    inference is then in the genesis state, and a script that starts at once sees block 0, as
    on anvil, rather than set-up blocks mined after the node listens.
    """
    alloc = {
        bytes.fromhex(a.address[2:]): GenesisAccount(balance=balance_eth * 10**18)
        for a in derive_accounts(mnemonic, accounts)
    }
    alloc.update(extra_alloc or {})
    validator = _from_mnemonic(mnemonic, DEV_VALIDATOR_PATH)
    ai: dict[str, Any] = dict(DEV_AI_PARAMS)
    if validator_stake:
        ai["validators"] = {validator.address: validator_stake}
    if base_models:
        ai["baseModels"] = [{"author": validator.address, **m} for m in base_models]
    return Genesis(
        chain_id=chain_id,
        timestamp=int(time.time()) if timestamp is None else timestamp,
        gas_limit=gas_limit,
        base_fee=base_fee,
        coinbase=b"\x00" * 20,
        alloc=alloc,
        validators=(GenesisValidator(bytes.fromhex(validator.address[2:]), 1),),
        ai=ai,
    )
