"""``import genesis`` stays light, so the CLI and tools read the dev constants from it instead
of keeping copies: eth-account and py-evm load only when a key is derived."""

from __future__ import annotations

from tests.support.imports import modules_after

#: Packages that cost from a tenth of a second (eth_utils) to seconds to import, none of which
#: a constant needs.
HEAVY = ("eth_utils", "eth_account", "eth", "trio", "plyvel", "torch")


def test_importing_genesis_loads_no_eth_account_or_py_evm():
    loaded = modules_after("import genesis\nfrom genesis import DEV_CHAIN_ID, DEV_MNEMONIC, POWER_UNIT")
    assert "genesis" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_deriving_a_key_still_works_and_loads_eth_account():
    loaded = modules_after("from genesis import DEV_MNEMONIC, derive_accounts\n"
                           "assert derive_accounts(DEV_MNEMONIC, 1)[0].address == "
                           "'0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'")
    assert "eth_account" in loaded
