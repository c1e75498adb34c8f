"""The WAL and its guarded signer: fsync before send, replay, torn tails, and a crash test where a
signing process is killed with SIGKILL at random moments many times and never double-signs."""

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from eth_account import Account

from consensus.messages import Proposal, Vote, VoteType
from consensus.wal import WAL, DoubleSignRefused, GuardedSigner, Record, RecordKind

CHAIN = 77
KEY = bytes(Account.create().key)
ADDR = bytes.fromhex(Account.from_key(KEY).address[2:])
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("rotate_bytes", [0, 1 << 20])
def test_signer_signs_each_step_one_way_only(tmp_path: Path, monkeypatch, rotate_bytes: int):
    monkeypatch.setattr("consensus.wal.ROTATE_BYTES", rotate_bytes)
    signer = GuardedSigner(KEY, CHAIN, WAL(tmp_path / "wal"))
    v = signer.sign_vote(Vote(VoteType.PREVOTE, 5, 0, b"\x01" * 32, ADDR))
    assert v.verify(CHAIN)
    assert signer.sign_vote(Vote(VoteType.PREVOTE, 5, 0, b"\x01" * 32, ADDR)) == v  # asked again: the same
    with pytest.raises(DoubleSignRefused):
        signer.sign_vote(Vote(VoteType.PREVOTE, 5, 0, b"\x02" * 32, ADDR))
    with pytest.raises(DoubleSignRefused):
        signer.sign_vote(Vote(VoteType.PREVOTE, 5, 0, b"", ADDR))  # nil is a different vote too
    signer.sign_vote(Vote(VoteType.PRECOMMIT, 5, 0, b"", ADDR))  # another step is fine
    p = signer.sign_proposal(Proposal(5, 1, -1, b"\x03" * 32, ADDR))
    with pytest.raises(DoubleSignRefused):
        signer.sign_proposal(Proposal(5, 1, -1, b"\x04" * 32, ADDR))
    signer.wal.close()

    again = GuardedSigner(KEY, CHAIN, WAL(tmp_path / "wal"))  # restart
    with pytest.raises(DoubleSignRefused):
        again.sign_vote(Vote(VoteType.PREVOTE, 5, 0, b"\x02" * 32, ADDR))
    assert again.sign_proposal(Proposal(5, 1, -1, b"\x03" * 32, ADDR)) == p
    assert {m.round for m in again.own_messages(5)} == {0, 1}
    again.mark_decided(5)
    with pytest.raises(DoubleSignRefused):
        again.sign_vote(Vote(VoteType.PREVOTE, 5, 3, b"\x02" * 32, ADDR))  # decided height
    again.sign_vote(Vote(VoteType.PREVOTE, 6, 0, b"\x05" * 32, ADDR))
    again.wal.close()
    third = GuardedSigner(KEY, CHAIN, WAL(tmp_path / "wal"))
    assert third.decided_height == 5 and [m.height for m in third.own_messages(6)] == [6]
    # Rotated: the decided height's records are gone (or kept, below the rotation size).
    assert len(third.wal.records) == (2 if rotate_bytes == 0 else 5)
    with pytest.raises(DoubleSignRefused):
        third.sign_vote(Vote(VoteType.PREVOTE, 6, 0, b"\x01" * 32, bytes(20)))  # not our key


def test_torn_or_corrupt_tail_is_cut_on_replay(tmp_path: Path):
    path = tmp_path / "wal"
    wal = WAL(path)
    good = [Record(RecordKind.HEIGHT, (i).to_bytes(8, "big")) for i in range(3)]
    for r in good:
        wal.append(r)
    wal.close()
    size = path.stat().st_size
    extra = Record(RecordKind.HEIGHT, b"\x09" * 8).encode()
    for tail in (extra[:5], extra[:-1], extra[:8] + b"\xff" * (len(extra) - 8), b"\xff" * 40):
        with open(path, "ab") as f:
            f.write(tail)
        wal = WAL(path)
        assert wal.records == good and wal.truncated == len(tail) and path.stat().st_size == size
        wal.close()
    # A corrupt record in the middle: everything from it on is cut.
    data = bytearray(path.read_bytes())
    data[len(good[0].encode()) + 9] ^= 0xFF
    path.write_bytes(bytes(data))
    wal = WAL(path)
    assert wal.records == good[:1]
    wal.close()


CHILD = r"""
import os, random, sys
from consensus.messages import Proposal, Vote, VoteType
from consensus.wal import WAL, DoubleSignRefused, GuardedSigner
path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
signer = GuardedSigner(key, 77, WAL(path))
out = sys.stdout
out.write("ready\n"); out.flush()
rng = random.Random(os.urandom(8))
h = signer.decided_height + 1
def send(kind, sign, msg):
    # After a restart the same steps are asked again with fresh random blocks: the signer must
    # hand back what it signed before (same block) or refuse.
    try:
        signed = sign(msg)
    except DoubleSignRefused:
        out.write("R\n"); out.flush()
        return
    out.write(kind + " " + signed.encode().hex() + "\n"); out.flush()  # sent, only after the fsync
while True:
    for r in range(3):
        send("P", signer.sign_proposal, Proposal(h, r, -1, os.urandom(32), signer.address))
        for t in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            block = os.urandom(32) if rng.random() < 0.7 else b""
            send("V", signer.sign_vote, Vote(t, h, r, block, signer.address))
    signer.mark_decided(h)
    h += 1
"""


@pytest.mark.slow
def test_sigkill_at_random_moments_never_double_signs(tmp_path: Path):
    path = tmp_path / "wal"
    rng = random.Random(20261125)
    sent_votes: list[Vote] = []
    sent_proposals: list[Proposal] = []
    refused = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), KEY.hex()], stdout=subprocess.PIPE,
                                 env=env, cwd=ROOT)
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait(timeout=30)
        refused += rest.count(b"R\n")
        for line in rest.split(b"\n"):
            kind, _, hexed = line.partition(b" ")
            try:
                raw = bytes.fromhex(hexed.decode())
            except ValueError:
                continue  # the line the kill cut short
            if kind == b"V" and raw:
                sent_votes.append(Vote.decode(raw))
            elif kind == b"P" and raw:
                sent_proposals.append(Proposal.decode(raw))
    assert len(sent_votes) > 50  # the kills landed while it was signing
    assert refused > 0  # restarts asked again for steps already signed, and were refused

    by_step: dict[tuple[int, int, int], set[bytes]] = defaultdict(set)
    for v in sent_votes:
        assert v.verify(CHAIN)
        by_step[(v.height, v.round, int(v.type))].add(v.block_hash)
    for p in sent_proposals:
        by_step[(p.height, p.round, int(VoteType.PROPOSAL))].add(p.block_hash)
    assert all(len(hashes) == 1 for hashes in by_step.values()), "double sign after a restart"

    # Replay gives a consistent state: every record parses, and everything sent above the
    # decided height is in the log.
    signer = GuardedSigner(KEY, CHAIN, WAL(path))
    kept = {(m.height, m.round, m.type if isinstance(m, Vote) else VoteType.PROPOSAL, m.block_hash)
            for h in {v.height for v in sent_votes} for m in signer.own_messages(h)}
    for v in sent_votes:
        if v.height > signer.decided_height:
            assert (v.height, v.round, v.type, v.block_hash) in kept
    assert max(v.height for v in sent_votes) >= signer.decided_height
