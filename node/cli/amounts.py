"""Amounts of ether: read exactly as wei (``1.5eth``, ``20gwei``), printed as ether for people."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

_UNITS = {"wei": 1, "gwei": 10**9, "eth": 10**18, "ether": 10**18}


def parse_amount(text: str) -> int:
    """``1.5eth``, ``0.1ether``, ``20gwei``, ``123wei`` or a bare integer of wei."""
    raw = text.strip().lower().replace("_", "")
    for unit in sorted(_UNITS, key=len, reverse=True):
        if raw.endswith(unit):
            number, scale = raw[: -len(unit)].strip(), _UNITS[unit]
            break
    else:
        number, scale = raw, 1
        if "." in raw:
            raise argparse.ArgumentTypeError(f"{text}: give a unit (e.g. {text}eth) or an integer of wei")
    try:
        value = Decimal(number) * scale
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text}: not an amount (e.g. 0.1eth, 20gwei, 1000wei)") from None
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text}: not a whole number of wei")
    return int(value)


def ether(wei: int | str) -> str:
    """Wei as ether for people: ``0.0015 ETH``."""
    value = int(wei, 16) if isinstance(wei, str) else int(wei)
    text = f"{Decimal(value) / 10**18:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"
