"""A web3.py client of one real ``ailedger dev`` node for the AI integration tests: contract
objects for the six precompiles (built from the shipped ABI JSON), raw JSON-RPC with typed
errors, EIP-712 signing done the way a wallet does it, and native-type transaction building.

Everything here talks to the node over HTTP on loopback; nothing imports node internals, so a
test that passes here would pass against any node speaking the same RPC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

import ai_precompiles
from ai_precompiles.addresses import BY_NAME, INFERENCE
from genesis import DEV_MNEMONIC, derive_accounts
from state.native import NativeTransaction
from state.vm import LedgerTransactionBuilder
from tests.support import procs
from tests.support.procs import Proc

CHAIN_ID = 31415
ETHER = 10**18
GWEI = 10**9
ACCOUNTS = derive_accounts(DEV_MNEMONIC, 20)
ADDR = [a.address for a in ACCOUNTS]
KEY = [a.private_key for a in ACCOUNTS]

#: The engine profile the test validator signs (keccak-256 of a profile blob).
ENGINE_PROFILE = keccak(text="engine profile: sidecar 0.1, torch 2.13.0+cpu, float32, spans+grad v1")

# Dev-account roles shared by the scenarios (index into ACCOUNTS).
OWNER, CUR1, CUR2, CONTRIB_A, CONTRIB_B, BASE_AUTHOR, AUTHOR1, AUTHOR2, VALIDATOR, USER, OUTSIDER = range(11)


class RPCFailure(Exception):
    """A JSON-RPC error answer: ``code``, ``message`` and ``data`` as the node sent them."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error}")
        self.code = int(error.get("code", 0))
        self.message = str(error.get("message", ""))
        self.data = error.get("data")


@dataclass(frozen=True)
class Mined:
    """One mined transaction as the node reports it."""

    tx_hash: str
    """0x-hex transaction hash."""
    receipt: dict[str, Any]
    """eth_getTransactionReceipt answer (raw JSON, hex quantities)."""

    @property
    def status(self) -> int:
        return int(self.receipt["status"], 16)

    @property
    def gas_used(self) -> int:
        return int(self.receipt["gasUsed"], 16)

    @property
    def fee_paid(self) -> int:
        """Wei the sender paid for gas (gasUsed x effectiveGasPrice)."""
        return self.gas_used * int(self.receipt["effectiveGasPrice"], 16)

    @property
    def logs(self) -> list[dict[str, Any]]:
        return list(self.receipt["logs"])

    @property
    def block_number(self) -> int:
        return int(self.receipt["blockNumber"], 16)


class AINode:
    """One node: raw RPC, web3.py, and a contract object per AI precompile."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.url = proc.url
        self.w3 = Web3(Web3.HTTPProvider(proc.url, request_kwargs={"timeout": 30}))
        self.c: dict[str, Contract] = {
            name: self.w3.eth.contract(address=to_checksum_address(BY_NAME[name]),
                                       abi=list(ai_precompiles.load_abi(name).raw))
            for name in BY_NAME
        }

    # -- raw JSON-RPC -----------------------------------------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        """Result of ``method``; an error answer raises :class:`RPCFailure`."""
        answer = procs.rpc(self.url, method, list(params), timeout=30)
        if "error" in answer:
            raise RPCFailure(method, answer["error"])
        return answer["result"]

    def calldata(self, module: str, fn: str, *args: Any) -> str:
        return str(self.c[module].encode_abi(fn, args=list(args)))

    def call(self, who: int | str, module: str, fn: str, *args: Any, value: int = 0) -> Any:
        """eth_call of ``module.fn(*args)`` from ``who``, decoded by web3.py."""
        sender = ADDR[who] if isinstance(who, int) else who
        return self.c[module].functions[fn](*args).call({"from": sender, "value": value})

    def call_raw(self, who: int | str, to: str, data: str, value: int = 0) -> str:
        sender = ADDR[who] if isinstance(who, int) else who
        return str(self.rpc("eth_call", {"from": sender, "to": to, "data": data, "value": hex(value)},
                            "latest"))

    def send_raw_call(self, who: int | str, to: str, data: str, value: int = 0,
                      gas: int | None = None) -> Mined:
        """eth_sendTransaction from an unlocked dev account (automine mines it at once)."""
        sender = ADDR[who] if isinstance(who, int) else who
        tx: dict[str, Any] = {"from": sender, "to": to, "data": data, "value": hex(value)}
        if gas is not None:
            tx["gas"] = hex(gas)
        return self.mined(self.rpc("eth_sendTransaction", tx))

    def send(self, who: int, module: str, fn: str, *args: Any, value: int = 0,
             gas: int | None = None) -> Mined:
        """Send ``module.fn(*args)`` as a plain EIP-1559 transaction from dev account ``who``."""
        return self.send_raw_call(who, to_checksum_address(BY_NAME[module]),
                                  self.calldata(module, fn, *args), value, gas)

    def do(self, who: int, module: str, fn: str, *args: Any, value: int = 0) -> tuple[Any, Mined]:
        """Simulate (for the return value), then send; the transaction must succeed."""
        result = self.call(who, module, fn, *args, value=value)
        mined = self.send(who, module, fn, *args, value=value)
        assert mined.status == 1, (module, fn, mined.receipt)
        return result, mined

    def commit(self, who: int, datanet: int, content_hash: bytes, size: int, license: str,
               metadata_hash: bytes) -> bytes:
        """Send ``who``'s commitment to a contribution (``Datanets.commitContribution``, mined
        at once); returns the salt a later ``contribute`` spends it with."""
        from ai_precompiles.datanets import contribution_commitment

        salt = keccak(text=f"salt {who} {datanet} {content_hash.hex()} {metadata_hash.hex()}")
        commitment = contribution_commitment(bytes.fromhex(ADDR[who][2:]), datanet, content_hash, size, license,
                                             metadata_hash, salt)
        self.do(who, "Datanets", "commitContribution", commitment)
        return salt

    def contribute(self, who: int, datanet: int, content_hash: bytes, size: int, license: str,
                   metadata_hash: bytes) -> tuple[int, Mined]:
        """Commit, then contribute in the next block, as the CLI does: (contribution id, mined)."""
        salt = self.commit(who, datanet, content_hash, size, license, metadata_hash)
        cid, mined = self.do(who, "Datanets", "contribute", datanet, content_hash, size, license, metadata_hash, salt)
        return int(cid), mined

    def mined(self, tx_hash: str) -> Mined:
        receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
        assert receipt is not None, f"{tx_hash} was not mined (automine)"
        return Mined(tx_hash, receipt)

    def send_native(self, inner: NativeTransaction) -> Mined:
        raw = LedgerTransactionBuilder.wrap_native(inner).encode()
        return self.mined(self.rpc("eth_sendRawTransaction", "0x" + bytes(raw).hex()))

    def settle(self, who: int, *receipt_ids: int) -> Mined:
        """Settle receipts whose challenge window is over (one block on the dev chain: any
        transaction after the receipt's block)."""
        settled, mined = self.do(who, "Inference", "settle", list(receipt_ids))
        assert settled == len(set(receipt_ids)), (settled, receipt_ids)
        return mined

    def nonce(self, who: int) -> int:
        return int(self.rpc("eth_getTransactionCount", ADDR[who], "pending"), 16)

    def balance(self, who: int | str) -> int:
        addr = ADDR[who] if isinstance(who, int) else who
        return int(self.rpc("eth_getBalance", addr, "latest"), 16)

    def head(self) -> dict[str, Any]:
        return dict(self.rpc("eth_getBlockByNumber", "latest", False))

    def put_blob(self, data: bytes) -> str:
        out = self.rpc("ai_putBlob", "0x" + data.hex(), "0x" + keccak(data).hex())
        assert out["hash"] == "0x" + keccak(data).hex() and int(out["size"], 16) == len(data)
        return str(out["hash"])


# -- EIP-712, signed as a wallet does it (eth-account's encoder, not the node's) -------------

_DOMAIN_FIELDS = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                  {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]


def domain(chain_id: int = CHAIN_ID) -> dict[str, Any]:
    return {"name": "ailedger", "version": "1", "chainId": chain_id,
            "verifyingContract": to_checksum_address(INFERENCE)}


def request_typed(req: dict[str, Any], chain_id: int = CHAIN_ID, validator: str | None = None) -> dict[str, Any]:
    """The InferenceRequest as eth_signTypedData_v4 JSON (``req`` in ABI order, camelCase),
    signed for ``validator`` (default: the world's validator), the only one that may serve it."""
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "InferenceRequest": [
            {"name": "user", "type": "address"}, {"name": "validator", "type": "address"},
            {"name": "adapterId", "type": "uint256"},
            {"name": "promptHash", "type": "bytes32"}, {"name": "maxTokens", "type": "uint256"},
            {"name": "maxFee", "type": "uint256"},
            {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint256"},
            {"name": "chainId", "type": "uint256"}, {"name": "commercial", "type": "bool"}]},
        "primaryType": "InferenceRequest", "domain": domain(chain_id),
        "message": {**req, "promptHash": "0x" + bytes(req["promptHash"]).hex(),
                    "validator": validator or ADDR[VALIDATOR]},
    }


def receipt_typed(request_hash: bytes, output_hash: bytes, ids: list[int], weights: list[int],
                  fee: int, validator: str, chain_id: int = CHAIN_ID,
                  engine_profile: bytes | None = None) -> dict[str, Any]:
    engine_profile = ENGINE_PROFILE if engine_profile is None else engine_profile
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "InferenceReceipt": [
            {"name": "requestHash", "type": "bytes32"}, {"name": "outputHash", "type": "bytes32"},
            {"name": "engineProfile", "type": "bytes32"},
            {"name": "contributionIds", "type": "uint256[]"}, {"name": "weightsBp", "type": "uint256[]"},
            {"name": "fee", "type": "uint256"}, {"name": "validator", "type": "address"}]},
        "primaryType": "InferenceReceipt", "domain": domain(chain_id),
        "message": {"requestHash": "0x" + request_hash.hex(), "outputHash": "0x" + output_hash.hex(),
                    "engineProfile": "0x" + engine_profile.hex(),
                    "contributionIds": ids, "weightsBp": weights, "fee": fee,
                    "validator": validator},
    }


def typed_digest(typed: dict[str, Any]) -> bytes:
    msg = encode_typed_data(full_message=typed)
    return keccak(b"\x19" + msg.version + msg.header + msg.body)


def sign_typed(typed: dict[str, Any], key: bytes) -> bytes:
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), key).signature)


def make_request(user: int, adapter: int, max_fee: int, nonce: int, deadline: int,
                 prompt: str = "prompt", chain_id: int = CHAIN_ID, max_tokens: int = 32,
                 commercial: bool = False) -> dict[str, Any]:
    """An InferenceRequest as a dict in the ABI's field order."""
    return {"user": ADDR[user], "adapterId": adapter, "promptHash": keccak(text=prompt),
            "maxTokens": max_tokens, "maxFee": max_fee, "nonce": nonce, "deadline": deadline,
            "chainId": chain_id, "commercial": commercial}


def request_tuple(req: dict[str, Any]) -> tuple[Any, ...]:
    return (req["user"], req["adapterId"], req["promptHash"], req["maxTokens"], req["maxFee"], req["nonce"],
            req["deadline"], req["chainId"], req["commercial"])


@dataclass(frozen=True)
class SignedReceipt:
    """Everything ``submitReceipt`` takes, signed by the user and the validator."""

    request: dict[str, Any]
    """The InferenceRequest (camelCase keys, ABI order)."""
    request_hash: bytes
    """EIP-712 digest of the request (computed here, not by the node)."""
    user_signature: bytes
    output_hash: bytes
    engine_profile: bytes
    ids: list[int]
    weights: list[int]
    fee: int
    validator: str
    validator_signature: bytes

    def abi_args(self) -> tuple[Any, ...]:
        return (request_tuple(self.request), self.user_signature, self.output_hash, self.engine_profile,
                self.ids, self.weights, self.fee, self.validator, self.validator_signature)

    def native_fields(self) -> dict[str, Any]:
        r = self.request
        return {"user": bytes.fromhex(r["user"][2:]), "adapter_id": r["adapterId"],
                "prompt_hash": r["promptHash"], "max_tokens": r["maxTokens"], "max_fee": r["maxFee"],
                "request_nonce": r["nonce"], "deadline": r["deadline"], "request_chain_id": r["chainId"],
                "commercial": int(r["commercial"]), "user_signature": self.user_signature, "output_hash": self.output_hash,
                "engine_profile": self.engine_profile,
                "contribution_ids": self.ids, "weights_bp": self.weights, "fee": self.fee,
                "validator": bytes.fromhex(self.validator[2:]),
                "validator_signature": self.validator_signature}


def sign_receipt(req: dict[str, Any], ids: list[int], weights: list[int], fee: int,
                 validator: int = VALIDATOR, user_key: bytes | None = None,
                 validator_key: bytes | None = None, output: bytes | None = None,
                 user_signature: bytes | None = None) -> SignedReceipt:
    """Sign ``req`` as its user and the receipt as ``validator`` (keys overridable to forge)."""
    user_idx = ADDR.index(req["user"])
    rtyped = request_typed(req, req["chainId"], ADDR[validator])
    request_hash = typed_digest(rtyped)
    usig = user_signature if user_signature is not None else sign_typed(
        rtyped, user_key if user_key is not None else KEY[user_idx])
    out = output if output is not None else keccak(text=f"output {req['nonce']}")
    vtyped = receipt_typed(request_hash, out, ids, weights, fee, ADDR[validator], req["chainId"])
    vsig = sign_typed(vtyped, validator_key if validator_key is not None else KEY[validator])
    return SignedReceipt(req, request_hash, usig, out, ENGINE_PROFILE, ids, weights, fee, ADDR[validator], vsig)


def topic_int(topic: str) -> int:
    return int(topic, 16)
