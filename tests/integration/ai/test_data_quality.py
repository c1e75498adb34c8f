"""Data quality that costs the spammer, end to end on one ``ailedger dev`` (issue 22, item 3):
the CLI sets a datanet's policy (a bond, sketches required), contributes with MinHash sketches,
shows the curators the near-duplicate flag and a lying sketch, rejects as adversarial (the bond is
slashed, the penalty score rises) and refuses a bond below the minimum; then inference receipts
over JSON-RPC pay an accepted near copy out of its original's share, not on top of it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from ai_precompiles import sketch
from ai_precompiles.addresses import DEFAULT_TREASURY
from tests.integration.ai.client import (
    ADDR,
    BASE_AUTHOR,
    CONTRIB_A,
    CONTRIB_B,
    ETHER,
    OWNER,
    USER,
    VALIDATOR,
    AINode,
    RPCFailure,
    make_request,
    sign_receipt,
)
from tests.integration.ai.world import adapter_spec, version_root
from tests.support.procs import VENV_BIN, start_ailedger

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ai-quality")]

SYBIL = 12
FEE = 10**15
TEXT = ("Aspirin irreversibly inhibits cyclooxygenase, which lowers thromboxane A2 in platelets; a daily "
        "low dose therefore reduces the risk of a second heart attack, at the cost of a higher risk of "
        "gastrointestinal bleeding, which guidelines weigh before recommending it.\n")
OTHER = ("Metformin is the usual first medicine for type 2 diabetes: it lowers glucose production in the "
         "liver, rarely causes hypoglycaemia on its own, and its common side effects ease with a slow dose "
         "increase.\n")


def run(node: Any, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AILEDGER_RPC": node.url}
    out = subprocess.run([str(VENV_BIN / "ailedger"), *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def contribute(node: Any, tmp: Path, name: str, text: str, account: int, *extra: str) -> dict[str, Any]:
    path = tmp / name
    path.write_text(text)
    out = run(node, "contribute", "1", str(path), "--account", str(account), "--json", *extra)
    (result,) = json.loads(out.stdout)
    return dict(result)


def test_near_copies_bonds_and_penalties_end_to_end(tmp_path: Path) -> None:
    proc = start_ailedger([], tmp_path)
    try:
        node = AINode(proc)
        assert "datanet 1 created" in run(proc, "datanet", "create", "med", "--account", str(OWNER)).stdout
        out = run(proc, "datanet", "policy", "1", "--min-bond", "0.1eth", "--require-sketch",
                  "--account", str(OWNER)).stdout
        assert "at least 0.1 ETH and carries its sketch" in out
        assert "policy: bond at least 0.1 ETH, MinHash sketch required" in run(proc, "datanet", "show", "1").stdout

        # the original, then a one-byte near copy by a sybil: flagged, and both sketches check out
        original = contribute(proc, tmp_path, "o.txt", TEXT, CONTRIB_A)
        assert (original["id"], original["bond"], original["nearDuplicateOf"]) == (1, ETHER // 10, 0)
        copy_text = TEXT.replace("daily", "dayly")
        sybil_before = node.balance(SYBIL)
        path = tmp_path / "copy.txt"
        path.write_text(copy_text)
        out = run(proc, "contribute", "1", str(path), "--account", str(SYBIL)).stdout
        assert "contribution 2" in out and "a near duplicate of contribution 1" in out
        q = node.rpc("ai_getContribution", 2)["quality"]
        assert (q["nearDuplicateOf"], q["groupId"], q["sketchMatches"], q["bondStatus"]) == (1, 1, True, 1)
        assert q["similarityBp"] >= 8000
        other = contribute(proc, tmp_path, "x.txt", OTHER, CONTRIB_B)
        assert other["nearDuplicateOf"] == 0

        # a bond below the minimum: refused by the CLI, and by the chain for a client that skips it
        low = run(proc, "contribute", "1", str(tmp_path / "x.txt"), "--bond", "0.01eth", "--account", "4", ok=False)
        assert low.returncode == 1 and "below datanet 1's minimum" in low.stderr
        lie = b"a third text, whose sketch will be a lie"
        node.put_blob(lie)
        salt = node.commit(SYBIL, 1, keccak(lie), len(lie), "CC-BY-4.0", b"\x00" * 32)
        args = (1, keccak(lie), len(lie), "CC-BY-4.0", b"\x00" * 32, salt, sketch.compute_sketch(OTHER.encode()))
        with pytest.raises(RPCFailure, match="below the datanet's minimum"):
            node.send(SYBIL, "Datanets", "contributeBonded", *args, value=ETHER // 100)
        # a bonded contribution of bytes the node does not hold is refused at admission, as contribute is
        ghost = b"bytes nobody uploaded"
        gsalt = node.commit(SYBIL, 1, keccak(ghost), len(ghost), "CC-BY-4.0", b"\x00" * 32)
        with pytest.raises(RPCFailure, match="no blob with content hash"):
            node.send(SYBIL, "Datanets", "contributeBonded", 1, keccak(ghost), len(ghost), "CC-BY-4.0",
                      b"\x00" * 32, gsalt, sketch.compute_sketch(ghost), value=ETHER // 10)
        # the lie: a sketch that is not its blob's (it claims to be the other text's, to dodge a flag)
        _, mined = node.do(SYBIL, "Datanets", "contributeBonded", *args, value=ETHER // 10)
        lied = node.rpc("ai_getContribution", 4)
        assert lied["quality"]["sketchMatches"] is False and lied["blobAvailable"] is True

        # the curator sees both flags, accepts the copy and the others, rejects the lie as adversarial
        shown = run(proc, "curate", "2", "--approve", "--account", str(OWNER))
        assert "near duplicate of contribution 1" in shown.stderr and "shares that one's rewards" in shown.stderr
        run(proc, "curate", "1", "3", "--approve", "--account", str(OWNER))
        shown = run(proc, "curate", "4", "--adversarial", "--account", str(OWNER))
        assert "NOT its blob's" in shown.stderr
        q = node.rpc("ai_getContribution", 4)["quality"]
        assert q["bondStatus"] == 3 and q["penaltyScore"] == 1
        assert int(node.rpc("ai_getRewards", DEFAULT_TREASURY_HEX)["claimable"], 16) >= ETHER // 10
        # the sybil got its accepted copy's bond back and lost the lie's
        spent = sybil_before - node.balance(SYBIL)
        assert ETHER // 10 < spent < ETHER // 10 + ETHER // 100  # the slashed bond plus gas
        for cid in (1, 2, 3):
            assert node.rpc("ai_getContribution", cid)["quality"]["bondStatus"] == 2

        # receipts: an adapter on all three; the copy and its original share one text's weight
        node.do(OWNER, "Datanets", "publishVersion", 1)
        base, _ = node.do(BASE_AUTHOR, "ModelRegistry", "registerBaseModel", keccak(text="bw"),
                          keccak(text="bc"), keccak(text="bt"), "apache-2.0")
        adapter, _ = node.do(BASE_AUTHOR, "ModelRegistry", "registerAdapter",
                             adapter_spec(base, [1], [1], version_root(node, 1, 1), "q"))
        node.do(VALIDATOR, "Staking", "stake", value=2 * ETHER)
        node.do(USER, "Inference", "deposit", value=ETHER)
        before = {k: node.call(OWNER, "Rewards", "pending", ADDR[k]) for k in (CONTRIB_A, CONTRIB_B, SYBIL)}
        deadline = int(node.head()["timestamp"], 16) + 3600
        signed = sign_receipt(make_request(USER, adapter, FEE, 1, deadline), [1, 2, 3], [2500, 2500, 5000], FEE)
        node.do(VALIDATOR, "Inference", "submitReceipt", *signed.abi_args())
        got = {k: node.call(OWNER, "Rewards", "pending", ADDR[k]) - before[k] for k in (CONTRIB_A, CONTRIB_B, SYBIL)}
        pool = FEE * 5000 // 10_000
        # one text at 2500 against another at 5000: a third of the pool, split by the copy's two holders
        assert abs(got[CONTRIB_A] + got[SYBIL] - pool // 3) <= FEE // 10_000
        assert got[CONTRIB_A] == got[SYBIL]
        assert abs(got[CONTRIB_B] - 2 * pool // 3) <= FEE // 10_000
    finally:
        proc.kill()


DEFAULT_TREASURY_HEX = "0x" + DEFAULT_TREASURY.hex()
