import json

import pytest

from genesis import (
    DEV_CHAIN_ID,
    DEV_MNEMONIC,
    GenesisError,
    decode_genesis,
    derive_accounts,
    dev_genesis,
    load_genesis,
    save_genesis,
)

# Addresses every Ethereum dev tool shows for the standard mnemonic (anvil, Hardhat).
ANVIL_FIRST = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_SECOND = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ANVIL_LAST = "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199"


def test_dev_accounts_are_the_standard_mnemonic_accounts():
    accounts = derive_accounts(DEV_MNEMONIC, 20)
    assert accounts[0].address == ANVIL_FIRST
    assert accounts[1].address == ANVIL_SECOND
    assert accounts[19].address == ANVIL_LAST
    assert accounts[0].private_key.hex() == "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_dev_genesis_prefunds_twenty_accounts_on_its_own_chain_id():
    g = dev_genesis(timestamp=1)
    assert g.chain_id == DEV_CHAIN_ID != 31337
    assert len(g.alloc) == 20
    assert {a.balance for a in g.alloc.values()} == {10_000 * 10**18}
    assert len(g.validators) == 1
    # The validator is not one of the dev accounts, so fees never move their balances.
    assert g.validators[0].address not in g.alloc


def test_round_trip_through_a_file(tmp_path):
    g = dev_genesis(timestamp=123, accounts=3)
    path = tmp_path / "genesis.json"
    save_genesis(g, path)
    assert load_genesis(path) == g


def _doc(**changes):
    doc = dev_genesis(timestamp=5, accounts=1).encode()
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"chainId": 0}, "chainId"),
        ({"chainId": "0xzz"}, "chainId"),
        ({"gasLimit": 100}, "gasLimit"),
        ({"gaslimit": 1}, "gaslimit"),
        ({"baseFeePerGas": -1}, "baseFeePerGas"),
        ({"extraData": "0x" + "00" * 33}, "extraData"),
        ({"coinbase": "0x1234"}, "coinbase"),
        ({"alloc": {"0xnothex": {"balance": "1"}}}, "alloc.0xnothex"),
        ({"alloc": {"0x" + "11" * 20: {"balance": "ten"}}}, "balance"),
        ({"alloc": {"0x" + "11" * 20: {"code": "60"}}}, "code"),
        ({"alloc": {"0x" + "11" * 20: {"balanse": 1}}}, "balanse"),
        ({"validators": [{"address": "0x" + "11" * 20, "power": 0}]}, "validators"),
        ({"validators": "me"}, "validators"),
        ({"ai": []}, "ai"),
    ],
)
def test_validation_names_the_bad_field(changes, field):
    with pytest.raises(GenesisError) as err:
        decode_genesis(_doc(**changes))
    assert field in str(err.value)


def test_missing_required_field():
    doc = _doc()
    del doc["chainId"]
    with pytest.raises(GenesisError, match="chainId: missing"):
        decode_genesis(doc)


def test_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "g.json"
    bad.write_text("{not json")
    with pytest.raises(GenesisError, match="not JSON"):
        load_genesis(bad)
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(tmp_path / "missing.json")


def test_quantities_accept_decimal_and_hex():
    doc = _doc(gasLimit="0x1c9c380", baseFeePerGas="7")
    g = decode_genesis(json.loads(json.dumps(doc)))
    assert g.gas_limit == 30_000_000
    assert g.base_fee == 7
