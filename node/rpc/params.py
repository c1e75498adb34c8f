"""Parsing of JSON-RPC parameters into Python values, with geth's error wording.

Each parser raises :class:`InvalidParams` naming the argument, so a wrong type gets
-32602 with a message that says which argument and why, and never reaches the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_typing import Address
from eth_utils import is_hex_address, to_canonical_address

from node.chain.reader import BlockRef, LogFilter
from node.rpc.errors import InvalidParams
from state import AccountOverride

if TYPE_CHECKING:
    from eth.abc import StateAPI

    from node.chain.core import ChainCore

BLOCK_TAGS = ("latest", "pending", "earliest", "safe", "finalized")
#: geth's caps on a log filter: addresses, and alternatives per topic position.
MAX_FILTER_ADDRESSES = 1000
MAX_TOPIC_ALTERNATIVES = 1000
#: Most accounts (and storage slots per account) one state override may name.
MAX_OVERRIDE_ACCOUNTS = 1000
MAX_OVERRIDE_SLOTS = 10_000


def quantity(value: Any, name: str = "argument") -> int:
    if isinstance(value, bool):
        raise InvalidParams(f"invalid argument {name}: expected hex quantity, got bool")
    if isinstance(value, int) and value >= 0:
        return value
    if not isinstance(value, str):
        raise InvalidParams(f"invalid argument {name}: expected hex quantity, got {type(value).__name__}")
    if not value.startswith(("0x", "0X")):
        raise InvalidParams(f"invalid argument {name}: hex string without 0x prefix")
    if len(value) == 2:
        raise InvalidParams(f"invalid argument {name}: hex string \"0x\"")
    try:
        number = int(value, 16)
    except ValueError:
        raise InvalidParams(f"invalid argument {name}: invalid hex string") from None
    if number >= 2**256:
        raise InvalidParams(f"invalid argument {name}: hex number > 256 bits")
    return number


def data(value: Any, name: str = "argument") -> bytes:
    if not isinstance(value, str):
        raise InvalidParams(f"invalid argument {name}: expected hex data, got {type(value).__name__}")
    if not value.startswith(("0x", "0X")):
        raise InvalidParams(f"invalid argument {name}: hex string without 0x prefix")
    body = value[2:]
    if len(body) % 2:
        raise InvalidParams(f"invalid argument {name}: hex string of odd length")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise InvalidParams(f"invalid argument {name}: invalid hex string") from None


def address(value: Any, name: str = "argument") -> Address:
    if not isinstance(value, str) or not is_hex_address(value):
        raise InvalidParams(f"invalid argument {name}: expected a 20-byte hex address")
    return Address(bytes(to_canonical_address(value)))


def hash32(value: Any, name: str = "argument") -> bytes:
    raw = data(value, name)
    if len(raw) != 32:
        raise InvalidParams(
            f"invalid argument {name}: hex string has length {len(raw) * 2}, want 64 for common.Hash"
        )
    return raw


def boolean(value: Any, name: str = "argument") -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(f"invalid argument {name}: expected bool, got {type(value).__name__}")
    return value


def block_ref(value: Any, name: str = "argument") -> BlockRef:
    if value is None:
        return BlockRef(tag="latest")
    if isinstance(value, str) and value in BLOCK_TAGS:
        return BlockRef(tag=value)
    if isinstance(value, dict):
        if "blockHash" in value:
            return BlockRef(
                block_hash=hash32(value["blockHash"], name),
                require_canonical=bool(value.get("requireCanonical", False)),
            )
        if "blockNumber" in value:
            return block_ref(value["blockNumber"], name)
        raise InvalidParams(f"invalid argument {name}: expected blockHash or blockNumber")
    if isinstance(value, str) and len(value) == 66:
        # a bare block hash, as geth's and anvil's BlockNumberOrHash accept it
        return BlockRef(block_hash=hash32(value, name))
    if isinstance(value, str):
        return BlockRef(number=quantity(value, name))
    raise InvalidParams(f"invalid argument {name}: expected block number, tag or hash")


def state_at(core: ChainCore, value: Any, position: int) -> StateAPI:
    """The state at the block that parameter ``position`` names (``latest`` when absent):
    the last parameter of every state read."""
    return core.ledger.state_at(core.resolve(block_ref(value, str(position))))


@dataclass(frozen=True)
class CallRequest:
    """The transaction object of eth_call, eth_estimateGas and eth_sendTransaction."""

    sender: bytes | None
    to: bytes | None
    gas: int | None
    gas_price: int | None
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    value: int
    data: bytes
    nonce: int | None
    access_list: list[tuple[bytes, list[int]]] | None
    kind: int | None
    authorization_list: tuple[SetCodeAuthorization, ...] | None = None
    """EIP-7702 authorizations (a set-code transaction), signed by their authorities."""


@dataclass(frozen=True)
class SetCodeAuthorization:
    """One signed EIP-7702 authorization: delegate the signer's code to ``address``."""

    chain_id: int
    address: bytes
    nonce: int
    y_parity: int
    r: int
    s: int


#: Most authorizations one transaction object may carry (a 128 KiB transaction holds ~1,300).
MAX_AUTHORIZATIONS = 1024


def authorization_list(value: Any, name: str) -> tuple[SetCodeAuthorization, ...]:
    if not isinstance(value, list):
        raise InvalidParams(f"invalid argument {name}: expected a list")
    if len(value) > MAX_AUTHORIZATIONS:
        raise InvalidParams(f"invalid argument {name}: at most {MAX_AUTHORIZATIONS} authorizations")
    out = []
    for i, a in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(a, dict):
            raise InvalidParams(f"invalid argument {where}: expected an object")
        parity = a.get("yParity", a.get("v"))
        for key, v in (("chainId", a.get("chainId")), ("nonce", a.get("nonce")), ("yParity", parity),
                       ("r", a.get("r")), ("s", a.get("s"))):
            if v is None:
                raise InvalidParams(f"invalid argument {where}: missing {key}")
        out.append(
            SetCodeAuthorization(
                chain_id=quantity(a["chainId"], f"{where}.chainId"),
                address=address(a.get("address"), f"{where}.address"),
                nonce=quantity(a["nonce"], f"{where}.nonce"),
                y_parity=quantity(parity, f"{where}.yParity"),
                r=quantity(a["r"], f"{where}.r"),
                s=quantity(a["s"], f"{where}.s"),
            )
        )
    return tuple(out)


def call_request(value: Any, name: str = "argument 0") -> CallRequest:
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid argument {name}: expected a transaction object")

    def opt(key: str, parse: Any) -> Any:
        v = value.get(key)
        return None if v is None else parse(v, f"{name}.{key}")

    payload = value.get("input", value.get("data"))
    if "input" in value and "data" in value and value["input"] != value["data"]:
        raise InvalidParams(
            f"invalid argument {name}: both \"data\" and \"input\" are set and not equal"
        )
    access_list: list[tuple[bytes, list[int]]] | None = None
    if value.get("accessList") is not None:
        if not isinstance(value["accessList"], list):
            raise InvalidParams(f"invalid argument {name}.accessList: expected a list")
        access_list = [
            (
                address(e.get("address") if isinstance(e, dict) else None, f"{name}.accessList"),
                [int.from_bytes(hash32(k, f"{name}.accessList"), "big") for k in e.get("storageKeys", [])],
            )
            for e in value["accessList"]
        ]
    return CallRequest(
        sender=opt("from", address),
        to=opt("to", address),
        gas=opt("gas", quantity),
        gas_price=opt("gasPrice", quantity),
        max_fee_per_gas=opt("maxFeePerGas", quantity),
        max_priority_fee_per_gas=opt("maxPriorityFeePerGas", quantity),
        value=opt("value", quantity) or 0,
        data=data(payload, f"{name}.input") if payload is not None else b"",
        nonce=opt("nonce", quantity),
        access_list=access_list,
        kind=opt("type", quantity),
        authorization_list=opt("authorizationList", authorization_list),
    )


def state_overrides(value: Any, name: str = "argument 2") -> dict[bytes, AccountOverride]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid argument {name}: expected an object of address -> override")
    if len(value) > MAX_OVERRIDE_ACCOUNTS:
        raise InvalidParams(f"invalid argument {name}: at most {MAX_OVERRIDE_ACCOUNTS} accounts")
    out: dict[bytes, AccountOverride] = {}
    for key, o in value.items():
        if not isinstance(o, dict):
            raise InvalidParams(f"invalid argument {name}: override of {key} is not an object")
        if o.get("state") is not None and o.get("stateDiff") is not None:
            raise InvalidParams(f"invalid argument {name}: account {key} has both 'state' and 'stateDiff'")

        def slots(v: Any) -> dict[int, int] | None:
            if v is None:
                return None
            if not isinstance(v, dict):
                raise InvalidParams(f"invalid argument {name}: storage override must be an object")
            if len(v) > MAX_OVERRIDE_SLOTS:
                raise InvalidParams(f"invalid argument {name}: at most {MAX_OVERRIDE_SLOTS} storage slots per account")
            return {
                int.from_bytes(hash32(s, name), "big"): int.from_bytes(hash32(x, name), "big")
                for s, x in v.items()
            }

        out[address(key, name)] = AccountOverride(
            balance=None if o.get("balance") is None else quantity(o["balance"], name),
            nonce=None if o.get("nonce") is None else quantity(o["nonce"], name),
            code=None if o.get("code") is None else data(o["code"], name),
            state=slots(o.get("state")),
            state_diff=slots(o.get("stateDiff")),
        )
    return out


def log_filter(value: Any, name: str = "argument 0") -> LogFilter:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid argument {name}: expected a filter object")
    block_hash = value.get("blockHash")
    if block_hash is not None and (value.get("fromBlock") is not None or value.get("toBlock") is not None):
        raise InvalidParams(f"invalid argument {name}: cannot specify both BlockHash and FromBlock/ToBlock")
    raw_addresses = value.get("address")
    if raw_addresses is None:
        addresses: tuple[bytes, ...] = ()
    elif isinstance(raw_addresses, list):
        if len(raw_addresses) > MAX_FILTER_ADDRESSES:
            raise InvalidParams(f"invalid argument {name}: at most {MAX_FILTER_ADDRESSES} addresses")
        addresses = tuple(address(a, f"{name}.address") for a in raw_addresses)
    else:
        addresses = (address(raw_addresses, f"{name}.address"),)
    raw_topics = value.get("topics") or []
    if not isinstance(raw_topics, list) or len(raw_topics) > 4:
        raise InvalidParams(f"invalid argument {name}: topics must be a list of at most 4")
    topics: list[tuple[bytes, ...] | None] = []
    for t in raw_topics:
        if t is None:
            topics.append(None)
        elif isinstance(t, list):
            if len(t) > MAX_TOPIC_ALTERNATIVES:
                raise InvalidParams(f"invalid argument {name}: at most {MAX_TOPIC_ALTERNATIVES} topics per position")
            topics.append(tuple(hash32(x, f"{name}.topics") for x in t) if t else None)
        else:
            topics.append((hash32(t, f"{name}.topics"),))
    return LogFilter(
        from_block=block_ref(value.get("fromBlock"), f"{name}.fromBlock"),
        to_block=block_ref(value.get("toBlock"), f"{name}.toBlock"),
        block_hash=hash32(block_hash, f"{name}.blockHash") if block_hash is not None else None,
        addresses=addresses,
        topics=tuple(topics),
    )
