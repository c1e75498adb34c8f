"""``ailedger dev``: a one-node dev chain with prefunded accounts (like anvil), and beside it a
sidecar whose base model and validator stake are in the genesis state, so ai_infer works out
of the box and the chain starts at block 0 as anvil does."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from genesis import (
    DEV_BALANCE_ETH,
    DEV_BASE_FEE,
    DEV_CHAIN_ID,
    DEV_GAS_LIMIT,
    DEV_MNEMONIC,
    DEV_PATH,
)
from node.cli.amounts import parse_amount
from node.cli.client import Client
from node.cli.errors import CLIError
from node.cli.options import Subparsers
from node.cli.serving import (
    add_rpc_flags,
    add_txpool_flags,
    check_datadir,
    check_port,
    die_with_parent,
    exit_on_sigterm,
    rpc_settings,
    serve,
    txpool_config,
)
from node.cli.sidecar_grpc import register_sidecar_base, shipped_base_entry, wait_sidecar

if TYPE_CHECKING:
    from genesis import DevAccount, Genesis
    from state import Ledger

#: What `ailedger dev` gives its own validator so that it can serve ai_infer out of the box.
DEV_VALIDATOR_FUNDS = 100 * 10**18
DEV_VALIDATOR_STAKE = 2 * 10**18


def add_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "dev",
        help="start a local dev chain with prefunded accounts (like anvil)",
        description="Start a single-node dev chain. Accounts of the development mnemonic are "
        "prefunded and unlocked (eth_sendTransaction, eth_sign). The chain lives in memory "
        "unless --datadir is given. Flags mean what they mean for anvil.",
    )
    add_rpc_flags(p, dev=True)
    p.add_argument("--chain-id", type=int, default=DEV_CHAIN_ID, help="chain id (default: %(default)s)")
    p.add_argument("-a", "--accounts", type=int, default=20, help="number of prefunded dev accounts (default: %(default)s)")
    p.add_argument("--balance", type=int, default=DEV_BALANCE_ETH, help="balance of each dev account in ETH (default: %(default)s)")
    p.add_argument("-m", "--mnemonic", default=DEV_MNEMONIC, help="BIP-39 mnemonic of the dev accounts (default: the standard 'test test ... junk')")
    p.add_argument("--gas-limit", type=int, default=DEV_GAS_LIMIT, help="block gas limit (default: %(default)s)")
    p.add_argument("--base-fee", type=int, default=DEV_BASE_FEE, help="genesis base fee in wei (default: %(default)s)")
    p.add_argument("--timestamp", type=int, default=None, help="genesis timestamp (default: now)")
    p.add_argument("--datadir", type=Path, default=None, help="keep the chain in LevelDB here; restarting with the same datadir resumes the chain")
    p.add_argument("--no-sidecar", action="store_true", help="do not start the AI sidecar (training, serving, attribution)")
    p.add_argument("--sidecar-port", type=int, default=50051, help="gRPC port of the sidecar it starts (default: %(default)s)")
    p.add_argument("--sidecar", default=None, metavar="ADDR",
                   help="use the sidecar already running at ADDR (host:port) instead of starting one")
    p.add_argument("--inference-price", type=parse_amount, default=10**15, metavar="AMOUNT",
                   help="what this node's validator charges per ai_infer request (default: 0.001eth)")
    p.add_argument("--training-price", type=parse_amount, default=10**16, metavar="AMOUNT",
                   help="what this node's validator charges per ai_train job (default: 0.01eth)")
    p.add_argument("--silent", action="store_true", help="print only the listening line")
    add_txpool_flags(p)
    p.set_defaults(func=cmd_dev)


def dev_chain_genesis(mnemonic: str = DEV_MNEMONIC, chain_id: int = DEV_CHAIN_ID, accounts: int = 20,
                      balance_eth: int = DEV_BALANCE_ETH, gas_limit: int = DEV_GAS_LIMIT,
                      base_fee: int = DEV_BASE_FEE, timestamp: int | None = None,
                      ai_setup: bool = False) -> Genesis:
    """The dev genesis, with the dev validator funded: it pays the gas of the receipts it
    records through ai_infer (`ailedger dev` and `ailedger init --dev` alike).

    With ``ai_setup`` (`ailedger dev` with a sidecar) the validator's stake and the shipped
    base model's registration (model 1, by the weights hash shipped beside the base model) are
    in the genesis state too, so the chain serves inference from block 0 and mines no set-up
    blocks after it starts listening."""
    from eth_account import Account

    from genesis import GenesisAccount, derive_validator_key, dev_genesis

    validator = bytes.fromhex(Account.from_key(derive_validator_key(mnemonic)).address[2:])
    base = shipped_base_entry() if ai_setup else None
    return dev_genesis(chain_id=chain_id, mnemonic=mnemonic, accounts=accounts, balance_eth=balance_eth,
                       gas_limit=gas_limit, base_fee=base_fee, timestamp=timestamp,
                       extra_alloc={validator: GenesisAccount(balance=DEV_VALIDATOR_FUNDS)},
                       validator_stake=DEV_VALIDATOR_STAKE if ai_setup else 0,
                       base_models=[base] if base is not None else [])


def cmd_dev(args: argparse.Namespace) -> int:
    check_port(args.host, args.port, "--port")
    check_datadir(args.datadir)
    from genesis import derive_accounts, derive_validator_key
    from node.service import NodeConfig

    # SIGTERM before the node's loop takes over must still stop the sidecar (the finally below).
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    accounts = derive_accounts(args.mnemonic, args.accounts)
    validator_key = derive_validator_key(args.mnemonic)
    sidecar_address = args.sidecar
    sidecar = None
    if sidecar_address is None and not args.no_sidecar:
        check_port(args.host, args.sidecar_port, "--sidecar-port")
        sidecar = _start_sidecar(args)
        if sidecar is not None:
            sidecar_address = f"{args.host}:{args.sidecar_port}"
    genesis: Genesis | None = dev_chain_genesis(
        chain_id=args.chain_id,
        mnemonic=args.mnemonic,
        accounts=args.accounts,
        balance_eth=args.balance,
        gas_limit=args.gas_limit,
        base_fee=args.base_fee,
        timestamp=args.timestamp,
        ai_setup=sidecar_address is not None,
    )
    if args.datadir is not None and (args.datadir / "CURRENT").exists():
        genesis = None  # resume: the datadir's own genesis rules
    config = NodeConfig(
        host=args.host,
        port=args.port,
        datadir=args.datadir,
        genesis=genesis,
        block_time=args.block_time,
        dev_keys=[a.private_key for a in accounts],
        validator_key=validator_key,
        metrics_port=args.metrics_port,
        **rpc_settings(args, dev=True),
        txpool=txpool_config(args),
        sidecar=sidecar_address,
        inference_price=args.inference_price,
        training_price=args.training_price,
    )

    if sidecar_address is not None and not args.silent:
        # The sidecar's state changes (down, back) are worth a line on the dev console too.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("ailedger.sidecar").addHandler(handler)
        logging.getLogger("ailedger.sidecar").setLevel(logging.INFO)

    def ready(ledger: Ledger) -> None:
        if not args.silent:
            _print_banner(args, accounts, ledger)
        print(f"Listening on {args.host}:{args.port}", flush=True)
        if sidecar_address is not None:
            url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
            threading.Thread(target=_prepare_ai, args=(url, validator_key, sidecar_address, sidecar),
                             name="dev-ai-setup", daemon=True).start()

    try:
        return serve(config, ready)
    finally:
        if sidecar is not None:
            sidecar.terminate()
            try:
                sidecar.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sidecar.kill()


def _prepare_ai(url: str, validator_key: bytes, sidecar_address: str, proc: subprocess.Popen[bytes] | None) -> None:
    """After the dev node listens: wait for the sidecar to serve and check that the chain knows
    its base model. Both the validator's stake and the shipped base model are in a new dev
    chain's genesis; only a chain that lacks them (a datadir made before, a sidecar serving
    another base model) gets them here, by transactions."""
    client = Client(url, validator_key)
    try:
        minimum = int(client.call("ai_getParams")["staking.min_stake"], 16)
        if int(client.view("Staking", "stakeOf", client.address)) < minimum:
            client.transact("Staking", "stake", value=max(DEV_VALIDATOR_STAKE, minimum))
        print(f"Waiting for the sidecar on {sidecar_address} ...", flush=True)

        def progress(seconds: float) -> None:
            if proc is not None and proc.poll() is not None:
                raise CLIError(f"the sidecar exited with status {proc.returncode}")
            print(f"  sidecar not ready yet ({seconds:.0f} s; the first start builds its base model)", flush=True)

        wait_sidecar(sidecar_address, timeout=3600, progress=progress)
        print(f"sidecar ready on {sidecar_address}", flush=True)
        model_id, weights, new = register_sidecar_base(client, sidecar_address)
        if new:
            how = "registered"
        elif int(client.call("ai_getModel", model_id)["createdBlock"]) == 0:
            how = "registered in genesis"
        else:
            how = "on chain"
        print(f"base model {model_id} {how}: the sidecar's, weights {weights}", flush=True)
        print(f"AI ready: validator {client.address} serves ai_infer", flush=True)
    except CLIError as e:
        print(f"error: AI setup: {e}", file=sys.stderr, flush=True)
    except Exception as e:  # noqa: BLE001 - the chain keeps serving; say why AI is not ready
        print(f"error: AI setup failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


def _start_sidecar(args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    if importlib.util.find_spec("sidecar") is None or importlib.util.find_spec("torch") is None:
        print("note: the AI sidecar is not installed (torch/peft missing); running without it", file=sys.stderr)
        return None
    store = (args.datadir / "sidecar") if args.datadir else Path(tempfile.mkdtemp(prefix="ailedger-sidecar-"))
    cmd = [sys.executable, "-m", "sidecar", "--host", args.host, "--port", str(args.sidecar_port), "--store", str(store)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=die_with_parent)
    print(f"Sidecar starting on {args.host}:{args.sidecar_port} (store {store})", flush=True)
    return proc


def _print_banner(args: argparse.Namespace, accounts: list[DevAccount], ledger: Ledger) -> None:
    lines = ["", "ailedger dev chain", "", "Available Accounts", "=================="]
    lines += [f"({i}) {a.address} ({args.balance} ETH)" for i, a in enumerate(accounts)]
    lines += ["", "Private Keys", "=================="]
    lines += [f"({i}) 0x{a.private_key.hex()}" for i, a in enumerate(accounts)]
    lines += [
        "", "Wallet", "==================",
        f"Mnemonic:          {args.mnemonic}",
        f"Derivation path:   {DEV_PATH.format('')}",
        "", "Chain ID", "==================", str(ledger.chain_id),
        "", "Head block", "==================", f"{ledger.head.block_number} (0x{ledger.head.hash.hex()})",
        "", f"RPC URL: http://{args.host}:{args.port}  (WebSocket: ws://{args.host}:{args.port})",
    ]
    if args.metrics_port:
        lines.append(f"Metrics: http://{args.host}:{args.metrics_port}/metrics")
    lines.append("")
    print("\n".join(lines), flush=True)
