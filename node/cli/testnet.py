"""``ailedger testnet``: a local network of nodes, each a separate process talking libp2p on
loopback, written by ``init`` and started together by ``up``, with one sidecar per validator so
that every validator serves inference."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from genesis.testnet import SIDECAR_PORT
from node.cli.errors import CLIError
from node.cli.options import Subparsers, help_only
from node.cli.serving import check_port, die_with_parent, exit_on_sigterm
from node.cli.sidecar_grpc import shipped_base_entry

if TYPE_CHECKING:
    from genesis.testnet import NodeFile


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser("testnet", help="create and run a local multi-node testnet",
                       description="A local network of nodes, each a separate process talking libp2p on "
                       "loopback: N validators running BFT consensus (init --validators N), or by default "
                       "one validator sealing alone, and followers that sync and verify every block; each "
                       "validator with a sidecar of its own, so any validator serves inference.")
    ts = p.add_subparsers(title="testnet commands", metavar="ACTION")
    init = ts.add_parser("init", help="write a genesis, and a key and a config per node")
    init.add_argument("--nodes", type=int, default=None, help="number of nodes; node0 is the validator unless --validators (default: 4, or --validators)")
    init.add_argument("--validators", type=int, default=0, metavar="N",
                      help="nodes 0..N-1 are validators with equal stakes in genesis and run BFT consensus; "
                      "the others follow (default: one validator, node0, sealing alone)")
    init.add_argument("--dir", type=Path, required=True, help="new directory for the testnet")
    init.add_argument("--chain-id", type=int, default=None, help="chain id (default: the dev chain id + 1)")
    init.add_argument("--rpc-port", type=int, default=8545, help="RPC port of node0; node i uses +i (default: %(default)s)")
    init.add_argument("--p2p-port", type=int, default=30303, help="p2p port of node0; node i uses +i (default: %(default)s)")
    init.add_argument("--block-time", type=float, default=1.0, help="seconds between the validator's blocks (default: %(default)s)")
    init.add_argument("--sidecar-port", type=int, default=SIDECAR_PORT,
                      help="gRPC port of node0's sidecar; validator i's uses +i (default: %(default)s)")
    init.add_argument("--no-sidecars", action="store_true",
                      help="give the validators no sidecar: the network serves no inference")
    init.set_defaults(func=cmd_testnet_init)
    up = ts.add_parser("up", help="start every node of a testnet, and each validator's sidecar; Ctrl-C stops them all")
    up.add_argument("--dir", type=Path, required=True, help="directory written by `testnet init`")
    up.add_argument("--no-sidecars", action="store_true",
                    help="start no sidecar: the nodes use the ones their configs name if you run them "
                         "(`ailedger sidecar --port P --store DIR`)")
    up.set_defaults(func=cmd_testnet_up)
    p.set_defaults(func=help_only(p))


def cmd_testnet_init(args: argparse.Namespace) -> int:
    from genesis.testnet import TESTNET_CHAIN_ID, init_testnet
    from p2p.host import peer_id_of_key

    count = args.nodes if args.nodes is not None else max(4, args.validators)
    sidecar_port = None if args.no_sidecars else args.sidecar_port
    if sidecar_port is not None and not 0 < sidecar_port <= 65535 - max(args.validators, 1):
        raise CLIError(f"--sidecar-port {sidecar_port}: the validators' sidecar ports would leave 1..65535")
    base = shipped_base_entry() if sidecar_port is not None else None
    nodes = init_testnet(
        args.dir, count, peer_id_of_key, chain_id=args.chain_id or TESTNET_CHAIN_ID,
        rpc_port=args.rpc_port, p2p_port=args.p2p_port, block_time=args.block_time,
        validators=args.validators, sidecar_port=sidecar_port, base_models=[base] if base else None,
    )
    print(f"Testnet of {len(nodes)} nodes in {args.dir} (genesis {args.dir / 'genesis.json'})")
    for i, node in enumerate(nodes):
        role = "validator" if node.validator_key else "follower"
        sidecar = f"  sidecar {node.sidecar}" if node.sidecar else ""
        print(f"  node{i} {role:9} rpc http://{node.host}:{node.rpc_port}  p2p {node.p2p_port}{sidecar}  peer {node.peer_id}")
    if base is not None:
        print(f"  base model 1 in genesis: the sidecar's shipped one, weights {base['weightsHash']}")
    print(f"Start it with: ailedger testnet up --dir {args.dir}")
    return 0


def cmd_testnet_up(args: argparse.Namespace) -> int:
    import time

    from genesis.testnet import load_node_file

    configs = sorted(args.dir.glob("node*/config.json"), key=lambda p: int(p.parent.name[4:] or 0))
    if not configs:
        print(f"error: no node*/config.json in {args.dir}; run `ailedger testnet init --dir {args.dir}` first", file=sys.stderr)
        return 1
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    sidecars: list[tuple[str, subprocess.Popen[bytes]]] = []
    signal.signal(signal.SIGTERM, exit_on_sigterm)  # SIGTERM stops the nodes as Ctrl-C does
    try:
        nodes = [(path, load_node_file(path)) for path in configs]
        if not args.no_sidecars:
            sidecars = _start_sidecars(nodes)
        for path, node in nodes:
            log = open(path.parent / "node.log", "ab")  # noqa: SIM115 - owned by the child
            proc = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "run", "--config", str(path)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=die_with_parent,  # a killed `testnet up` leaves no node behind
            )
            procs.append((path.parent.name, proc))
            role = "validator" if node.validator_key else "follower"
            print(f"{path.parent.name} {role:9} RPC http://{node.host}:{node.rpc_port}  peer {node.peer_id}  "
                  f"(log {path.parent / 'node.log'})", flush=True)
        print("Ctrl-C stops all nodes" + (" and sidecars." if sidecars else "."), flush=True)
        reported: set[str] = set()
        while True:
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping the others", file=sys.stderr, flush=True)
                    return 1
            for name, proc in sidecars:
                # A node outlives its sidecar: it reports it down and refuses inference until
                # the operator starts one again on the same port.
                if proc.poll() is not None and name not in reported:
                    reported.add(name)
                    print(f"{name} exited with {proc.returncode}; its node reports it down", file=sys.stderr,
                          flush=True)
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        everything = [proc for _, proc in procs + sidecars]
        for proc in everything:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in everything:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start_sidecars(nodes: list[tuple[Path, NodeFile]]) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """One sidecar per node whose config names one with a store, each on its own store. They
    load the base model shipped with the package (no download, nothing to build), so they
    share it; a node starts before its sidecar is ready and reports when it is."""
    import importlib.util

    wanted = [(path, node) for path, node in nodes if node.sidecar and node.sidecar_store]
    if not wanted:
        return []
    if importlib.util.find_spec("sidecar") is None or importlib.util.find_spec("torch") is None:
        print("note: the AI sidecar is not installed (torch/peft missing); starting no sidecars", file=sys.stderr)
        return []
    started = []
    for path, node in wanted:
        assert node.sidecar is not None and node.sidecar_store is not None
        host, _, port = node.sidecar.rpartition(":")
        check_port(host, int(port), f"--sidecar-port of `testnet init` (node {path.parent.name})")
        name = f"{path.parent.name}-sidecar"
        log = open(path.parent / "sidecar.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "--host", host, "--port", port, "--store", str(node.sidecar_store)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=die_with_parent,
        )
        started.append((name, proc))
        print(f"{name} gRPC {node.sidecar}  (store {node.sidecar_store}, log {path.parent / 'sidecar.log'})",
              flush=True)
    return started
