"""EIP-712 typed data of inference: the user's request and the validator's receipt.

Domain: ``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``
with name ``"ailedger"``, version ``"1"``, the chain id, and the inference precompile's address.

- ``InferenceRequest(address user,address validator,uint256 adapterId,bytes32 promptHash,uint256 maxTokens,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId)``
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
- ``InferenceReceipt(bytes32 requestHash,bytes32 outputHash,bytes32 engineProfile,uint256[] contributionIds,uint256[] weightsBp,uint256 fee,address validator)``
  signed by ``validator``. ``outputHash`` is the keccak-256 of the output bytes (its blob id);
  ``engineProfile`` the keccak-256 of the canonical engine-profile blob the validator's sidecar
  reports (sidecar and torch versions, dtype, attribution method and its version).

Signatures are 65 bytes ``r ++ s ++ v`` (v 27/28 or 0/1) with low ``s`` (EIP-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_abi import encode
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

from .addresses import INFERENCE
from .errors import BadSignature

NAME, VERSION = "ailedger", "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
REQUEST_TYPE = ("InferenceRequest(address user,address validator,uint256 adapterId,bytes32 promptHash,"
                "uint256 maxTokens,uint256 maxFee,uint256 nonce,uint256 deadline,uint256 chainId)")
RECEIPT_TYPE = ("InferenceReceipt(bytes32 requestHash,bytes32 outputHash,bytes32 engineProfile,"
                "uint256[] contributionIds,uint256[] weightsBp,uint256 fee,address validator)")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _addr(a: bytes) -> str:
    return "0x" + bytes(a).hex()


def domain_separator(chain_id: int) -> bytes:
    return keccak(encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                         [keccak(text=DOMAIN_TYPE), keccak(text=NAME), keccak(text=VERSION),
                          chain_id, _addr(INFERENCE)]))


def _digest(chain_id: int, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain_separator(chain_id) + struct_hash)


def request_digest(req: Mapping[str, Any], chain_id: int) -> bytes:
    """EIP-712 digest of an InferenceRequest (snake_case keys, ``validator`` included): the
    request hash."""
    struct_hash = keccak(encode(
        ["bytes32", "address", "address", "uint256", "bytes32", "uint256", "uint256", "uint256", "uint256",
         "uint256"],
        [keccak(text=REQUEST_TYPE), _addr(req["user"]), _addr(req["validator"]), req["adapter_id"], req["prompt_hash"],
         req["max_tokens"], req["max_fee"], req["nonce"], req["deadline"], req["chain_id"]]))
    return _digest(chain_id, struct_hash)


def receipt_digest(request_hash: bytes, output_hash: bytes, engine_profile: bytes,
                   contribution_ids: list[int], weights_bp: list[int], fee: int, validator: bytes,
                   chain_id: int) -> bytes:
    """EIP-712 digest of an InferenceReceipt (what the validator signs)."""
    ids_hash = keccak(b"".join(i.to_bytes(32, "big") for i in contribution_ids))
    weights_hash = keccak(b"".join(w.to_bytes(32, "big") for w in weights_bp))
    struct_hash = keccak(encode(
        ["bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(text=RECEIPT_TYPE), request_hash, output_hash, engine_profile, ids_hash, weights_hash,
         fee, _addr(validator)]))
    return _digest(chain_id, struct_hash)


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


def request_typed_data(req: dict[str, Any], chain_id: int) -> dict[str, Any]:
    """The request as ``eth_signTypedData_v4`` JSON, for wallets and eth-account."""
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "InferenceRequest": [{"name": n, "type": t} for t, n in (
                p.split(" ") for p in REQUEST_TYPE[len("InferenceRequest("):-1].split(","))],
        },
        "primaryType": "InferenceRequest",
        "domain": {"name": NAME, "version": VERSION, "chainId": chain_id,
                   "verifyingContract": to_checksum_address(INFERENCE)},
        "message": {"user": to_checksum_address(req["user"]),
                    "validator": to_checksum_address(req["validator"]), "adapterId": req["adapter_id"],
                    "promptHash": "0x" + bytes(req["prompt_hash"]).hex(),
                    "maxTokens": req["max_tokens"], "maxFee": req["max_fee"], "nonce": req["nonce"],
                    "deadline": req["deadline"], "chainId": req["chain_id"]},
    }
