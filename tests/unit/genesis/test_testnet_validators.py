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
    ({"buildSeconds": 0}, "buildSeconds must"), ({"buildSeconds": "1"}, "buildSeconds must"),
    ({"buildSeconds": 61}, "buildSeconds must"),
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

    init_testnet(tmp_path / "net", 2, _ids, validators=2, consensus={"maxBlockTxs": 500, "timeoutCommit": 0.5,
                                                                            "buildSeconds": 0.25})
    node = load_node_file(tmp_path / "net" / "node0" / "config.json")
    config = consensus_config(node)
    assert config.max_block_txs == 500 and config.timeouts.commit == 0.5 and config.build_seconds == 0.25
    assert consensus_config(None).max_block_txs == 2000 and consensus_config(None).build_seconds == 0.75


def test_with_sidecars_every_validator_names_its_own_and_can_serve(tmp_path):
    import ai_precompiles
    from ai_precompiles.params import CHALLENGE_SPAN, genesis_params
    from genesis.testnet import TESTNET_AI_PARAMS, VALIDATOR_BALANCE

    base = {"weightsHash": "0x" + "11" * 32, "configHash": "0x" + "22" * 32, "tokenizerHash": "0x" + "33" * 32,
            "license": "apache-2.0"}
    nodes = init_testnet(tmp_path / "net", 4, _ids, validators=3, sidecar_port=41000, base_models=[base])
    assert [n.sidecar for n in nodes] == ["127.0.0.1:41000", "127.0.0.1:41001", "127.0.0.1:41002", None]
    assert [n.sidecar_store for n in nodes][:3] == [tmp_path / "net" / f"node{i}" / "sidecar" for i in range(3)]
    assert nodes[3].sidecar_store is None  # a follower serves no inference
    loaded = load_node_file(tmp_path / "net" / "node1" / "config.json")
    assert loaded.sidecar == "127.0.0.1:41001" and loaded.sidecar_store == (tmp_path / "net" / "node1" / "sidecar").resolve()
    genesis = load_genesis(tmp_path / "net" / "genesis.json")
    assert {k: genesis.ai[k] for k in TESTNET_AI_PARAMS} == TESTNET_AI_PARAMS
    window, verdicts, unbonding = (genesis_params({k: v for k, v in genesis.ai.items() if "." in k})[n]
                                   for n in CHALLENGE_SPAN)
    assert window > 1 and window + verdicts <= unbonding
    assert genesis.ai["baseModels"][0]["weightsHash"] == base["weightsHash"]
    ai_precompiles.genesis_accounts(genesis.ai)  # the chain accepts it (bounds and the window rule)
    # A lone validator with a sidecar is staked and funded, so it can record receipts.
    single = init_testnet(tmp_path / "one", 2, _ids, sidecar_port=42000)
    one = load_genesis(tmp_path / "one" / "genesis.json")
    address = bytes(keys.PrivateKey(bytes.fromhex(single[0].validator_key.read_text().strip()[2:]))
                    .public_key.to_canonical_address())
    assert one.ai["validators"] == {"0x" + address.hex(): VALIDATOR_STAKE}
    assert one.alloc[address].balance == VALIDATOR_BALANCE and len(one.validators) == 1
    assert single[0].sidecar == "127.0.0.1:42000" and single[1].sidecar is None


def test_every_testnet_sets_a_networks_challenge_window(tmp_path):
    from genesis.testnet import TESTNET_AI_PARAMS

    init_testnet(tmp_path / "net", 2, _ids)
    assert load_genesis(tmp_path / "net" / "genesis.json").ai["inference.challenge_window"] == \
        TESTNET_AI_PARAMS["inference.challenge_window"] > 1


@pytest.mark.parametrize("value", ["nohost", "host:", "host:port", "h:70000", 5, ""])
def test_a_bad_sidecar_address_is_refused_by_name(tmp_path, value):
    init_testnet(tmp_path / "net", 2, _ids, validators=2, sidecar_port=41000)
    path = tmp_path / "net" / "node0" / "config.json"
    doc = json.loads(path.read_text())
    doc["sidecar"] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(GenesisError, match="sidecar must be"):
        load_node_file(path)
