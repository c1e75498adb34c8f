"""The precompiles' ABIs: loaded from ``abi/<Name>.json`` (compiled from ``sol/I<Name>.sol``).

Calls are decoded and results and events encoded with eth_abi against these files only, so the
Solidity interface users compile against and the precompile cannot drift apart: a function in
the ABI without a handler is caught by a unit test, a handler without an ABI entry at import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak, to_canonical_address

from .storage import Record, snake

ABI_DIR = Path(__file__).parent / "abi"
SOL_DIR = Path(__file__).parent / "sol"


def abi_type(param: dict[str, Any]) -> str:
    """Canonical type string of an ABI parameter, tuples expanded: ``(uint256,address)[]``."""
    t = param["type"]
    if t.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){t[len('tuple'):]}"
    return t


def signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(abi_type(p) for p in item['inputs'])})"


@dataclass(frozen=True)
class AbiFunction:
    """One function of a precompile's ABI."""

    #: function name, e.g. ``createDatanet``
    name: str
    #: 4-byte selector: ``keccak256(signature)[:4]``
    selector: bytes
    #: canonical input types, for eth_abi
    input_types: tuple[str, ...]
    #: canonical output types
    output_types: tuple[str, ...]
    #: raw ABI entry (names, components)
    item: dict[str, Any]

    @property
    def payable(self) -> bool:
        return bool(self.item.get("stateMutability") == "payable")

    @property
    def view(self) -> bool:
        return self.item.get("stateMutability") in ("view", "pure")

    def decode_args(self, data: bytes) -> list[Any]:
        values = decode(list(self.input_types), data)
        return [_to_python(p, v) for p, v in zip(self.item["inputs"], values, strict=True)]

    def encode_args(self, *args: Any) -> bytes:
        """Calldata (selector + arguments), e.g. for native transactions and tests."""
        values = [_to_abi(p, a) for p, a in zip(self.item["inputs"], args, strict=True)]
        return self.selector + encode(list(self.input_types), values)

    def encode_result(self, result: Any) -> bytes:
        outs = self.item["outputs"]
        if not outs:
            return b""
        values = list(result) if len(outs) > 1 else [result]
        return encode(list(self.output_types), [_to_abi(p, v) for p, v in zip(outs, values, strict=True)])

    def decode_result(self, data: bytes) -> Any:
        values = decode(list(self.output_types), data)
        out = [_to_python(p, v) for p, v in zip(self.item["outputs"], values, strict=True)]
        return out[0] if len(out) == 1 else tuple(out)


@dataclass(frozen=True)
class AbiEvent:
    """One event: topic 0 and how to split arguments into topics and data."""

    name: str
    topic0: int
    item: dict[str, Any]

    def encode(self, *args: Any) -> tuple[tuple[int, ...], bytes]:
        topics = [self.topic0]
        data_types, data_values = [], []
        for p, a in zip(self.item["inputs"], args, strict=True):
            a = _to_abi(p, a)
            if p["indexed"]:
                if p["type"] in ("string", "bytes"):
                    raw = a.encode() if isinstance(a, str) else bytes(a)
                    topics.append(int.from_bytes(keccak(raw), "big"))
                else:
                    topics.append(int.from_bytes(encode([abi_type(p)], [a]), "big"))
            else:
                data_types.append(abi_type(p))
                data_values.append(a)
        return tuple(topics), encode(data_types, data_values)


def _to_python(param: dict[str, Any], value: Any) -> Any:
    t = param["type"]
    if t.endswith("[]"):
        inner = dict(param, type=t[:-2])
        return [_to_python(inner, v) for v in value]
    if t == "tuple":
        return {snake(c["name"]): _to_python(c, v)
                for c, v in zip(param["components"], value, strict=True)}
    if t == "address":
        return to_canonical_address(value)
    return value


def _to_abi(param: dict[str, Any], value: Any) -> Any:
    t = param["type"]
    if t.endswith("[]"):
        inner = dict(param, type=t[:-2])
        return [_to_abi(inner, v) for v in value]
    if t == "tuple":
        if isinstance(value, Record):
            value = {f: getattr(value, f) for f in value.__dataclass_fields__}
        if isinstance(value, dict):
            return tuple(_to_abi(c, value[snake(c["name"])]) for c in param["components"])
        return tuple(_to_abi(c, v) for c, v in zip(param["components"], value, strict=True))
    if t == "address" and isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if t == "address" and isinstance(value, int):
        return "0x" + value.to_bytes(20, "big").hex()
    if t.startswith("bytes") and t != "bytes" and isinstance(value, bytes):
        return value.rjust(int(t[5:]), b"\x00")
    return value


@dataclass(frozen=True)
class ModuleAbi:
    """A precompile's functions (by selector and by name) and events (by name)."""

    name: str
    raw: tuple[dict[str, Any], ...]
    functions: dict[bytes, AbiFunction]
    by_name: dict[str, AbiFunction]
    events: dict[str, AbiEvent]


@cache
def load(name: str) -> ModuleAbi:
    """ABI of module ``name`` (``Datanets``, ``ModelRegistry``, ...), as shipped in ``abi/``."""
    return parse(name, json.loads((ABI_DIR / f"{name}.json").read_text()))


def parse(name: str, raw: list[dict[str, Any]]) -> ModuleAbi:
    """Module ``name``'s ABI from its JSON entries (what ``solc --abi`` writes)."""
    functions: dict[bytes, AbiFunction] = {}
    by_name: dict[str, AbiFunction] = {}
    events: dict[str, AbiEvent] = {}
    for item in raw:
        if item["type"] == "function":
            sig = signature(item)
            fn = AbiFunction(
                name=item["name"], selector=keccak(text=sig)[:4],
                input_types=tuple(abi_type(p) for p in item["inputs"]),
                output_types=tuple(abi_type(p) for p in item["outputs"]), item=item)
            if item["name"] in by_name:
                raise ValueError(f"{name}: overloaded function {item['name']} is not supported")
            functions[fn.selector] = fn
            by_name[fn.name] = fn
        elif item["type"] == "event":
            events[item["name"]] = AbiEvent(
                item["name"], int.from_bytes(keccak(text=signature(item)), "big"), item)
    return ModuleAbi(name, tuple(raw), functions, by_name, events)


def sol_source(name: str) -> str:
    """The Solidity interface ``sol/I<name>.sol``, as shipped."""
    return (SOL_DIR / f"I{name}.sol").read_text()
