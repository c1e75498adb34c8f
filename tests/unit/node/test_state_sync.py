"""State sync's node fetcher against peers stood in for by the source chain's store (the one
stub: the network call): every node under the committed root arrives and the pivot is adopted
with the source's state; a peer serving a node that does not hash to what was asked is banned
and another serves it; a resumed sync fetches only the nodes it lacks; a malformed request is a
wire error."""

from __future__ import annotations

import pytest
import rlp
import trio
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address

from consensus import SingleValidator
from genesis.dev import DEV_MNEMONIC, derive_accounts, derive_validator_key, dev_genesis
from node.chain.assembly import assemble
from node.chain.reader import NetworkStatus
from node.state_sync import MAX_HASHES, StateSync, children, decode_request
from node.worker import ChainWorker
from p2p.wire import WireError
from state import Ledger, MemoryStore, decode_transaction

ACCOUNTS = derive_accounts(DEV_MNEMONIC, 3)
GENESIS = dev_genesis(timestamp=1_700_000_000, accounts=3)
INITCODE = bytes.fromhex("601b600c600039601b6000f3" "36156015576020356000355560003560206000a1005b60006000fd")


def source_chain(blocks: int = 12) -> tuple[Ledger, object, bytes, list[str]]:
    """A chain with transfers to fresh accounts and a contract with storage; (ledger, pivot
    block, its commit, contract addresses)."""
    ledger = Ledger(MemoryStore(), GENESIS)
    validator = SingleValidator(derive_validator_key(DEV_MNEMONIC), GENESIS.chain_id)
    sender = ACCOUNTS[0]
    contract = to_checksum_address(keccak(rlp.encode([to_canonical_address(sender.address), 0]))[12:])
    for b in range(blocks):
        txs = []
        if b == 0:
            txs.append(dict(nonce=0, gas=200_000, data=INITCODE, value=0))
        else:
            txs.append(dict(nonce=2 * b - 1, to=to_checksum_address(keccak(bytes([b]))[:20]), value=10**9, gas=21_000))
            txs.append(dict(nonce=2 * b, to=contract, gas=100_000, value=0,
                            data=(b % 5).to_bytes(32, "big") + (b + 7).to_bytes(32, "big")))
        signed = [decode_transaction(bytes(Account.sign_transaction(
            {**tx, "chainId": GENESIS.chain_id, "gasPrice": 10**10}, sender.private_key).raw_transaction)) for tx in txs]
        built = ledger.build_block(signed, GENESIS.timestamp + b + 1, validator.address,
                                   lambda h, bh: validator.commit(h, bh).encode())
        assert not built.rejected
    head = ledger.block(ledger.head)
    commit = ledger.commit_of(head.header.hash)
    assert commit is not None
    return ledger, head, commit, [contract]


class Host:
    """The peers' side as StateSync sees it: who is connected, and bans."""

    def __init__(self, peers: list[str]) -> None:
        self.peers = {p: None for p in peers}
        self.banned: dict[str, str] = {}

    def is_banned(self, peer: str) -> bool:
        return peer in self.banned

    async def ban(self, peer: str, reason: str) -> None:
        self.banned[peer] = reason
        self.peers.pop(peer, None)


class Syncer(StateSync):
    """StateSync whose node requests are answered from the source chain's store; ``evil`` peers
    serve every node with one byte flipped."""

    source: MemoryStore
    evil: set[str]
    asked: list[bytes]

    async def _request_nodes(self, peer: str, hashes: list[bytes]) -> list[bytes]:
        self.asked += hashes
        out = []
        for h in hashes:
            value = self.source.get(h) or b""
            out.append(value[:-1] + bytes([value[-1] ^ 1]) if value and peer in self.evil else value)
        return out


def sync(source: Ledger, pivot, commit: bytes, peers: list[str], evil: set[str],
         held: set[bytes] = frozenset()) -> tuple[Ledger, Syncer, Host]:
    worker = ChainWorker("test-state-sync")
    target = Ledger(MemoryStore(), GENESIS)
    if held:
        target.store.write({h: source.store.get(h) for h in held})
    chain = worker.call_blocking(lambda: assemble(target, produces_blocks=False))
    host = Host(peers)
    syncer = Syncer(host, chain.pipeline, worker, None, NetworkStatus())  # type: ignore[arg-type]
    syncer.source, syncer.evil, syncer.asked = source.store, evil, []

    async def main() -> None:
        await syncer._fetch_state(bytes(pivot.header.state_root), int(pivot.number))
        await worker.run(chain.pipeline.adopt_state, pivot, commit, [])

    try:
        trio.run(main)
    finally:
        worker.stop()
    return target, syncer, host


def assert_same_state(source: Ledger, target: Ledger, contracts: list[str]) -> None:
    assert target.head == source.head
    a, b = source.state_at(source.head), target.state_at(target.head)
    for account in [*[x.address for x in ACCOUNTS], *contracts]:
        address = to_canonical_address(account)
        assert (a.get_balance(address), a.get_nonce(address), a.get_code(address)) == (
            b.get_balance(address), b.get_nonce(address), b.get_code(address))
    for contract in contracts:
        for slot in range(5):
            assert a.get_storage(to_canonical_address(contract), slot) == b.get_storage(to_canonical_address(contract), slot)
    assert any(a.get_storage(to_canonical_address(c), s) for c in contracts for s in range(5))


def test_the_state_under_the_committed_root_arrives_and_is_adopted():
    source, pivot, commit, contracts = source_chain()
    target, syncer, host = sync(source, pivot, commit, ["honest"], set())
    assert_same_state(source, target, contracts)
    assert host.banned == {} and syncer.pulled == len(set(syncer.asked))


def test_a_peer_serving_a_node_that_does_not_hash_is_banned_and_another_serves_it():
    source, pivot, commit, contracts = source_chain()
    target, syncer, host = sync(source, pivot, commit, ["evil", "honest"], {"evil"})
    assert set(host.banned) == {"evil"} and "does not hash" in host.banned["evil"]
    assert_same_state(source, target, contracts)


def test_a_resumed_sync_fetches_only_what_it_lacks():
    source, pivot, commit, contracts = source_chain()
    _, first, _ = sync(source, pivot, commit, ["honest"], set())
    every = set(first.asked)
    held = set(sorted(every)[: len(every) // 2]) | {bytes(pivot.header.state_root)}
    target, resumed, _ = sync(source, pivot, commit, ["honest"], set(), held)
    assert set(resumed.asked) == every - held
    assert_same_state(source, target, contracts)


def test_a_malformed_request_is_a_wire_error_and_a_node_names_its_children():
    for bad in (b"\xff", rlp.encode([b"\x01" * 31]), rlp.encode([b"\x01" * 32] * (MAX_HASHES + 1)), rlp.encode([])):
        with pytest.raises(WireError):
            decode_request(bad)
    assert decode_request(rlp.encode([b"\x02" * 32])) == [b"\x02" * 32]
    leaf = rlp.encode([b"\x20", rlp.encode([1, 5, b"\x11" * 32, b"\x22" * 32])])
    assert children(leaf, 0) == [(b"\x11" * 32, 1), (b"\x22" * 32, 2)]
    assert children(leaf, 1) == []
