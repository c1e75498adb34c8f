"""Malicious peers for tests, run as one separate process: each claims a head far above
the real one (so a syncing node tries it first) and serves a copy of the real chain with
one fault.

    python evil_peers.py DATADIR GENESIS VALIDATOR_KEY_FILE KEYDIR MODE...

Modes: state-root (a block re-executing to another state root, its commit re-signed by the
validator: a byzantine validator), bad-sig (a corrupted commit signature), dup-sig (the
commit's one signature repeated), garbage (undecodable frames), wrong-block (another
height's block than asked). Prints ``EVIL MODE MULTIADDR`` per peer once listening.
"""

from __future__ import annotations

import sys
from pathlib import Path

import rlp
import trio

from consensus import Commit, SingleValidator
from genesis import load_genesis
from node.chain.assembly import assemble
from node.chain.core import ChainCore
from node.network import encode_block
from p2p.host import P2PConfig, P2PHost, Verdict
from p2p.wire import BlocksRequest, BlockWithCommit, Status
from state import Ledger, LevelDBStore


class EvilChain:
    def __init__(self, core: ChainCore, validator: SingleValidator, mode: str) -> None:
        self.core, self.validator, self.mode = core, validator, mode
        genesis = core.ledger.header_by_number(0)
        assert genesis is not None
        self.genesis_hash = bytes(genesis.hash)

    async def local_status(self) -> Status:
        head = self.core.ledger.head
        return Status(self.core.ledger.chain_id, self.genesis_hash, int(head.block_number) + 1000, bytes(head.hash))

    def _tamper(self, number: int, item: BlockWithCommit) -> BlockWithCommit:
        block = rlp.decode(item.block, sedes=type(self.core.ledger.block(self.core.ledger.head)))
        commit = Commit.decode(item.commit)
        if self.mode == "state-root" and number == 3:
            header = block.header.copy(state_root=b"\x42" * 32)
            block = block.copy(header=header)
            return BlockWithCommit(rlp.encode(block), self.validator.commit(number, header.hash).encode())
        if self.mode == "bad-sig" and number == 3:
            (address, signature), *_ = commit.signatures
            broken = bytes([signature[0] ^ 0xFF]) + signature[1:]
            return BlockWithCommit(item.block, Commit(commit.height, commit.block_hash, ((address, broken),)).encode())
        if self.mode == "dup-sig" and number == 3:
            sig = commit.signatures[0]
            return BlockWithCommit(item.block, Commit(commit.height, commit.block_hash, (sig, sig)).encode())
        if self.mode == "wrong-block" and number == 3:
            other = self.core.ledger.header_by_number(5)
            assert other is not None
            replacement = encode_block(self.core, self.core.ledger.block(other))
            assert replacement is not None
            return replacement
        return item

    async def serve_blocks(self, request: BlocksRequest) -> list[BlockWithCommit]:
        ledger = self.core.ledger
        out = []
        for number in range(max(1, request.start), request.start + request.count):
            header = ledger.header_by_number(number)
            if header is None:
                break
            item = encode_block(self.core, ledger.block(header))
            assert item is not None
            if self.mode == "garbage" and number == 3:
                out.append(BlockWithCommit(b"\xff\xfe garbage " * 3, b"\x00junk"))
            else:
                out.append(self._tamper(number, item))
        return out

    async def serve_blob(self, content_hash: bytes) -> bytes | None:
        return b"not the blob you asked for"

    async def on_status(self, peer: str, status: Status) -> None:
        pass

    async def on_transaction(self, raw: bytes, peer: str) -> Verdict:
        return Verdict.IGNORE

    async def on_block(self, raw: bytes, peer: str) -> Verdict:
        return Verdict.IGNORE


async def main(datadir: Path, genesis_path: Path, key_file: Path, keydir: Path, modes: list[str]) -> None:
    ledger = Ledger(LevelDBStore(datadir), load_genesis(genesis_path))
    core = assemble(ledger, produces_blocks=False).core
    validator = SingleValidator(bytes.fromhex(key_file.read_text().strip()[2:]), ledger.chain_id)
    async with trio.open_nursery() as nursery:
        for mode in modes:
            chain = EvilChain(core, validator, mode)
            host = P2PHost(P2PConfig(keydir / f"evil-{mode}.key", port=0, ban_seconds=1), chain,
                           ledger.chain_id, chain.genesis_hash)
            await nursery.start(host.run)
            print(f"EVIL {mode} {host.listen_addr}", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5:])
