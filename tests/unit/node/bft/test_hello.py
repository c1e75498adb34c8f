"""The consensus hello (node/bft/hello.py): it proves which validator opened a stream, on this
link only: a captured hello replayed from another peer, to another peer, or on another chain does
not verify, and bytes that are not a hello are a typed error."""

import pytest
import rlp
from eth_account import Account
from eth_hash.auto import keccak

from node.bft.hello import MAX_HELLO_BYTES, Hello, HelloError

KEY = keccak(b"hello validator")
ADDRESS = bytes.fromhex(Account.from_key(KEY).address[2:])


def test_a_hello_names_its_validator_on_its_link_only():
    hello = Hello.decode(Hello.make(7, "sender", "receiver", KEY).encode())
    assert hello.check(7, "sender", "receiver") == ADDRESS
    for chain, sender, receiver in ((8, "sender", "receiver"), (7, "thief", "receiver"), (7, "sender", "other")):
        with pytest.raises(HelloError):
            hello.check(chain, sender, receiver)
    forged = Hello(7, b"\x01" * 20, hello.signature)  # someone else's name on the same signature
    with pytest.raises(HelloError):
        forged.check(7, "sender", "receiver")


@pytest.mark.parametrize("raw", [b"", b"\xc0", b"\x00" * (MAX_HELLO_BYTES + 1), rlp.encode([1, 7, b"\x01" * 20]),
                                 rlp.encode([2, 7, b"\x01" * 20, b"\x02" * 65]),
                                 rlp.encode([1, 7, b"\x01" * 19, b"\x02" * 65]), rlp.encode([1, [7], b"", b""])])
def test_bytes_that_are_not_a_hello_are_a_typed_error(raw):
    with pytest.raises(HelloError):
        Hello.decode(raw)
