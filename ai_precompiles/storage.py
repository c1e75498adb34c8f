"""Storage layout of the AI precompiles: slot derivation, metered reads/writes, arrays, records.

Layout (every module, in its own account's storage):

- A *root* slot is ``keccak256(enc(part_0) ++ enc(part_1) ++ ...)`` where ``enc`` maps a string
  to ``keccak256(utf8)``, an int to its 32-byte big-endian form and bytes (address, bytes32) to
  32 bytes left-padded. Part 0 is always a namespace string such as ``"datanet"``; e.g. datanet 7
  lives at ``slot("datanet", 7)`` and a counter at ``slot("datanet.count")``.
- A *record* (a frozen dataclass deriving :class:`Record`) stores field ``i`` at ``root + i``, one
  full slot per field (no packing: a slot write is the unit of gas accounting).
- A ``uint``/``bool``/``address``/``bytes32`` field is one word. A ``string`` field keeps its byte
  length at the field slot and its bytes in 32-byte chunks at ``keccak256(field_slot) + j``. A list
  field keeps its length at the field slot and element ``j`` at ``keccak256(field_slot) + j``;
  this is Solidity's layout for ``string`` and dynamic arrays, so ``eth_getStorageAt`` readers can
  reuse their tooling.

Gas: :class:`Store` meters every access with EIP-2929/2200 prices (first touch of a slot in a
call is cold) through a :class:`GasMeter`, so an operation never costs less than the SSTOREs it
performs, whatever its governance price (see ``context.GasMeter``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from eth_utils import keccak

WORD = 2**256

# EIP-2929 / EIP-2200 / EIP-3529 prices, used as the storage floor of every operation.
COLD_SLOAD = 2100
WARM_ACCESS = 100
SSTORE_SET = 20000
SSTORE_RESET = 2900


def enc(part: int | bytes | str) -> bytes:
    """32-byte encoding of one slot-path part (see module docstring)."""
    if isinstance(part, bool):
        return int(part).to_bytes(32, "big")
    if isinstance(part, int):
        return (part % WORD).to_bytes(32, "big")
    if isinstance(part, str):
        return keccak(text=part)
    if isinstance(part, bytes | bytearray):
        if len(part) > 32:
            return keccak(bytes(part))
        return bytes(part).rjust(32, b"\x00")
    raise TypeError(f"slot part of type {type(part).__name__}")


def slot(*parts: int | bytes | str) -> int:
    """Root slot of a path of parts: ``keccak256(enc(p0) ++ enc(p1) ++ ...)``."""
    return int.from_bytes(keccak(b"".join(enc(p) for p in parts)), "big")


def data_slot(field_slot: int) -> int:
    """First slot of a string's chunks or an array's elements: ``keccak256(field_slot)``."""
    return int.from_bytes(keccak(field_slot.to_bytes(32, "big")), "big")


class StorageState(Protocol):
    """The part of py-evm's ``StateAPI`` the store uses."""

    def get_storage(self, address: bytes, slot: int, from_journal: bool = True) -> int: ...

    def set_storage(self, address: bytes, slot: int, value: int) -> None: ...


class Meter(Protocol):
    def charge(self, gas: int, reason: str) -> None: ...


class FreeMeter:
    """Meter for plain-Python reads (RPC): nothing is charged."""

    def charge(self, gas: int, reason: str) -> None:
        return None


class Store:
    """Word-level access to one account's storage, metered with EVM storage prices.

    ``touched`` remembers slots accessed during this call (warm) and their original values, so
    that a repeated write is priced as EIP-2200 prices it.
    """

    def __init__(
        self,
        state: StorageState,
        address: bytes,
        meter: Meter | None = None,
        touched: dict[tuple[bytes, int], int] | None = None,
        writable: bool = False,
    ) -> None:
        self.state = state
        self.address = address
        self.meter: Meter = meter or FreeMeter()
        self.touched = touched if touched is not None else {}
        self.writable = writable

    def _touch(self, key: int) -> int:
        k = (self.address, key)
        if k in self.touched:
            self.meter.charge(WARM_ACCESS, "sload warm")
            return self.state.get_storage(self.address, key)
        value = self.state.get_storage(self.address, key)
        self.touched[k] = value
        self.meter.charge(COLD_SLOAD, "sload cold")
        return value

    def get(self, key: int) -> int:
        return self._touch(key)

    def set(self, key: int, value: int) -> None:
        if not self.writable:
            raise RuntimeError("write through a read-only store")
        if not 0 <= value < WORD:
            raise ValueError(f"storage word out of range: {value}")
        current = self._touch(key)  # charges the cold/warm access part
        original = self.touched[(self.address, key)]
        if value == current:
            return
        if original == current:
            self.meter.charge(SSTORE_SET if original == 0 else SSTORE_RESET, "sstore")
        self.state.set_storage(self.address, key, value)

    # -- typed helpers --
    def get_bytes32(self, key: int) -> bytes:
        return self.get(key).to_bytes(32, "big")

    def set_bytes32(self, key: int, value: bytes) -> None:
        self.set(key, int.from_bytes(value.rjust(32, b"\x00"), "big"))

    def get_address(self, key: int) -> bytes:
        return (self.get(key) % 2**160).to_bytes(20, "big")

    def set_address(self, key: int, value: bytes) -> None:
        self.set(key, int.from_bytes(value, "big"))

    def get_text(self, key: int) -> str:
        n = self.get(key)
        base = data_slot(key)
        raw = b"".join(self.get(base + j).to_bytes(32, "big") for j in range((n + 31) // 32))
        return raw[:n].decode("utf-8", errors="replace")

    def set_text(self, key: int, value: str) -> None:
        raw = value.encode("utf-8")
        old_n = self.get(key)
        self.set(key, len(raw))
        base = data_slot(key)
        chunks = (len(raw) + 31) // 32
        for j in range(chunks):
            self.set(base + j, int.from_bytes(raw[32 * j : 32 * j + 32].ljust(32, b"\x00"), "big"))
        for j in range(chunks, (old_n + 31) // 32):
            self.set(base + j, 0)

    def incr(self, key: int, delta: int = 1) -> int:
        """Add ``delta`` to a counter word and return the new value."""
        value = self.get(key) + delta
        self.set(key, value)
        return value


class Array:
    """A dynamic array of words: length at ``key``, element j at ``keccak256(key) + j``."""

    def __init__(self, store: Store, key: int) -> None:
        self.store = store
        self.key = key
        self.base = data_slot(key)

    def __len__(self) -> int:
        return self.store.get(self.key)

    def get(self, i: int) -> int:
        return self.store.get(self.base + i)

    def set(self, i: int, value: int) -> None:
        self.store.set(self.base + i, value)

    def append(self, value: int) -> int:
        """Append and return the new element's index."""
        n = self.store.get(self.key)
        self.store.set(self.base + n, value)
        self.store.set(self.key, n + 1)
        return n

    def __iter__(self) -> Iterator[int]:
        for i in range(len(self)):
            yield self.get(i)

    def replace(self, values: list[int]) -> None:
        old = len(self)
        for i, v in enumerate(values):
            self.set(i, v)
        for i in range(len(values), old):
            self.set(i, 0)
        self.store.set(self.key, len(values))


# -- records --

KINDS = ("uint", "bool", "address", "bytes32", "string", "uint[]", "address[]", "bytes32[]")


def rfield(kind: str, doc: str, default: Any = dataclasses.MISSING) -> Any:
    """A record field: ``kind`` is its storage kind (one of ``KINDS``), ``doc`` its meaning."""
    if kind not in KINDS:
        raise ValueError(kind)
    if default is dataclasses.MISSING and kind.endswith("[]"):
        return field(default_factory=tuple, metadata={"kind": kind, "doc": doc})
    if default is dataclasses.MISSING:
        default = {"uint": 0, "bool": False, "address": b"\x00" * 20, "bytes32": b"\x00" * 32,
                   "string": ""}[kind]
    return field(default=default, metadata={"kind": kind, "doc": doc})


def _to_word(kind: str, value: Any) -> int:
    if kind in ("uint", "uint[]"):
        return int(value)
    if kind == "bool":
        return 1 if value else 0
    return int.from_bytes(bytes(value), "big")


def _from_word(kind: str, word: int) -> Any:
    if kind in ("uint", "uint[]"):
        return word
    if kind == "bool":
        return word != 0
    if kind in ("address", "address[]"):
        return (word % 2**160).to_bytes(20, "big")
    return word.to_bytes(32, "big")


R = TypeVar("R", bound="Record")


def camel(name: str) -> str:
    """snake_case field name -> the camelCase name the Solidity struct uses."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Record:
    """Base of stored records: frozen dataclass fields declared with :func:`rfield`.

    ``NS`` is the namespace of the record's root slot: record ``key`` lives at ``slot(NS, key)``.
    """

    NS: ClassVar[str] = ""

    @classmethod
    def base_slot(cls, key: int | bytes | tuple[int | bytes, ...]) -> int:
        if isinstance(key, tuple):
            return slot(cls.NS, *key)
        return slot(cls.NS, key)

    @classmethod
    def field_index(cls, name: str) -> int:
        for i, f in enumerate(dataclasses.fields(cls)):
            if f.name == name:
                return i
        raise KeyError(name)

    @classmethod
    def field_slot(cls, key: int | bytes | tuple[int, ...], name: str) -> int:
        return cls.base_slot(key) + cls.field_index(name)

    @staticmethod
    def _read(store: Store, kind: str, s: int) -> Any:
        if kind == "string":
            return store.get_text(s)
        if kind.endswith("[]"):
            return tuple(_from_word(kind, w) for w in Array(store, s))
        return _from_word(kind, store.get(s))

    def encode(self, store: Store, key: int | bytes | tuple[int, ...]) -> None:
        """Write every field of this record under ``slot(NS, key)``."""
        base = self.base_slot(key)
        for i, f in enumerate(dataclasses.fields(self)):
            self._write(store, f.metadata["kind"], base + i, getattr(self, f.name))

    @staticmethod
    def _write(store: Store, kind: str, s: int, value: Any) -> None:
        if kind == "string":
            store.set_text(s, value)
        elif kind.endswith("[]"):
            Array(store, s).replace([_to_word(kind, v) for v in value])
        else:
            store.set(s, _to_word(kind, value))

    @classmethod
    def decode(cls: type[R], store: Store, key: int | bytes | tuple[int, ...]) -> R:
        """Read a whole record back from ``slot(NS, key)``."""
        base = cls.base_slot(key)
        values = {f.name: cls._read(store, f.metadata["kind"], base + i)
                  for i, f in enumerate(dataclasses.fields(cls))}
        return cls(**values)

    @classmethod
    def load_field(cls, store: Store, key: int | bytes | tuple[int, ...], name: str) -> Any:
        f = next(f for f in dataclasses.fields(cls) if f.name == name)
        return cls._read(store, f.metadata["kind"], cls.field_slot(key, name))

    @classmethod
    def store_field(cls, store: Store, key: int | bytes, name: str, value: Any) -> None:
        f = next(f for f in dataclasses.fields(cls) if f.name == name)
        cls._write(store, f.metadata["kind"], cls.field_slot(key, name), value)

    @classmethod
    def list_field(cls, store: Store, key: int | bytes, name: str) -> Array:
        """The array behind a list field, for appends without rewriting the record."""
        return Array(store, cls.field_slot(key, name))

    def to_abi(self, components: list[dict[str, Any]]) -> tuple[Any, ...]:
        """Tuple for an ABI struct whose component names are this record's fields (camelCase)."""
        out = []
        for c in components:
            value = getattr(self, snake(c["name"]))
            if c["type"] == "address":
                from eth_utils import to_checksum_address

                value = to_checksum_address(value)
            elif c["type"] == "address[]":
                from eth_utils import to_checksum_address

                value = [to_checksum_address(v) for v in value]
            elif c["type"].endswith("[]"):
                value = list(value)
            out.append(value)
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly dict (camelCase keys, 0x-hex bytes) for the ``ai_`` RPC."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            out[camel(f.name)] = _json(getattr(self, f.name), f.metadata["kind"])
        return out


def _json(value: Any, kind: str) -> Any:
    from eth_utils import to_checksum_address

    if kind.endswith("[]"):
        return [_json(v, kind[:-2]) for v in value]
    if kind == "address":
        return to_checksum_address(value)
    if kind == "bytes32":
        return "0x" + bytes(value).hex()
    return value
