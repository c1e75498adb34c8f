"""EIP-712 typed data of inference and training: the user's inference request, the
validator's receipt, and a model builder's training request.

Domain: ``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``
with name ``"ailedger"``, version ``"1"``, the chain id, and the address of the precompile that
checks the signature: the inference precompile for inference requests and receipts, the model
registry for training requests (so a signature made for one can never be taken for the other).

- ``InferenceRequest(address user,address validator,uint256 adapterId,bytes32 promptHash,uint256 maxTokens,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId,bool commercial)``
  signed by ``user`` (``eth_signTypedData_v4`` in a wallet). Its digest is the request hash.
  ``promptHash`` is the keccak-256 of the prompt's UTF-8 bytes (the prompt's blob id in the
  nodes' blob store) and ``maxTokens`` the most tokens the validator may generate, decoding
  greedily: with the adapter, its base model and the receipt's engine profile, they are what a
  re-run needs to give the same output.
  ``validator`` binds who may serve it and ``maxFee`` the price that validator quoted
  (``ai_inferQuote``): a request signed for one validator cannot be redeemed by another, and
  the validator cannot charge more than its quote. On chain the request's validator is the
  receipt's ``validator`` argument (the ABI struct does not repeat it), so a receipt that
  names any other validator recovers a different signer and is refused.
  ``commercial`` declares the use the user makes of the output: a commercial request on an
  adapter whose effective licence (its lineage's) is non-commercial is refused on chain.
- ``InferenceReceipt(bytes32 requestHash,bytes32 outputHash,bytes32 engineProfile,uint256[] contributionIds,uint256[] weightsBp,uint256 fee,address validator)``
  signed by ``validator``. ``outputHash`` is the keccak-256 of the output bytes (its blob id);
  ``engineProfile`` the keccak-256 of the canonical engine-profile blob the validator's sidecar
  reports (sidecar and torch versions, dtype, attribution method and its version).

- ``TrainingRequest(address builder,address validator,uint256 parentId,uint256[] datanetIds,uint256[] datanetVersions,bytes32 hyperParamsHash,string license,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId)``
  signed by ``builder``, who asks ``validator`` to train an adapter on ``parentId`` over exactly
  these datanet versions with the recipe whose keccak-256 (its blob id) is ``hyperParamsHash``,
  and to register it under ``license`` with the builder as its author, for at most ``maxFee``
  wei from the builder's inference deposit. Its digest is the training request hash; the
  validator's registration (``ModelRegistry.registerTrainedAdapter``) carries it.

Signatures are 65 bytes ``r ++ s ++ v`` (v 27/28 or 0/1) with low ``s`` (EIP-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_abi import encode
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

from .addresses import INFERENCE, MODEL_REGISTRY
from .errors import BadSignature

NAME, VERSION = "ailedger", "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
REQUEST_TYPE = ("InferenceRequest(address user,address validator,uint256 adapterId,bytes32 promptHash,"
                "uint256 maxTokens,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId,bool commercial)")
RECEIPT_TYPE = ("InferenceReceipt(bytes32 requestHash,bytes32 outputHash,bytes32 engineProfile,"
                "uint256[] contributionIds,uint256[] weightsBp,uint256 fee,address validator)")
TRAINING_REQUEST_TYPE = ("TrainingRequest(address builder,address validator,uint256 parentId,"
                         "uint256[] datanetIds,uint256[] datanetVersions,bytes32 hyperParamsHash,"
                         "string license,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId)")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _addr(a: bytes) -> str:
    return "0x" + bytes(a).hex()


def domain_separator(chain_id: int, verifying_contract: bytes = INFERENCE) -> bytes:
    return keccak(encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                         [keccak(text=DOMAIN_TYPE), keccak(text=NAME), keccak(text=VERSION),
                          chain_id, _addr(verifying_contract)]))


def _digest(chain_id: int, struct_hash: bytes, verifying_contract: bytes = INFERENCE) -> bytes:
    return keccak(b"\x19\x01" + domain_separator(chain_id, verifying_contract) + struct_hash)


def _words_hash(values: list[int]) -> bytes:
    """EIP-712 encoding of a ``uint256[]`` member: keccak-256 of its 32-byte words."""
    return keccak(b"".join(int(v).to_bytes(32, "big") for v in values))


def request_digest(req: Mapping[str, Any], chain_id: int) -> bytes:
    """EIP-712 digest of an InferenceRequest (snake_case keys, ``validator`` included): the
    request hash."""
    struct_hash = keccak(encode(
        ["bytes32", "address", "address", "uint256", "bytes32", "uint256", "uint256", "uint256", "uint256",
         "uint256", "bool"],
        [keccak(text=REQUEST_TYPE), _addr(req["user"]), _addr(req["validator"]), req["adapter_id"], req["prompt_hash"],
         req["max_tokens"], req["max_fee"], req["nonce"], req["deadline"], req["chain_id"], bool(req["commercial"])]))
    return _digest(chain_id, struct_hash)


def receipt_digest(request_hash: bytes, output_hash: bytes, engine_profile: bytes,
                   contribution_ids: list[int], weights_bp: list[int], fee: int, validator: bytes,
                   chain_id: int) -> bytes:
    """EIP-712 digest of an InferenceReceipt (what the validator signs)."""
    ids_hash = _words_hash(contribution_ids)
    weights_hash = _words_hash(weights_bp)
    struct_hash = keccak(encode(
        ["bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(text=RECEIPT_TYPE), request_hash, output_hash, engine_profile, ids_hash, weights_hash,
         fee, _addr(validator)]))
    return _digest(chain_id, struct_hash)


def training_request_digest(req: Mapping[str, Any], chain_id: int) -> bytes:
    """EIP-712 digest of a TrainingRequest (snake_case keys, as the ABI decodes the struct):
    the training request hash, under the model registry's domain."""
    struct_hash = keccak(encode(
        ["bytes32", "address", "address", "uint256", "bytes32", "bytes32", "bytes32", "bytes32", "uint256",
         "uint256", "uint256", "uint256"],
        [keccak(text=TRAINING_REQUEST_TYPE), _addr(req["builder"]), _addr(req["validator"]), req["parent_id"],
         _words_hash(list(req["datanet_ids"])), _words_hash(list(req["datanet_versions"])),
         req["hyper_params_hash"], keccak(text=req["license"]), req["max_fee"], req["nonce"], req["deadline"],
         req["chain_id"]]))
    return _digest(chain_id, struct_hash, MODEL_REGISTRY)


def recover(digest: bytes, signature: bytes) -> bytes:
    """Signer address of a 65-byte signature over ``digest``; :class:`BadSignature` if invalid."""
    if len(signature) != 65:
        raise BadSignature("signature must be 65 bytes")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise BadSignature("malformed signature")
    try:
        pub = keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest)
    except Exception:
        raise BadSignature("signature does not recover") from None
    return pub.to_canonical_address()


def sign(digest: bytes, private_key: bytes) -> bytes:
    """65-byte ``r ++ s ++ v`` (v = 27/28) signature of ``digest`` (for tools and tests)."""
    sig = keys.PrivateKey(private_key).sign_msg_hash(digest)
    return sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.v + 27])


def _typed_data(type_string: str, contract: bytes, chain_id: int, message: dict[str, Any]) -> dict[str, Any]:
    """``eth_signTypedData_v4`` JSON of one primary type of this domain (its fields read from
    ``type_string``, the same string its type hash is made of)."""
    primary, _, fields = type_string.partition("(")
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            primary: [{"name": n, "type": t} for t, n in (p.split(" ") for p in fields[:-1].split(","))],
        },
        "primaryType": primary,
        "domain": {"name": NAME, "version": VERSION, "chainId": chain_id,
                   "verifyingContract": to_checksum_address(contract)},
        "message": message,
    }


def request_typed_data(req: dict[str, Any], chain_id: int) -> dict[str, Any]:
    """The request as ``eth_signTypedData_v4`` JSON, for wallets and eth-account."""
    return _typed_data(REQUEST_TYPE, INFERENCE, chain_id, {
        "user": to_checksum_address(req["user"]),
        "validator": to_checksum_address(req["validator"]), "adapterId": req["adapter_id"],
        "promptHash": "0x" + bytes(req["prompt_hash"]).hex(),
        "maxTokens": req["max_tokens"], "maxFee": req["max_fee"], "nonce": req["nonce"],
        "deadline": req["deadline"], "chainId": req["chain_id"], "commercial": bool(req["commercial"])})


def training_request_typed_data(req: Mapping[str, Any], chain_id: int) -> dict[str, Any]:
    """The training request as ``eth_signTypedData_v4`` JSON, for wallets and eth-account."""
    return _typed_data(TRAINING_REQUEST_TYPE, MODEL_REGISTRY, chain_id, {
        "builder": to_checksum_address(req["builder"]),
        "validator": to_checksum_address(req["validator"]), "parentId": req["parent_id"],
        "datanetIds": list(req["datanet_ids"]), "datanetVersions": list(req["datanet_versions"]),
        "hyperParamsHash": "0x" + bytes(req["hyper_params_hash"]).hex(), "license": req["license"],
        "maxFee": req["max_fee"], "nonce": req["nonce"], "deadline": req["deadline"],
        "chainId": req["chain_id"]})
