"""eth_getLogs reads only the blocks whose bloom may hold a match: the bloom is read in place
from the stored header, the test never drops a block that holds a match (differential against
matching every log of every block), and a filter of many alternatives is not slowed by them."""

from __future__ import annotations

import itertools
import random

import rlp
from eth.rlp.headers import BlockHeader
from eth.vm.forks.cancun.blocks import CancunBlockHeader
from eth.vm.forks.london.blocks import LondonBlockHeader
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_bloom import BloomFilter

from node.chain.reader import BlockRef, LogFilter
from node.rpc.filters import MAX_BLOOM_ALTERNATIVES, bloom_test, matches
from state.chain import _header_bloom
from tests.unit.node.rpc.inprocess import ACCOUNTS, dev_server, result

A0 = ACCOUNTS[0].address
TOPICS = [bytes([i]) * 32 for i in range(1, 5)]


def _emitter(topic_a: bytes, topic_b: bytes) -> str:
    """Init code that logs (topic_a, topic_b) with no data from its constructor, then returns
    no code."""
    return "0x7f" + topic_b.hex() + "7f" + topic_a.hex() + "60006000a2" + "00"


def test_the_bloom_read_in_place_is_the_headers_in_every_fork() -> None:
    rng = random.Random(7)
    for cls in (BlockHeader, LondonBlockHeader, CancunBlockHeader, PragueBlockHeader):
        fields = {"difficulty": 0 if cls is not BlockHeader else 1, "block_number": rng.randrange(1, 10**9),
                  "gas_limit": 30_000_000, "timestamp": rng.randrange(10**9), "bloom": rng.getrandbits(2048)}
        header = cls(**fields)
        raw = rlp.encode(header)
        assert _header_bloom(raw) == header.bloom == int.from_bytes(rlp.decode(raw)[6], "big")


def test_a_bloom_that_misses_any_wanted_position_rules_the_block_out() -> None:
    address, other = b"\xaa" * 20, b"\xbb" * 20
    bloom = int(BloomFilter.from_iterable([address, TOPICS[0], TOPICS[1]]))

    def crit(addresses: tuple[bytes, ...] = (), *topics: tuple[bytes, ...] | None) -> LogFilter:
        return LogFilter(BlockRef(number=0), BlockRef(tag="latest"), None, addresses, topics)
    assert bloom_test(crit())(bloom)
    assert bloom_test(crit((address,)))(bloom)
    assert not bloom_test(crit((other,)))(bloom)
    assert bloom_test(crit((other, address)))(bloom)
    assert bloom_test(crit((), (TOPICS[0],), None, (TOPICS[1],)))(bloom)
    assert not bloom_test(crit((address,), (TOPICS[2],)))(bloom)
    assert bloom_test(crit((address,), (TOPICS[2], TOPICS[1])))(bloom)
    # past MAX_BLOOM_ALTERNATIVES values at a position, that position is not tested
    many = tuple(i.to_bytes(20, "big") for i in range(1, MAX_BLOOM_ALTERNATIVES + 2))
    assert bloom_test(crit(many))(bloom)


def test_log_queries_match_every_log_of_every_block() -> None:
    server = dev_server()
    for a, b in itertools.product(TOPICS[:3], TOPICS[1:]):
        result(server, "eth_sendTransaction", {"from": A0, "data": _emitter(a, b), "gas": "0x100000"})
        result(server, "evm_mine")  # an empty block between: its bloom is 0
    head = int(result(server, "eth_blockNumber"), 16)
    every = [log for n in range(head + 1)
             for r in result(server, "eth_getBlockReceipts", hex(n)) or [] for log in r["logs"]]
    assert len(every) == 9
    addresses = sorted({log["address"] for log in every})
    rng = random.Random(1)
    for _ in range(60):
        wanted_addresses = rng.sample(addresses, rng.randrange(0, 3))
        topics: list[list[str] | None] = []
        for _position in range(rng.randrange(0, 3)):
            topics.append(None if rng.random() < 0.3 else ["0x" + t.hex() for t in rng.sample(TOPICS, rng.randrange(1, 3))])
        criteria = {"fromBlock": "0x0", "toBlock": "latest", "address": wanted_addresses, "topics": topics}
        got = result(server, "eth_getLogs", criteria)
        parsed = LogFilter(BlockRef(number=0), BlockRef(tag="latest"), None,
                           tuple(bytes.fromhex(x[2:]) for x in wanted_addresses),
                           tuple(None if t is None else tuple(bytes.fromhex(x[2:]) for x in t) for t in topics))
        assert got == [log for log in every if matches(log, parsed)], criteria
