"""The CLI's one JSON-RPC client: it reads, and signs and sends with one key, every command alike.

Every transaction the CLI sends, an ABI call or a native type, takes its head from
:meth:`Client.tx_head`: the chain id, the sender's next nonce counting its transactions still
in the node's pool (``eth_getTransactionCount(..., "pending")``, so two commands in a row do
not collide), and one fee rule, a tip of the node's ``eth_maxPriorityFeePerGas`` and a cap of
twice the head's base fee plus that tip (it survives a few full blocks of base-fee rises).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Protocol

from node.cli.errors import RPC, UNREACHABLE, CLIError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from state.native import NativeTransaction

    class NativeType(Protocol):
        """A native transaction type of ``state.native``, as the client signs it."""

        def sign(self, private_key: bytes, **fields: object) -> NativeTransaction: ...

#: A JSON value as the node answers it (``json.loads`` gives no finer type).
Json = Any
#: Seconds the client waits for a sent transaction to be mined.
RECEIPT_WAIT = 120


def checksum(address: str | bytes) -> str:
    """The EIP-55 form of an address, as the CLI prints it."""
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


class Client:
    """A JSON-RPC client of one node that signs with one key (or none, for reads)."""

    def __init__(self, url: str, key: bytes | None) -> None:
        self.url = url
        self._key = key
        self._account: LocalAccount | None = None

    # -- reads -----------------------------------------------------------------------------------

    def call(self, method: str, *params: Json) -> Json:
        """One JSON-RPC call; a node error or an unreachable node is a :class:`CLIError`."""
        import urllib.error
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise CLIError(f"{self.url} answered HTTP {e.code} to {method}", code=RPC,
                           details={"httpStatus": e.code}) from None
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise CLIError(f"cannot reach the node at {self.url} ({reason}): is `ailedger dev` running? "
                           "(or give --rpc URL / AILEDGER_RPC)", code=UNREACHABLE) from None
        if "error" in reply:
            err = reply["error"]
            details = {"rpcCode": err.get("code")}
            if err.get("code") == -32601:
                raise CLIError(f"the node at {self.url} does not serve {method}: {err.get('message')}",
                               code=RPC, details=details)
            raise CLIError(f"{err.get('message')}", code=RPC, details=details)
        return reply["result"]

    def view(self, module: str, function: str, *args: object) -> Json:
        """Call a precompile's view function and decode its result."""
        import ai_precompiles
        from ai_precompiles.addresses import BY_NAME

        fn = ai_precompiles.MODULES[module].abi.by_name[function]
        data = "0x" + fn.encode_args(*args).hex()
        raw = self.call("eth_call", {"to": checksum(BY_NAME[module]), "data": data}, "latest")
        return fn.decode_result(bytes.fromhex(raw[2:]))

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    # -- the signer ------------------------------------------------------------------------------

    @property
    def account(self) -> LocalAccount | None:
        if self._account is None and self._key is not None:
            from eth_account import Account

            self._account = Account.from_key(self._key)
        return self._account

    @property
    def address(self) -> str:
        """The signer's checksummed address; a command that signs without a key stops here."""
        return str(self._signer().address)

    @property
    def key(self) -> bytes:
        """The signer's 32-byte private key."""
        return bytes(self._signer().key)

    def fees(self) -> tuple[int, int]:
        """(max priority fee, max fee) per gas for a transaction now: the one fee rule."""
        tip = int(self.call("eth_maxPriorityFeePerGas"), 16)
        base = int(self.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        return tip, 2 * base + tip

    def nonce(self) -> int:
        """The signer's next nonce, counting its transactions in the node's pool."""
        return int(self.call("eth_getTransactionCount", self.address, "pending"), 16)

    def tx_head(self) -> dict[str, int]:
        """Chain id, nonce and fees of the next transaction, in ``state.native``'s field names."""
        tip, max_fee = self.fees()
        return {"chain_id": self.chain_id(), "nonce": self.nonce(),
                "max_priority_fee_per_gas": tip, "max_fee_per_gas": max_fee}

    # -- sending ---------------------------------------------------------------------------------

    def transact(self, module: str, function: str, *args: object, value: int = 0) -> dict[str, Json]:
        """Sign and send a call of ``module.function``; wait for and return its receipt. The
        call is estimated first, so a call that would revert is refused before it spends gas."""
        from eth_typing import HexStr
        from eth_utils import to_checksum_address

        import ai_precompiles
        from ai_precompiles.addresses import BY_NAME

        fn = ai_precompiles.MODULES[module].abi.by_name[function]
        data = HexStr("0x" + fn.encode_args(*args).hex())
        to = to_checksum_address(BY_NAME[module])
        sender = self.address
        tx = {"from": sender, "to": to, "data": data, "value": hex(value)}
        gas = int(self.call("eth_estimateGas", tx), 16)
        head = self.tx_head()
        signed = self._signer().sign_transaction({
            "type": 2, "chainId": head["chain_id"], "nonce": head["nonce"],
            "maxPriorityFeePerGas": head["max_priority_fee_per_gas"], "maxFeePerGas": head["max_fee_per_gas"],
            "to": to, "data": data, "value": value, "gas": gas * 6 // 5,
        })
        return self.send_raw(bytes(signed.raw_transaction))

    def send_native(self, kind: NativeType, gas: int, **payload: object) -> dict[str, Json]:
        """Sign a native transaction of type ``kind`` with this payload, send it, and wait for
        its receipt."""
        return self.submit_native(kind.sign(self.key, gas=gas, **self.tx_head(), **payload))

    def submit_native(self, tx: NativeTransaction) -> dict[str, Json]:
        """Send a signed native transaction (wrapped as EIP-2718 bytes); wait for its receipt."""
        from state.vm import LedgerTransactionBuilder

        return self.send_raw(LedgerTransactionBuilder.wrap_native(tx).encode())

    def send_raw(self, raw: bytes) -> dict[str, Json]:
        tx_hash = self.call("eth_sendRawTransaction", "0x" + raw.hex())
        deadline = time.monotonic() + RECEIPT_WAIT
        while time.monotonic() < deadline:
            receipt = self.call("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                if receipt["status"] != "0x1":
                    raise CLIError(f"transaction {tx_hash} failed in block {int(receipt['blockNumber'], 16)}: "
                                   f"{self.failure_reason(tx_hash, receipt)}")
                return dict(receipt)
            time.sleep(0.2)
        raise CLIError(f"transaction {tx_hash} not mined within {RECEIPT_WAIT} s")

    def failure_reason(self, tx_hash: str, receipt: dict[str, Json]) -> str:
        """Why a mined transaction failed: re-run its call on the parent block's state."""
        tx = self.call("eth_getTransactionByHash", tx_hash)
        parent = hex(int(receipt["blockNumber"], 16) - 1)
        try:
            self.call("eth_call", {"from": tx["from"], "to": tx["to"], "data": tx["input"],
                                   "value": tx["value"], "gas": tx["gas"]}, parent)
        except CLIError as e:
            return str(e)
        return "reverted (no reason could be reproduced)"

    def event_arg(self, receipt: dict[str, Json], module: str, event: str, index: int = 1) -> int:
        """The ``index``-th topic of the first ``event`` log of ``module`` in ``receipt`` (an id)."""
        import ai_precompiles

        ev = ai_precompiles.MODULES[module].abi.events[event]
        for log in receipt["logs"]:
            if int(log["topics"][0], 16) == ev.topic0:
                return int(log["topics"][index], 16)
        raise CLIError(f"no {event} event in the receipt")

    def _signer(self) -> LocalAccount:
        account = self.account
        if account is None:
            raise CLIError("this command signs a transaction: give --account N (dev chain), --key or AILEDGER_KEY")
        return account
