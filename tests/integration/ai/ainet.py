"""A BFT testnet of validators that each run a sidecar, for the AI network's tests and bench:
real processes on loopback, started with the README's commands (`ailedger testnet init`, then
one `ailedger run --sidecar` per validator beside its own `python -m sidecar`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.consensus.bftnet import Net, init_net
from tests.integration.p2p.netsupport import result, wait_for
from tests.support.procs import VENV_BIN, Proc, start_sidecar

#: A network's AI parameters: windows long enough to challenge and judge on a loaded machine.
AI_PARAMS = {"inference.challenge_window": 40, "inference.verdict_window": 60, "inference.challenge_bond": 10**17,
             "staking.unbonding_blocks": 300}


@contextmanager
def ai_net(tmp: Path, validators: int = 4, params: dict[str, int] | None = None) -> Iterator[Net]:
    """A running BFT testnet whose validators serve AI, each on its own sidecar (``net.extra[i]``
    names it); the test-only lying modes are allowed (off until a node's lies file says so)."""
    net = init_net(tmp, validators=validators)
    genesis_path = net.directory / "genesis.json"
    doc = json.loads(genesis_path.read_text())
    doc["ai"] = {**doc.get("ai", {}), **AI_PARAMS, **(params or {})}
    genesis_path.write_text(json.dumps(doc, indent=2))
    sidecars: list[Proc] = []
    try:
        for i in range(validators):
            sidecars.append(start_sidecar(tmp / f"sidecar{i}", store=tmp / f"store{i}", ready=True))
            net.extra[i] = ["--sidecar", sidecars[i].url]
        net.env = {"AILEDGER_ALLOW_LIES": "1"}
        net.start()
        net.wait_heads(2, timeout=120)
        yield net
    finally:
        net.stop_all()
        for s in sidecars:
            s.kill()


def cli(net: Net, node: int, *argv: str, ok: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``ailedger ARGV --rpc <node's RPC>``; with ``ok``, it must succeed."""
    out = subprocess.run([str(VENV_BIN / "ailedger"), *argv, "--rpc", net.url(node)], capture_output=True,
                         text=True, timeout=900, cwd=cwd)
    if ok:
        assert out.returncode == 0, f"ailedger {' '.join(argv)}:\n{out.stdout}\n{out.stderr}"
    return out


def rpc(net: Net, node: int, method: str, *params: Any) -> Any:
    return result(net.url(node), method, list(params))


def held(net: Net, node: int, digest: str) -> bool:
    """Whether ``node`` holds the blob ``digest``."""
    try:
        rpc(net, node, "ai_getBlob", digest, "0x0", "0x1")
    except AssertionError:
        return False
    return True


def infer(net: Net, node: int, adapter: int, prompt: str, account: int, max_tokens: int = 32) -> dict[str, Any]:
    """Serve a prompt through ``node`` (`ailedger infer`); the receipt once its block is committed."""
    out = json.loads(cli(net, node, "infer", "--adapter", str(adapter), "--prompt", prompt, "--account",
                         str(account), "--deposit", "0.2eth", "--max-tokens", str(max_tokens), "--json").stdout)
    tx = out["transactionHash"]
    found = wait_for(lambda: rpc(net, node, "eth_getTransactionReceipt", tx), 60, "the receipt's block")
    assert found["status"] == "0x1", found
    receipt = rpc(net, node, "ai_getInferenceAncestry", tx)["receipt"]
    return {**out, "receiptId": receipt["id"], "receipt": receipt}


def publish(net: Net, node: int, name: str, files: dict[str, str], folder: Path, contributor: int = 1) -> int:
    """A datanet of ``files`` (name -> text), contributed, approved and published: its id."""
    for file, text in files.items():
        (folder / file).write_text(text)
    created = json.loads(cli(net, node, "datanet", "create", name, "--account", "0", "--json").stdout)
    datanet = int(created["id"])
    for start in range(0, len(files), 50):
        cli(net, node, "contribute", str(datanet), *list(files)[start:start + 50], "--account", str(contributor),
            cwd=folder)
    cli(net, node, "curate", "--all-pending", "--approve", "--account", "0")
    cli(net, node, "datanet", "publish", str(datanet), "--account", "0")
    return datanet


def serve(net: Net, node: int, adapter: int, prompt: str, account: int, max_tokens: int = 32) -> tuple[dict[str, Any], float]:
    """One ``ai_infer`` call as a wallet makes it (a request signed for the node's quote; the
    account's deposit must cover the price), and the seconds the call took."""
    import os
    import time

    from eth_hash.auto import keccak

    from ai_precompiles import typed_data
    from genesis import DEV_MNEMONIC, derive_accounts

    user = derive_accounts(DEV_MNEMONIC, account + 1)[account]
    quote = rpc(net, node, "ai_inferQuote")
    chain_id = int(quote["chainId"], 16)
    head = rpc(net, node, "eth_getBlockByNumber", "latest", False)
    request = {"user": bytes.fromhex(user.address[2:]), "validator": bytes.fromhex(quote["validator"][2:]),
               "adapter_id": adapter, "prompt_hash": keccak(prompt.encode()), "max_tokens": max_tokens,
               "max_fee": int(quote["price"], 16), "nonce": int.from_bytes(os.urandom(8), "big"),
               "deadline": int(head["timestamp"], 16) + 3600, "chain_id": chain_id, "commercial": False}
    signature = typed_data.sign(typed_data.request_digest(request, chain_id), user.private_key)
    wire = {"user": user.address, "validator": quote["validator"], "adapterId": adapter, "prompt": prompt,
            "maxTokens": max_tokens, "maxFee": quote["price"], "nonce": hex(request["nonce"]),
            "deadline": hex(request["deadline"]), "chainId": quote["chainId"]}
    started = time.perf_counter()
    answer = rpc(net, node, "ai_infer", wire, "0x" + signature.hex())
    return answer, time.perf_counter() - started
