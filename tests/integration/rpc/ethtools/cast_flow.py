"""The basic flow a Foundry `cast` user runs against a dev node, as real `cast` commands.

`run_cast_flow(url)` shells out to node_modules/.bin/cast for: chain id, balance, a signed
transfer, a deployment with a constructor argument, a state-changing call, a view call,
`cast logs` for the emitted event, `cast access-list`, `cast run` (a local replay of a
mined transaction), and reverts (reason string and custom error) through
`cast call` and `cast send`, decoding the custom error with `cast decode-error`. It returns
the facts it read; the test asserts them. Run directly for a look:
`python tests/integration/rpc/ethtools/cast_flow.py http://127.0.0.1:8545`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CAST = HERE.parents[3] / "node_modules" / ".bin" / "cast"
# Dev account 0 of the standard mnemonic (anvil prints the same key at start-up).
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RECIPIENT = "0x00000000000000000000000000000000000000bb"
VALUE_SET = "ValueSet(address indexed,uint256 indexed,uint256,string)"
REVERT_DATA = re.compile(r'data: "(0x[0-9a-fA-F]*)"')


@dataclass(frozen=True)
class CastResult:
    """One finished cast command."""

    rc: int
    """Exit status."""
    out: str
    """Stripped standard output."""
    err: str
    """Stripped standard error (cast prints RPC errors here)."""


def cast(*args: str, timeout: float = 60.0) -> CastResult:
    """Run `cast <args>` and capture its output; the caller decides what a failure means."""
    p = subprocess.run([str(CAST), *args], capture_output=True, text=True, timeout=timeout)
    return CastResult(p.returncode, p.stdout.strip(), p.stderr.strip())


def ok(*args: str) -> str:
    """Run a cast command that must succeed; its stdout."""
    r = cast(*args)
    if r.rc != 0:
        raise RuntimeError(f"cast {' '.join(args)} failed ({r.rc}): {r.err}")
    return r.out


def revert_facts(r: CastResult, error_sig: str | None = None) -> dict[str, Any]:
    """What a cast user sees of a revert: exit status, the RPC error code, the revert data and,
    for a custom error, its arguments decoded by `cast decode-error`."""
    m = REVERT_DATA.search(r.err)
    code = re.search(r"error code (-?\d+)", r.err)
    facts: dict[str, Any] = {
        "rc": r.rc,
        "error_code": int(code.group(1)) if code else None,
        "data": m.group(1) if m else None,
        "reason_in_message": "execution reverted" in r.err,
        "stderr": r.err[-400:],
    }
    if error_sig and facts["data"]:
        facts["decoded"] = ok("decode-error", "--sig", error_sig, facts["data"]).splitlines()
    return facts


def run_cast_flow(url: str) -> dict[str, Any]:
    """Run the flow against a fresh dev node at `url` and return the facts it read."""
    art = json.loads((HERE / "build" / "Demo.json").read_text())
    rpc = ("--rpc-url", url)
    f: dict[str, Any] = {}
    f["chain_id"] = int(ok("chain-id", *rpc))
    f["block_number_start"] = int(ok("block-number", *rpc))
    f["balance0_start"] = int(ok("balance", ADDR0, *rpc))
    before = int(ok("balance", RECIPIENT, *rpc))
    transfer = json.loads(
        ok("send", "--private-key", KEY0, *rpc, RECIPIENT, "--value", "1ether", "--json")
    )
    f["transfer"] = {
        "status": int(transfer["status"], 16),
        "gasUsed": int(transfer["gasUsed"], 16),
        "type": int(transfer["type"], 16),
    }
    f["recipient_gain"] = int(ok("balance", RECIPIENT, *rpc)) - before
    f["nonce0"] = int(ok("nonce", ADDR0, *rpc))

    deploy = json.loads(
        ok(
            "send",
            "--private-key",
            KEY0,
            *rpc,
            "--create",
            art["bytecode"],
            "constructor(uint256)",
            "1000",
            "--json",
        )
    )
    addr = deploy["contractAddress"]
    f["deploy"] = {
        "status": int(deploy["status"], 16),
        "address": addr,
        "code_matches": ok("code", addr, *rpc) == art["deployedBytecode"],
        "limit": int(ok("call", addr, "limit()(uint256)", *rpc).split()[0]),
    }

    sent = json.loads(
        ok(
            "send",
            "--private-key",
            KEY0,
            *rpc,
            addr,
            "set(uint256,uint256,string)",
            "3",
            "33",
            "via cast",
            "--json",
        )
    )
    f["set"] = {"status": int(sent["status"], 16), "logs": len(sent["logs"])}
    f["get3"] = int(ok("call", addr, "get(uint256)(uint256)", "3", *rpc).split()[0])
    f["storage_total"] = int(ok("storage", addr, "3", *rpc), 16)
    logs = json.loads(ok("logs", *rpc, "--from-block", "0", "--address", addr, VALUE_SET, "--json"))
    f["logs"] = [
        {
            "topics": log["topics"],
            "data": log["data"],
            "tx": log["transactionHash"] == sent["transactionHash"],
        }
        for log in logs
    ]
    if logs:
        f["log_decoded"] = ok(
            "decode-abi", "--input", "f(uint256,string)", logs[0]["data"]
        ).splitlines()
    receipt = json.loads(ok("receipt", sent["transactionHash"], *rpc, "--json"))
    f["receipt_status"] = int(receipt["status"], 16)

    access = json.loads(
        ok("access-list", *rpc, "--from", ADDR0, addr, "set(uint256,uint256,string)", "4", "44", "x", "--json")
    )
    f["access_list"] = {
        "entries": sorted((e["address"].lower(), sorted(e["storageKeys"])) for e in access["accessList"]),
        "gasUsed": int(access["gasUsed"], 16),
    }
    replay = cast("run", *rpc, sent["transactionHash"], timeout=120)
    gas = re.search(r"Gas used: (\d+)", replay.out)
    f["run"] = {
        "rc": replay.rc,
        "success": "Transaction successfully executed" in replay.out,
        "gas_used_matches_receipt": gas is not None and int(gas.group(1)) == int(sent["gasUsed"], 16),
    }

    f["revert_call_reason"] = revert_facts(
        cast("call", addr, "set(uint256,uint256,string)", "0", "1", "x", *rpc)
    )
    f["revert_call_custom"] = revert_facts(
        cast("call", addr, "set(uint256,uint256,string)", "9", "5000", "x", *rpc),
        "TooLarge(uint256,uint256)",
    )
    f["revert_send_custom"] = revert_facts(
        cast(
            "send",
            "--private-key",
            KEY0,
            *rpc,
            addr,
            "set(uint256,uint256,string)",
            "9",
            "5000",
            "x",
        ),
        "TooLarge(uint256,uint256)",
    )
    return f


if __name__ == "__main__":
    print(json.dumps(run_cast_flow(sys.argv[1]), indent=1))
