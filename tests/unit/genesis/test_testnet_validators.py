"""`testnet init --validators N`: every validator gets a key, an equal stake in the genesis
validator list and in the staking precompile; consensus timeouts in a node config are checked."""

import json

import pytest
from eth_keys import keys

from genesis import GenesisError, load_genesis
from genesis.testnet import VALIDATOR_STAKE, init_testnet, load_node_file


def _ids(path):
    path.write_text("key")
    return f"peer-{path.parent.name}"


def test_every_validator_has_a_key_and_stake_in_genesis(tmp_path):
    nodes = init_testnet(tmp_path / "net", 5, _ids, validators=4, consensus={"timeoutCommit": 0.5})
    genesis = load_genesis(tmp_path / "net" / "genesis.json")
    keyed = [n for n in nodes if n.validator_key is not None]
    assert len(keyed) == 4 and nodes[4].validator_key is None
    addresses = [bytes(keys.PrivateKey(bytes.fromhex(n.validator_key.read_text().strip()[2:]))
                       .public_key.to_canonical_address()) for n in keyed]
    assert [v.address for v in genesis.validators] == addresses
    assert {v.power for v in genesis.validators} == {VALIDATOR_STAKE // 10**9}
    assert genesis.ai["validators"] == {"0x" + a.hex(): VALIDATOR_STAKE for a in addresses}
    assert all(n.block_time is None for n in nodes)  # blocks come from consensus, not a timer
    assert load_node_file(tmp_path / "net" / "node0" / "config.json").consensus == {"timeoutCommit": 0.5}
    assert load_node_file(tmp_path / "net" / "node4" / "config.json").consensus == {}


def test_single_validator_testnet_is_unchanged(tmp_path):
    nodes = init_testnet(tmp_path / "net", 3, _ids)
    genesis = load_genesis(tmp_path / "net" / "genesis.json")
    assert len(genesis.validators) == 1 and genesis.validators[0].power == 1
    assert nodes[0].validator_key is not None and nodes[0].block_time == 1.0
    assert nodes[1].validator_key is None and "validators" not in genesis.ai


@pytest.mark.parametrize("consensus, message", [
    ({"timeoutPropse": 1}, "unknown"), ({"timeoutCommit": -1}, "0..600"), ({"timeoutCommit": True}, "0..600"),
    ([1], "object"), ({"maxBlockTxs": 0}, "1..10000"), ({"maxBlockTxs": 2.5}, "whole number"),
    ({"maxBlockTxs": True}, "whole number"), ({"maxBlockTxs": 10**6}, "1..10000"),
])
def test_bad_consensus_timeouts_are_refused_by_name(tmp_path, consensus, message):
    init_testnet(tmp_path / "net", 2, _ids, validators=2)
    path = tmp_path / "net" / "node0" / "config.json"
    doc = json.loads(path.read_text())
    doc["consensus"] = consensus
    path.write_text(json.dumps(doc))
    with pytest.raises(GenesisError, match=message):
        load_node_file(path)


def test_more_validators_than_nodes_is_refused(tmp_path):
    with pytest.raises(GenesisError, match="--validators"):
        init_testnet(tmp_path / "net", 2, _ids, validators=3)


def test_max_block_txs_reaches_the_reactor_config(tmp_path):
    from node.cli.chain import consensus_config

    init_testnet(tmp_path / "net", 2, _ids, validators=2, consensus={"maxBlockTxs": 500, "timeoutCommit": 0.5})
    node = load_node_file(tmp_path / "net" / "node0" / "config.json")
    config = consensus_config(node)
    assert config.max_block_txs == 500 and config.timeouts.commit == 0.5
    assert consensus_config(None).max_block_txs == 200
