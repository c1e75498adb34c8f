"""A local testnet: one genesis, and a key and a config per node.

``ailedger testnet init --nodes 4 --dir DIR`` writes::

    DIR/genesis.json            the chain (dev mnemonic accounts prefunded, node0 validates)
    DIR/node0/config.json       how to run node 0 (ports, peers, keys, datadir)
    DIR/node0/validator.key     node 0's validator key (hex), only on the validator
    DIR/node0/nodekey           node 0's libp2p identity
    DIR/node1/...               followers: no validator key

``--validators N`` makes nodes 0..N-1 validators instead, each with its own key and an equal
stake in genesis (the genesis ``validators`` list, powers in gwei of stake, and the staking
precompile's genesis stakes); they run BFT consensus (docs/consensus.md) and the others follow.

With sidecars (``sidecar_port``; ``ailedger testnet init`` gives them unless ``--no-sidecars``)
every validator's config names its own sidecar (``sidecar``: host:port, ``sidecarStore``: its
folder, ``DIR/nodeI/sidecar``) and ``testnet up`` starts them; a lone validator is then staked
and funded in genesis like BFT validators, so it can record receipts, and ``base_models`` are
registered in block 0 (the CLI passes the sidecar's shipped base model). Every testnet's
genesis sets the AI parameters of a network (``TESTNET_AI_PARAMS``) rather than the dev chain's
one-block challenge window.

The config file is JSON; paths in it are relative to the config file's folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesis.dev import DEV_CHAIN_ID, dev_genesis
from genesis.format import POWER_UNIT, GenesisAccount, GenesisError, GenesisValidator, save_genesis

#: The testnet's chain id differs from the dev chain's, so wallets keep them apart.
TESTNET_CHAIN_ID = DEV_CHAIN_ID + 1
#: Stake of each BFT testnet validator in genesis (wei): 1,000 ETH.
VALIDATOR_STAKE = 1000 * 10**18
#: Balance of each BFT testnet validator's account in genesis (wei): gas for the transactions it
#: sends itself, such as double-sign evidence (docs/consensus.md §7).
VALIDATOR_BALANCE = 100 * 10**18
#: The consensus timeouts a config file may set (seconds), by their JSON names.
TIMEOUT_FIELDS = {
    "timeoutPropose": "propose", "timeoutProposeDelta": "propose_delta",
    "timeoutPrevote": "prevote", "timeoutPrevoteDelta": "prevote_delta",
    "timeoutPrecommit": "precommit", "timeoutPrecommitDelta": "precommit_delta",
    "timeoutCommit": "commit",
}
#: ``consensus.maxBlockTxs`` (most transactions a proposal takes from the pool) is at most this;
#: ``consensus.buildSeconds`` is the wall-clock budget of building a proposal (0 < s <= 60).
MAX_BLOCK_TXS_LIMIT = 10_000
#: AI parameters of a testnet: a receipt's payouts stay pending for 20 blocks (about 20 s of BFT
#: blocks on loopback), time for anyone to re-run it and challenge; a committee then has 40
#: blocks to re-run it on its sidecars and vote (a re-run costs about one inference, and a member
#: may first have to fetch the adapter). Within the rule ``challenge_window + verdict_window <=
#: staking.unbonding_blocks`` (default 200) that ``ai_precompiles.params`` checks: an accused
#: validator cannot unbond before a challenge against it is decided.
TESTNET_AI_PARAMS: dict[str, int] = {"inference.challenge_window": 20, "inference.verdict_window": 40}
#: gRPC port of node0's sidecar; node i's is this + i.
SIDECAR_PORT = 50051


@dataclass(frozen=True)
class NodeFile:
    """One node's config file."""

    genesis: Path
    """The chain's genesis file."""
    datadir: Path
    """The node's LevelDB directory."""
    host: str = "127.0.0.1"
    """Interface for JSON-RPC and p2p."""
    rpc_port: int = 8545
    """JSON-RPC port (HTTP and WebSocket)."""
    p2p_port: int = 30303
    """libp2p TCP port."""
    node_key: Path | None = None
    """libp2p identity file (default: ``nodekey`` in the datadir)."""
    peers: list[str] = field(default_factory=list)
    """Static peers as /ip4/.../tcp/.../p2p/<peer id> multiaddrs."""
    validator_key: Path | None = None
    """File with the validator's hex private key; None makes the node a follower."""
    block_time: float | None = None
    """Seconds between blocks on the validator; None mines one per transaction."""
    peer_id: str = ""
    """This node's peer id (informative: it follows from ``node_key``)."""
    consensus: dict[str, float] = field(default_factory=dict)
    """BFT timeouts in seconds by the names of ``TIMEOUT_FIELDS`` (``consensus.driver.TimeoutConfig``
    field names); missing ones take the node's defaults."""
    sidecar: str | None = None
    """gRPC address (host:port) of this validator's sidecar: with a validator key, the node serves
    ai_inferQuote and ai_infer through it. None: no AI service."""
    sidecar_store: Path | None = None
    """The folder of the sidecar ``testnet up`` starts for this node (adapters, request journal);
    None when the operator runs the sidecar."""

    def encode(self, base: Path) -> dict[str, Any]:
        def rel(p: Path | None) -> str | None:
            return None if p is None else os.path.relpath(p, base)

        return {
            "genesis": rel(self.genesis), "datadir": rel(self.datadir), "host": self.host,
            "rpcPort": self.rpc_port, "p2pPort": self.p2p_port, "nodeKey": rel(self.node_key),
            "peers": self.peers, "validatorKey": rel(self.validator_key),
            "blockTime": self.block_time, "peerId": self.peer_id,
            **({"consensus": {k: v for k, v in self.consensus.items()}} if self.consensus else {}),
            **({"sidecar": self.sidecar} if self.sidecar else {}),
            **({"sidecarStore": rel(self.sidecar_store)} if self.sidecar_store else {}),
        }


def load_node_file(path: Path) -> NodeFile:
    """Read a node config; errors name the field at fault."""
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise GenesisError(f"{path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise GenesisError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise GenesisError(f"{path}: must be a JSON object")
    base = path.resolve().parent

    def opt_path(name: str) -> Path | None:
        value = doc.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise GenesisError(f"{path}: {name} must be a path")
        return base / value

    def integer(name: str, default: int) -> int:
        value = doc.get(name, default)
        if not isinstance(value, int) or not 0 <= value <= 65535:
            raise GenesisError(f"{path}: {name} must be a port number")
        return value

    genesis, datadir = opt_path("genesis"), opt_path("datadir")
    if genesis is None or datadir is None:
        raise GenesisError(f"{path}: genesis and datadir are required")
    peers = doc.get("peers", [])
    if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
        raise GenesisError(f"{path}: peers must be a list of multiaddr strings")
    block_time = doc.get("blockTime")
    if block_time is not None and (not isinstance(block_time, int | float) or block_time <= 0):
        raise GenesisError(f"{path}: blockTime must be a positive number of seconds")
    host = doc.get("host", "127.0.0.1")
    if not isinstance(host, str):
        raise GenesisError(f"{path}: host must be a string")
    consensus = doc.get("consensus", {})
    if not isinstance(consensus, dict):
        raise GenesisError(f"{path}: consensus must be an object of timeouts")
    for name, value in consensus.items():
        if name == "maxBlockTxs":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BLOCK_TXS_LIMIT:
                raise GenesisError(f"{path}: consensus.maxBlockTxs must be a whole number in 1..{MAX_BLOCK_TXS_LIMIT}")
            continue
        if name == "buildSeconds":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 60:
                raise GenesisError(f"{path}: consensus.buildSeconds must be a number of seconds in (0, 60]")
            continue
        if name not in TIMEOUT_FIELDS:
            known = ", ".join(sorted([*TIMEOUT_FIELDS, "maxBlockTxs", "buildSeconds"]))
            raise GenesisError(f"{path}: consensus.{name}: unknown (known: {known})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 600:
            raise GenesisError(f"{path}: consensus.{name} must be a number of seconds in 0..600")
    sidecar = doc.get("sidecar")
    if sidecar is not None and not _is_address(sidecar):
        raise GenesisError(f"{path}: sidecar must be a host:port gRPC address, like 127.0.0.1:50051")
    return NodeFile(
        genesis=genesis, datadir=datadir, host=host,
        rpc_port=integer("rpcPort", 8545), p2p_port=integer("p2pPort", 30303),
        node_key=opt_path("nodeKey"), peers=list(peers), validator_key=opt_path("validatorKey"),
        block_time=None if block_time is None else float(block_time), peer_id=str(doc.get("peerId", "")),
        consensus={k: int(v) if k == "maxBlockTxs" else float(v) for k, v in consensus.items()},
        sidecar=sidecar, sidecar_store=opt_path("sidecarStore"),
    )


def _is_address(value: Any) -> bool:
    """``host:port`` with a port number (gRPC's plain target form)."""
    if not isinstance(value, str) or len(value) > 255:
        return False
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) <= 65535


def init_testnet(
    directory: Path,
    nodes: int,
    make_node_key: Callable[[Path], str],
    chain_id: int = TESTNET_CHAIN_ID,
    host: str = "127.0.0.1",
    rpc_port: int = 8545,
    p2p_port: int = 30303,
    block_time: float | None = 1.0,
    validators: int = 0,
    consensus: dict[str, float] | None = None,
    sidecar_port: int | None = None,
    base_models: list[dict[str, str]] | None = None,
) -> list[NodeFile]:
    """Write a testnet of ``nodes`` nodes into ``directory``: node 0 is the only validator, or,
    with ``validators`` > 0, nodes 0..validators-1 are BFT validators with equal stakes.

    ``make_node_key(path)`` creates a libp2p identity at ``path`` and returns its peer id
    (the p2p layer owns that format). Each node dials all lower-numbered nodes. With
    ``sidecar_port``, validator i's sidecar listens on ``sidecar_port + i`` (see the module
    docstring) and ``base_models`` (``ai.baseModels`` entries) are in genesis.
    """
    if nodes < 1:
        raise GenesisError("a testnet needs at least one node")
    if validators < 0 or validators > nodes:
        raise GenesisError(f"--validators must be between 1 and the number of nodes ({nodes})")
    if directory.exists() and any(directory.iterdir()):
        raise GenesisError(f"{directory} is not empty; choose a new --dir")
    from eth_keys import keys  # on use: `import genesis.testnet` stays light for the CLI

    directory.mkdir(parents=True, exist_ok=True)
    bft = validators > 0
    validator_keys = [keys.PrivateKey(os.urandom(32)) for _ in range(max(validators, 1))]
    addresses = [bytes(k.public_key.to_canonical_address()) for k in validator_keys]
    genesis = dev_genesis(chain_id=chain_id)
    ai: dict[str, Any] = {**genesis.ai, **TESTNET_AI_PARAMS}
    if sidecar_port is not None and base_models:
        ai["baseModels"] = [{"author": "0x" + addresses[0].hex(), **m} for m in base_models]
    if bft or sidecar_port is not None:
        # Staked and funded: a BFT validator votes with its stake and pays for the evidence it
        # sends; one that serves inference records receipts, which needs both. Power is stake
        # in gwei (docs/consensus.md §5); the staking precompile holds the same stakes, so
        # ai_getValidatorSet reports this set.
        ai["validators"] = {"0x" + a.hex(): VALIDATOR_STAKE for a in addresses}
        genesis = dataclasses.replace(
            genesis, ai=ai,
            alloc={**genesis.alloc, **{a: GenesisAccount(balance=VALIDATOR_BALANCE) for a in addresses}},
        )
    else:
        genesis = dataclasses.replace(genesis, ai=ai)
    if bft:
        genesis = dataclasses.replace(
            genesis, validators=tuple(GenesisValidator(a, VALIDATOR_STAKE // POWER_UNIT) for a in addresses))
    else:
        genesis = dataclasses.replace(genesis, validators=(GenesisValidator(addresses[0], 1),))
    genesis_path = directory / "genesis.json"
    save_genesis(genesis, genesis_path)
    out: list[NodeFile] = []
    addrs: list[str] = []
    for i in range(nodes):
        folder = directory / f"node{i}"
        folder.mkdir()
        peer_id = make_node_key(folder / "nodekey")
        key_file = None
        if i < len(validator_keys) and (bft or i == 0):
            key_file = folder / "validator.key"
            key_file.write_text("0x" + validator_keys[i].to_bytes().hex() + "\n")
            key_file.chmod(0o600)
        serves = sidecar_port is not None and key_file is not None
        node = NodeFile(
            genesis=genesis_path, datadir=folder / "chain", host=host,
            rpc_port=rpc_port + i, p2p_port=p2p_port + i, node_key=folder / "nodekey",
            peers=list(addrs), validator_key=key_file,
            block_time=block_time if i == 0 and not bft else None,
            peer_id=peer_id, consensus=dict(consensus or {}) if bft and key_file is not None else {},
            sidecar=f"{host}:{sidecar_port + i}" if serves and sidecar_port is not None else None,
            sidecar_store=folder / "sidecar" if serves else None,
        )
        (folder / "config.json").write_text(json.dumps(node.encode(folder), indent=2) + "\n")
        addrs.append(f"/ip4/{host}/tcp/{p2p_port + i}/p2p/{peer_id}")
        out.append(node)
    return out
