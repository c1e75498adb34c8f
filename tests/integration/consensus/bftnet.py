"""A BFT testnet of real `ailedger run` processes on loopback, for the consensus tests.

Every node traces the votes it sends and receives (``AILEDGER_TRACE_VOTES``) into
``datadir/consensus-votes.log``; :func:`double_signs` reads all of them, so a validator that
ever signed two different votes for one height/round/step is caught whoever saw the votes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from genesis import load_genesis
from tests.integration.p2p.netsupport import free_port_range, head, result, wait_for
from tests.support.procs import VENV_BIN, Proc, free_port, start_ailedger, wait_rpc

#: Timeouts for tests on a loaded 2-core machine: the defaults, with a shorter commit pause.
TEST_CONSENSUS = {"timeoutCommit": 0.5}


@dataclass
class Net:
    directory: Path
    tmp: Path
    n: int
    procs: dict[int, Proc] = field(default_factory=dict)

    def config(self, i: int) -> dict:
        return json.loads((self.directory / f"node{i}" / "config.json").read_text())

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.config(i)['rpcPort']}"

    @property
    def chain_id(self) -> int:
        return load_genesis(self.directory / "genesis.json").chain_id

    extra: dict[int, list[str]] = field(default_factory=dict)
    """Extra `ailedger run` flags per node (kept across restarts)."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of every node (test-only switches)."""

    def launch(self, i: int) -> Proc:
        path = self.directory / f"node{i}" / "config.json"
        env = {"AILEDGER_TRACE_VOTES": "1", "AILEDGER_ALLOW_BYZANTINE": "1", "AILEDGER_ALLOW_FAULTS": "1", **self.env}
        p = start_ailedger(["--config", str(path), *self.extra.get(i, [])], self.tmp, command="run", env=env,
                           url=self.url(i), wait=False, log_name=f"node{i}-{time.monotonic_ns()}.log")
        self.procs[i] = p
        return p

    def start(self, *which: int) -> None:
        """Start nodes (all by default) at once and wait until each answers RPC."""
        nodes = list(which or range(self.n))
        started = [self.launch(i) for i in nodes]
        for i, p in zip(nodes, started, strict=True):
            try:
                wait_rpc(p.url, p.proc, timeout=90)
            except Exception:
                if "Address already in use" not in p.output() or f":{self.config(i)['rpcPort']} " not in p.output():
                    raise RuntimeError(f"node did not start:\n{p.output()[-3000:]}") from None
                # another process took the RPC port picked at init (nobody else names it): a new one
                path = self.directory / f"node{i}" / "config.json"
                path.write_text(json.dumps({**self.config(i), "rpcPort": free_port()}, indent=2))
                p = self.launch(i)
                try:
                    wait_rpc(p.url, p.proc, timeout=90)
                except Exception:
                    raise RuntimeError(f"node did not start:\n{p.output()[-3000:]}") from None

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        p = self.procs[i]
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            os.kill(p.proc.pid, sig)
            return
        p.kill(sig)

    def stop_all(self) -> None:
        for p in self.procs.values():
            try:
                os.kill(p.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.kill()

    def heads(self, nodes: list[int] | None = None) -> list[int]:
        return [head(self.url(i)) for i in (nodes if nodes is not None else range(self.n))]

    def wait_heads(self, at_least: int, nodes: list[int] | None = None, timeout: float = 60.0) -> None:
        wait_for(lambda: min(self.heads(nodes)) >= at_least, timeout, f"heads >= {at_least} on {nodes or 'all'}")

    def blocks(self, i: int, upto: int) -> list[tuple[str, str]]:
        out = []
        for number in range(upto + 1):
            block = result(self.url(i), "eth_getBlockByNumber", [hex(number), False])
            assert isinstance(block, dict), f"node{i} lacks block {number}"
            out.append((block["hash"], block["stateRoot"]))
        return out

    def assert_agree(self, nodes: list[int] | None = None) -> int:
        """Every node has the same block hash and state root at every height up to the lowest
        head; returns that height."""
        nodes = nodes if nodes is not None else list(range(self.n))
        upto = min(self.heads(nodes))
        chains = {i: self.blocks(i, upto) for i in nodes}
        first = chains[nodes[0]]
        for i in nodes[1:]:
            for number, (a, b) in enumerate(zip(first, chains[i], strict=True)):
                assert a == b, f"node{nodes[0]} and node{i} differ at block {number}: {a} vs {b}"
        return upto

    def address(self, i: int) -> str:
        """Node ``i``'s validator address (lower-case hex, no 0x)."""
        from eth_keys import keys

        key = (self.directory / f"node{i}" / "validator.key").read_text().strip()
        return bytes(keys.PrivateKey(bytes.fromhex(key[2:])).public_key.to_canonical_address()).hex()

    def peer_id(self, i: int) -> str:
        return str(self.config(i)["peerId"])

    def set_faults(self, i: int, drop: list[int] | None = None, delay: dict[int, float] | None = None) -> None:
        """Node ``i`` (started with ``--faults``) drops every consensus frame to and from the nodes
        ``drop`` and holds each frame to the nodes of ``delay`` so many seconds (picked up within
        half a second)."""
        doc = {"drop": [self.peer_id(j) for j in drop or []],
               "delay": {self.peer_id(j): s for j, s in (delay or {}).items()}}
        path = self.directory / f"node{i}" / "chain" / "consensus-faults.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)  # atomic: the node never reads half a file

    def partition(self, *sides: list[int]) -> None:
        """Cut the consensus links between the sides (each node drops the other sides' frames)."""
        for side in sides:
            others = [j for other in sides if other is not side for j in other]
            for i in side:
                self.set_faults(i, drop=others)

    def heal(self) -> None:
        for i in range(self.n):
            self.set_faults(i)

    def commits(self) -> dict[int, set[str]]:
        """Height -> block hashes that any node's consensus committed (from the vote traces)."""
        out: dict[int, set[str]] = {}
        for i in range(self.n):
            path = self.directory / f"node{i}" / "chain" / "consensus-votes.log"
            if path.exists():
                for line in path.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == "commit":
                        out.setdefault(int(parts[1]), set()).add(parts[2])
        return out

    def proposals(self, nodes: list[int] | None = None) -> dict[tuple[str, int, int], set[str]]:
        """(proposer, height, round) -> block hashes of every signed proposal the nodes (all by
        default) sent or received."""
        out: dict[tuple[str, int, int], set[str]] = {}
        for i in (nodes if nodes is not None else range(self.n)):
            path = self.directory / f"node{i}" / "chain" / "consensus-votes.log"
            if path.exists():
                for line in path.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 5 and parts[0] == "proposal":
                        out.setdefault((parts[1], int(parts[2]), int(parts[3])), set()).add(parts[4])
        return out

    def logs(self, i: int) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob(f"node{i}-*.log")))

    def votes(self, nodes: list[int] | None = None) -> list[tuple[str, int, int, int, str]]:
        """(validator, height, round, type, block hash) of every vote the nodes (all by default)
        sent or received."""
        out = []
        for i in (nodes if nodes is not None else range(self.n)):
            path = self.directory / f"node{i}" / "chain" / "consensus-votes.log"
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 7 and parts[0] == "vote":
                    out.append((parts[1], int(parts[2]), int(parts[3]), int(parts[4]), parts[5]))
        return out

    def double_signs(self) -> dict[tuple[str, int, int, int], set[str]]:
        """(validator, height, round, type) -> block hashes, for every step signed two ways."""
        seen: dict[tuple[str, int, int, int], set[str]] = {}
        for validator, h, r, t, block_hash in self.votes():
            seen.setdefault((validator, h, r, t), set()).add(block_hash)
        return {k: v for k, v in seen.items() if len(v) > 1}


def init_net(tmp: Path, validators: int = 4, nodes: int | None = None,
             consensus: dict | None = None) -> Net:
    """`ailedger testnet init --validators N` on free ports, without sidecars (consensus tests),
    then the test timeouts."""
    n = nodes or validators
    base = free_port_range(2 * n)
    directory = tmp / "net"
    out = subprocess.run(
        [str(VENV_BIN / "ailedger"), "testnet", "init", "--nodes", str(n), "--validators", str(validators),
         "--dir", str(directory), "--rpc-port", str(base), "--p2p-port", str(base + n), "--no-sidecars"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for i in range(validators):
        path = directory / f"node{i}" / "config.json"
        doc = json.loads(path.read_text())
        doc["consensus"] = {**TEST_CONSENSUS, **(consensus or {})}
        path.write_text(json.dumps(doc, indent=2))
    return Net(directory, tmp, n)
