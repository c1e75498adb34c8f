"""Amounts the CLI reads and prints: ether for people, wei exactly."""

import argparse

import pytest

from node.cli.amounts import ether, parse_amount


@pytest.mark.parametrize(("text", "wei"), [
    ("1eth", 10**18), ("0.1ether", 10**17), ("1.5 ETH", 15 * 10**17), ("20gwei", 20 * 10**9),
    ("123wei", 123), ("2000000000000000000", 2 * 10**18), ("0", 0), ("1_000wei", 1000),
])
def test_amounts_parse_to_exact_wei(text, wei):
    assert parse_amount(text) == wei


@pytest.mark.parametrize("text", ["1.5", "-1eth", "abc", "0.1wei", "1e", ""])
def test_bad_amounts_are_refused_with_a_hint(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_amount(text)


def test_ether_prints_without_hex_or_float_noise():
    assert ether(0) == "0 ETH"
    assert ether(10**15) == "0.001 ETH"
    assert ether("0xc6f3b40b6c000") == "0.0035 ETH"
    assert ether(1) == "0.000000000000000001 ETH"
    assert ether(12 * 10**18) == "12 ETH"
