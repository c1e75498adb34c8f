"""The genesis file: chain parameters, the initial accounts, validators and AI parameters.

The file is JSON, Ethereum-shaped where Ethereum has a word for it (``alloc``,
``gasLimit``, ``baseFeePerGas``). Quantities may be decimal integers or 0x-hex
strings, as geth accepts them. Every validation error names the field at fault, so a
hand-edited file fails with a message a person can act on.

Example::

    {
      "chainId": 31415,
      "timestamp": 1700000000,
      "gasLimit": 30000000,
      "baseFeePerGas": "0x3b9aca00",
      "extraData": "0x",
      "coinbase": "0x0000000000000000000000000000000000000000",
      "alloc": {
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266": {"balance": "10000000000000000000000"},
        "0x1000000000000000000000000000000000000001": {"code": "0x60006000f3", "nonce": 1,
                                                      "storage": {"0x0": "0x1"}}
      },
      "validators": [{"address": "0x...", "power": 1}],
      "ai": {}
    }
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Stake (wei) per unit of BFT voting power: gwei, so realistic stakes keep the total power under
#: CometBFT's cap (``consensus.validator_set.MAX_TOTAL_VOTING_POWER``). Consensus, the staking
#: precompile and the testnet's genesis all divide by this one value (docs/consensus.md §5).
POWER_UNIT = 10**9

#: Largest value an EVM word can hold.
UINT256_MAX = 2**256 - 1


class GenesisError(ValueError):
    """The genesis file is malformed; the message names the field at fault."""


@dataclass(frozen=True)
class GenesisAccount:
    """One account as it stands in the genesis state."""

    balance: int = 0
    """Balance in wei."""
    nonce: int = 0
    """Account nonce; precompile accounts need 1 so that EIP-161 never deletes them."""
    code: bytes = b""
    """Runtime bytecode, empty for externally owned accounts."""
    storage: dict[int, int] = field(default_factory=dict)
    """Storage slot -> value."""


@dataclass(frozen=True)
class GenesisValidator:
    """A validator of the first epoch."""

    address: bytes
    """The validator's 20-byte signing address."""
    power: int
    """Voting power; a block is committed by more than 2/3 of the total."""


@dataclass(frozen=True)
class Genesis:
    """Everything needed to build block 0 and to agree on the chain's rules."""

    chain_id: int
    """EIP-155 chain id signed into every transaction."""
    timestamp: int
    """Block 0's timestamp (seconds since the epoch)."""
    gas_limit: int
    """Gas limit of every block; the dev chain keeps it constant."""
    base_fee: int
    """Block 0's EIP-1559 base fee in wei."""
    extra_data: bytes = b""
    """Up to 32 bytes of free data in block 0's header."""
    coinbase: bytes = b"\x00" * 20
    """Beneficiary of block 0."""
    alloc: dict[bytes, GenesisAccount] = field(default_factory=dict)
    """Initial accounts by 20-byte address."""
    validators: tuple[GenesisValidator, ...] = ()
    """Validator set of the first epoch."""
    ai: dict[str, Any] = field(default_factory=dict)
    """Parameters of the AI modules (fee splits, quorums, gas prices); see ai_precompiles."""

    def encode(self) -> dict[str, Any]:
        """The JSON-ready form of this genesis (the inverse of :func:`decode_genesis`)."""
        # eth_utils loads on use (0.1-0.2 s): `import genesis` stays light for the CLI's --help.
        from eth_utils import to_checksum_address

        alloc: dict[str, Any] = {}
        for address, account in self.alloc.items():
            entry: dict[str, Any] = {"balance": hex(account.balance)}
            if account.nonce:
                entry["nonce"] = hex(account.nonce)
            if account.code:
                entry["code"] = "0x" + account.code.hex()
            if account.storage:
                entry["storage"] = {hex(k): hex(v) for k, v in account.storage.items()}
            alloc[to_checksum_address(address)] = entry
        return {
            "chainId": self.chain_id,
            "timestamp": self.timestamp,
            "gasLimit": self.gas_limit,
            "baseFeePerGas": hex(self.base_fee),
            "extraData": "0x" + self.extra_data.hex(),
            "coinbase": to_checksum_address(self.coinbase),
            "alloc": alloc,
            "validators": [
                {"address": to_checksum_address(v.address), "power": v.power}
                for v in self.validators
            ],
            "ai": self.ai,
        }

    def state_dict(self) -> dict[bytes, dict[str, Any]]:
        """The ``alloc`` in the shape py-evm's ``from_genesis`` takes."""
        return {
            address: {
                "balance": a.balance,
                "nonce": a.nonce,
                "code": a.code,
                "storage": dict(a.storage),
            }
            for address, a in self.alloc.items()
        }


def _quantity(value: Any, where: str, maximum: int = UINT256_MAX) -> int:
    if isinstance(value, bool):
        raise GenesisError(f"{where}: expected an integer, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            raise GenesisError(f"{where}: {value!r} is not a decimal or 0x-hex integer") from None
    else:
        raise GenesisError(f"{where}: expected an integer, got {type(value).__name__}")
    if not 0 <= number <= maximum:
        raise GenesisError(f"{where}: {number} is out of range 0..{maximum}")
    return number


def _data(value: Any, where: str, max_len: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise GenesisError(f"{where}: expected 0x-prefixed hex data")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise GenesisError(f"{where}: {value!r} is not valid hex") from None
    if max_len is not None and len(raw) > max_len:
        raise GenesisError(f"{where}: {len(raw)} bytes, at most {max_len} allowed")
    return raw


def _address(value: Any, where: str) -> bytes:
    from eth_utils import is_hex_address, to_canonical_address  # on use, as in Genesis.encode

    if not isinstance(value, str) or not is_hex_address(value):
        raise GenesisError(f"{where}: {value!r} is not a 20-byte hex address")
    return to_canonical_address(value)


_KNOWN_FIELDS = {
    "chainId", "timestamp", "gasLimit", "baseFeePerGas", "extraData", "coinbase",
    "alloc", "validators", "ai", "$comment",
}


def decode_genesis(doc: Any) -> Genesis:
    """Validate a parsed genesis document and build a :class:`Genesis`.

    Unknown top-level fields are refused rather than ignored: a typo such as
    ``gaslimit`` would otherwise silently give a chain with the default limit.
    """
    if not isinstance(doc, dict):
        raise GenesisError("genesis: expected a JSON object at the top level")
    unknown = sorted(set(doc) - _KNOWN_FIELDS)
    if unknown:
        raise GenesisError(f"{unknown[0]}: unknown field (known: {', '.join(sorted(_KNOWN_FIELDS))})")
    for required in ("chainId", "gasLimit"):
        if required not in doc:
            raise GenesisError(f"{required}: missing")
    chain_id = _quantity(doc["chainId"], "chainId", 2**64 - 1)
    if chain_id == 0:
        raise GenesisError("chainId: must not be 0")
    gas_limit = _quantity(doc["gasLimit"], "gasLimit", 2**63 - 1)
    if gas_limit < 21_000:
        raise GenesisError(f"gasLimit: {gas_limit} is below one transfer (21000)")
    alloc_doc = doc.get("alloc", {})
    if not isinstance(alloc_doc, dict):
        raise GenesisError("alloc: expected an object of address -> account")
    alloc: dict[bytes, GenesisAccount] = {}
    for key, entry in alloc_doc.items():
        where = f"alloc.{key}"
        address = _address(key, where)
        if address in alloc:
            raise GenesisError(f"{where}: address listed twice")
        if not isinstance(entry, dict):
            raise GenesisError(f"{where}: expected an object")
        extra = sorted(set(entry) - {"balance", "nonce", "code", "storage"})
        if extra:
            raise GenesisError(f"{where}.{extra[0]}: unknown field")
        storage_doc = entry.get("storage", {})
        if not isinstance(storage_doc, dict):
            raise GenesisError(f"{where}.storage: expected an object of slot -> value")
        storage = {
            _quantity(k, f"{where}.storage key {k}"): _quantity(v, f"{where}.storage.{k}")
            for k, v in storage_doc.items()
        }
        alloc[address] = GenesisAccount(
            balance=_quantity(entry.get("balance", 0), f"{where}.balance"),
            nonce=_quantity(entry.get("nonce", 0), f"{where}.nonce", 2**64 - 1),
            code=_data(entry.get("code", "0x"), f"{where}.code", 24_576),
            storage=storage,
        )
    validators_doc = doc.get("validators", [])
    if not isinstance(validators_doc, list):
        raise GenesisError("validators: expected a list")
    validators = []
    for i, v in enumerate(validators_doc):
        if not isinstance(v, dict):
            raise GenesisError(f"validators[{i}]: expected an object")
        validators.append(
            GenesisValidator(
                address=_address(v.get("address"), f"validators[{i}].address"),
                power=_quantity(v.get("power", 1), f"validators[{i}].power", 2**63 - 1),
            )
        )
    if validators and sum(v.power for v in validators) == 0:
        raise GenesisError("validators: total power is 0")
    ai = doc.get("ai", {})
    if not isinstance(ai, dict):
        raise GenesisError("ai: expected an object")
    return Genesis(
        chain_id=chain_id,
        timestamp=_quantity(doc.get("timestamp", 0), "timestamp", 2**63 - 1),
        gas_limit=gas_limit,
        base_fee=_quantity(doc.get("baseFeePerGas", 10**9), "baseFeePerGas"),
        extra_data=_data(doc.get("extraData", "0x"), "extraData", 32),
        coinbase=_address(doc.get("coinbase", "0x" + "00" * 20), "coinbase"),
        alloc=alloc,
        validators=tuple(validators),
        ai=ai,
    )


def load_genesis(path: str | Path) -> Genesis:
    """Read and validate a genesis file."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise GenesisError(f"{path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise GenesisError(f"{path}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return decode_genesis(doc)


def save_genesis(genesis: Genesis, path: str | Path) -> None:
    Path(path).write_text(json.dumps(genesis.encode(), indent=2) + "\n")
