"""The chain's native EIP-2718 transaction types: data contribution, adapter registration and
inference receipt.

Each type carries its operation's fields by name (so they show in eth_getTransactionByHash)
and is executed as the very ABI call a wallet would make to the AI precompile: ``to`` is the
precompile's address and ``data`` the calldata built from the fields. Both ways in therefore
run the same code, charge the same gas and emit the same logs, and py-evm's transaction
executor needs no special case.

Wire format, as EIP-1559's with the payload in place of to/value/data/access list::

    type || rlp([chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas,
                 *payload_fields, y_parity, r, s])

The signature is over ``type || rlp([... all fields but y_parity, r, s])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar, Self, TypeVar

import rlp
from eth.abc import ReceiptAPI, SignedTransactionAPI
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.rlp.sedes import address as address_sedes
from eth.rlp.transactions import SignedTransactionMethods
from eth.validation import validate_canonical_address, validate_uint256
from eth.vm.forks.berlin.transactions import calculate_txn_intrinsic_gas_berlin
from eth_keys import keys
from eth_utils import ValidationError
from rlp.sedes import Binary, CountableList, big_endian_int, binary

from ai_precompiles import MODULES, typed_data
from ai_precompiles.addresses import BY_NAME

hash32 = Binary.fixed_length(32)
#: Gas limit of an inference-receipt transaction, as the node's ai_infer and the CLI send it: a
#: base and a share per attribution pair, since each pair can hold a new pending payout (new
#: storage). Measured: about 0.8 M gas for one pair and 6.0 M for 64 pairs of 64 distinct
#: contributors (``inference.max_attributions``' default); a fixed 3 M failed "out of gas" after
#: the sidecar had served a widely attributed output.
RECEIPT_BASE_GAS = 1_500_000
RECEIPT_GAS_PER_PAIR = 100_000


def receipt_gas(pairs: int) -> int:
    """The gas limit of a receipt attributing to ``pairs`` contributions."""
    return RECEIPT_BASE_GAS + RECEIPT_GAS_PER_PAIR * pairs


_COMMON_HEAD = [
    ("chain_id", big_endian_int),
    ("nonce", big_endian_int),
    ("max_priority_fee_per_gas", big_endian_int),
    ("max_fee_per_gas", big_endian_int),
    ("gas", big_endian_int),
]
_SIGNATURE = [("y_parity", big_endian_int), ("r", big_endian_int), ("s", big_endian_int)]


class NativeTransaction(rlp.Serializable, SignedTransactionMethods, SignedTransactionAPI):  # type: ignore[misc]
    """Base of the native types; a subclass names its module, function and payload."""

    _type_id: ClassVar[int]
    module: ClassVar[str]
    """AI module (ABI name) whose precompile executes it."""
    function: ClassVar[str]
    """ABI function the payload is a call of."""
    payload_fields: ClassVar[list[tuple[str, Any]]]
    rpc_name: ClassVar[str]
    """Key under which eth_getTransactionByHash shows the payload."""

    # -- what py-evm's executor reads -------------------------------------------------------

    @property
    def to(self) -> bytes:  # type: ignore[override]
        return BY_NAME[self.module]

    @property
    def value(self) -> int:  # type: ignore[override]
        return 0

    @cached_property
    def data(self) -> bytes:  # type: ignore[override]
        fn = MODULES[self.module].abi.by_name[self.function]
        return bytes(fn.encode_args(*self.abi_args()))

    @property
    def access_list(self) -> Sequence[Any]:  # type: ignore[override]
        return ()

    @property
    def gas_price(self) -> int:  # type: ignore[override]
        raise AttributeError("Gas price is no longer available. See max_priority_fee_per_gas or max_fee_per_gas")

    @property
    def max_fee_per_blob_gas(self) -> int:  # type: ignore[override]
        raise NotImplementedError("not a blob transaction")

    @property
    def blob_versioned_hashes(self) -> Sequence[bytes]:  # type: ignore[override]
        raise NotImplementedError("not a blob transaction")

    @property
    def authorization_list(self) -> Sequence[Any]:  # type: ignore[override]
        raise NotImplementedError("not a set-code transaction")

    # -- payload ------------------------------------------------------------------------------

    def abi_args(self) -> tuple[Any, ...]:
        """The ABI arguments of :attr:`function`, built from the payload fields."""
        raise NotImplementedError

    def payload_json(self) -> dict[str, Any]:
        """The payload fields in JSON-RPC form (camelCase keys, hex values)."""
        out: dict[str, Any] = {}
        for name, sedes in self.payload_fields:
            out[_camel(name)] = _json_value(getattr(self, name), sedes)
        return out

    # -- signing and validation ---------------------------------------------------------------

    def _unsigned_fields(self) -> list[Any]:
        return [getattr(self, name) for name, _ in _COMMON_HEAD + self.payload_fields]

    def get_message_for_signing(self) -> bytes:
        sedes = rlp.sedes.List([s for _, s in _COMMON_HEAD + self.payload_fields])
        return self._type_byte + rlp.encode(self._unsigned_fields(), sedes=sedes)

    def get_sender(self) -> bytes:  # type: ignore[override]
        signature = keys.Signature(vrs=(self.y_parity, self.r, self.s))
        return bytes(signature.recover_public_key_from_msg(self.get_message_for_signing()).to_canonical_address())

    def check_signature_validity(self) -> None:
        try:
            self.get_sender()
        except Exception as e:
            raise ValidationError(f"Bad Signature: {e}") from None

    def validate(self) -> None:
        for name in ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas", "r", "s"):
            validate_uint256(getattr(self, name), title=f"Transaction.{name}")
        if self.y_parity not in (0, 1):
            raise ValidationError("Transaction.y_parity must be 0 or 1")
        if self.max_fee_per_gas < self.max_priority_fee_per_gas:
            raise ValidationError("max priority fee per gas higher than max fee per gas")
        for name, sedes in self.payload_fields:
            if sedes is address_sedes:
                validate_canonical_address(getattr(self, name), title=f"Transaction.{name}")
        try:
            self.data  # noqa: B018 - payload must make a valid ABI call
        except Exception as e:
            raise ValidationError(f"payload does not encode as {self.function}: {e}") from None
        super().validate()

    @cached_property
    def _type_byte(self) -> bytes:
        return bytes([self._type_id])

    @property
    def hash(self) -> bytes:  # type: ignore[override]
        raise NotImplementedError("Call hash() on the TypedTransaction instead")

    def get_intrinsic_gas(self) -> int:
        return int(calculate_txn_intrinsic_gas_berlin(self))

    def encode(self) -> bytes:
        return rlp.encode(self)

    def make_receipt(
        self, status: bytes, gas_used: int, log_entries: Sequence[tuple[bytes, tuple[int, ...], bytes]]
    ) -> ReceiptAPI:
        return Receipt(state_root=status, gas_used=gas_used, logs=[Log(a, t, d) for a, t, d in log_entries])

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def sign(cls, private_key: bytes, **fields: Any) -> Self:
        """Build and sign a transaction of this type (eth-account cannot sign unknown types)."""
        names = [n for n, _ in _COMMON_HEAD + cls.payload_fields]
        values = [fields[n] for n in names]
        sedes = rlp.sedes.List([s for _, s in _COMMON_HEAD + cls.payload_fields])
        message = bytes([cls._type_id]) + rlp.encode(values, sedes=sedes)
        signature = keys.PrivateKey(private_key).sign_msg(message)
        v, r, s = signature.vrs
        return cls(*values, v, r, s)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _json_value(value: Any, sedes: Any) -> Any:
    if isinstance(sedes, CountableList):
        return [_json_value(v, sedes.element_sedes) for v in value]
    if sedes is big_endian_int:
        return hex(value)
    if sedes is address_sedes:
        return "0x" + bytes(value).hex()
    if sedes is _text:
        return bytes(value).decode("utf-8", errors="replace")
    return "0x" + bytes(value).hex()


class _Text(Binary):  # type: ignore[misc]
    """UTF-8 text carried as RLP bytes (licenses)."""


_text = _Text()


def _str(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("text field is not UTF-8") from None


def native_payload(tx: SignedTransactionAPI) -> NativeTransaction | None:
    """The native transaction inside a typed envelope (as blocks and the pool carry it), or None
    for an Ethereum transaction."""
    inner = getattr(tx, "_inner", None)
    return inner if isinstance(inner, NativeTransaction) else None


#: type byte -> native transaction class; filled by :func:`native_type`.
NATIVE_TYPES: dict[int, type[NativeTransaction]] = {}
#: type byte -> decoder of its payload, as py-evm's typed transactions look them up.
DECODERS: dict[int, Any] = {}
#: type byte -> receipt codec (native types have Ethereum receipts).
RECEIPT_CODECS: dict[int, Any] = {}

N = TypeVar("N", bound=type[NativeTransaction])


def native_type(cls: N) -> N:
    """Register a native transaction type (class decorator): the chain decodes, executes and
    shows it from then on (``state/vm.py`` looks these tables up live). Its type byte must be
    new and outside Ethereum's (0-4)."""
    type_id = cls._type_id
    if type_id in NATIVE_TYPES or type_id <= 0x04:
        raise ValueError(f"transaction type 0x{type_id:02x} is taken")

    class Decoder:
        @classmethod
        def decode(cls_, payload: bytes) -> SignedTransactionAPI:
            return rlp.decode(payload, sedes=cls)  # type: ignore[no-any-return]

    Decoder.__name__ = f"{cls.__name__}Decoder"
    NATIVE_TYPES[type_id] = cls
    DECODERS[type_id] = Decoder
    RECEIPT_CODECS[type_id] = Receipt
    return cls


@native_type
class DataContributionTransaction(NativeTransaction):
    """Records a contribution to a datanet (``Datanets.contribute``), spending the sender's
    commitment to it (``Datanets.commitContribution``, an ABI call in an earlier block)."""

    _type_id = 0x60
    module = "Datanets"
    function = "contribute"
    rpc_name = "contribution"
    payload_fields = [
        ("datanet_id", big_endian_int),
        ("content_hash", hash32),
        ("size", big_endian_int),
        ("license", _text),
        ("metadata_hash", hash32),
        ("salt", hash32),
    ]
    fields = _COMMON_HEAD + payload_fields + _SIGNATURE

    def abi_args(self) -> tuple[Any, ...]:
        return (self.datanet_id, self.content_hash, self.size, _str(self.license), self.metadata_hash, self.salt)


@native_type
class AdapterRegistrationTransaction(NativeTransaction):
    """Registers a LoRA adapter with its lineage (``ModelRegistry.registerAdapter``)."""

    _type_id = 0x61
    module = "ModelRegistry"
    function = "registerAdapter"
    rpc_name = "adapter"
    payload_fields = [
        ("parent_id", big_endian_int),
        ("datanet_ids", CountableList(big_endian_int)),
        ("datanet_versions", CountableList(big_endian_int)),
        ("contribution_root", hash32),
        ("hyper_params_hash", hash32),
        ("weights_hash", hash32),
        ("attribution_index_hash", hash32),
        ("manifest_hash", hash32),
        ("validator", address_sedes),
        ("license", _text),
    ]
    fields = _COMMON_HEAD + payload_fields + _SIGNATURE

    def abi_args(self) -> tuple[Any, ...]:
        return ((
            self.parent_id, list(self.datanet_ids), list(self.datanet_versions), self.contribution_root,
            self.hyper_params_hash, self.weights_hash, self.attribution_index_hash, self.manifest_hash,
            self.validator,
            _str(self.license),
        ),)


@native_type
class MergedAdapterRegistrationTransaction(NativeTransaction):
    """Registers a merge of 2..16 adapters that the sending validator built
    (``ModelRegistry.registerMergedAdapter``; docs/merges.md)."""

    _type_id = 0x63
    module = "ModelRegistry"
    function = "registerMergedAdapter"
    rpc_name = "merge"
    payload_fields = [
        ("parent_ids", CountableList(big_endian_int)),
        ("weights_bp", CountableList(big_endian_int)),
        ("method", big_endian_int),
        ("density_bp", big_endian_int),
        ("seed", big_endian_int),
        ("weights_hash", hash32),
        ("attribution_index_hash", hash32),
        ("manifest_hash", hash32),
        ("license", _text),
    ]
    fields = _COMMON_HEAD + payload_fields + _SIGNATURE

    def abi_args(self) -> tuple[Any, ...]:
        return ((list(self.parent_ids), list(self.weights_bp), self.method, self.density_bp, self.seed),
                self.weights_hash, self.attribution_index_hash, self.manifest_hash, _str(self.license))


@native_type
class InferenceReceiptTransaction(NativeTransaction):
    """Records an inference with its attribution and pays it out (``Inference.submitReceipt``)."""

    _type_id = 0x62
    module = "Inference"
    function = "submitReceipt"
    rpc_name = "inference"
    payload_fields = [
        ("user", address_sedes),
        ("adapter_id", big_endian_int),
        ("prompt_hash", hash32),
        ("max_tokens", big_endian_int),
        ("max_fee", big_endian_int),
        ("request_nonce", big_endian_int),
        ("deadline", big_endian_int),
        ("request_chain_id", big_endian_int),
        ("commercial", big_endian_int),
        ("user_signature", binary),
        ("output_hash", hash32),
        ("engine_profile", hash32),
        ("contribution_ids", CountableList(big_endian_int)),
        ("weights_bp", CountableList(big_endian_int)),
        ("fee", big_endian_int),
        ("validator", address_sedes),
        ("validator_signature", binary),
    ]
    fields = _COMMON_HEAD + payload_fields + _SIGNATURE

    @classmethod
    def for_request(
        cls,
        validator_key: bytes,
        request: Mapping[str, Any],
        user_signature: bytes,
        *,
        output_hash: bytes,
        engine_profile: bytes,
        contribution_ids: Sequence[int],
        weights_bp: Sequence[int],
        fee: int,
        chain_id: int,
        nonce: int,
        max_priority_fee_per_gas: int,
        max_fee_per_gas: int,
        gas: int | None = None,
    ) -> Self:
        """The receipt of a served ``request``, signed twice by the validator's key: its EIP-712
        receipt signature over (request hash, output hash, engine profile, attribution, fee),
        then the transaction. ``engine_profile`` is the keccak-256 of the serving sidecar's
        engine-profile blob (what a re-run must match).

        ``request`` is the user's signed request in ``typed_data``'s snake_case shape
        (``user, validator, adapter_id, prompt_hash, max_tokens, max_fee, nonce, deadline,
        chain_id, commercial``) and
        ``user_signature`` the user's signature of it. The one builder for the node's ai_infer
        and the CLI's ``infer --validator-*``, so both record the same receipt. Raises
        ``ValueError`` when the request names another validator: the chain would refuse it.
        """
        validator = keys.PrivateKey(validator_key).public_key.to_canonical_address()
        if bytes(request["validator"]) != validator:
            raise ValueError(f"the request is bound to validator 0x{bytes(request['validator']).hex()}, "
                             f"not to the signing key's 0x{validator.hex()}")
        ids, weights = list(contribution_ids), list(weights_bp)
        gas = receipt_gas(len(ids)) if gas is None else gas
        request_hash = typed_data.request_digest(request, chain_id)
        validator_signature = typed_data.sign(
            typed_data.receipt_digest(request_hash, output_hash, engine_profile, ids, weights, fee, validator,
                                      chain_id),
            validator_key)
        return cls.sign(
            validator_key, chain_id=chain_id, nonce=nonce, max_priority_fee_per_gas=max_priority_fee_per_gas,
            max_fee_per_gas=max_fee_per_gas, gas=gas,
            user=request["user"], adapter_id=request["adapter_id"], prompt_hash=request["prompt_hash"],
            max_tokens=request["max_tokens"], max_fee=request["max_fee"], request_nonce=request["nonce"],
            deadline=request["deadline"], request_chain_id=request["chain_id"],
            commercial=int(bool(request["commercial"])), user_signature=user_signature,
            output_hash=output_hash, engine_profile=engine_profile, contribution_ids=ids, weights_bp=weights, fee=fee, validator=validator,
            validator_signature=validator_signature,
        )

    def abi_args(self) -> tuple[Any, ...]:
        request = (self.user, self.adapter_id, self.prompt_hash, self.max_tokens, self.max_fee,
                   self.request_nonce, self.deadline, self.request_chain_id, bool(self.commercial))
        return (request, self.user_signature, self.output_hash, self.engine_profile, list(self.contribution_ids),
                list(self.weights_bp), self.fee, self.validator, self.validator_signature)
