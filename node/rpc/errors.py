"""JSON-RPC errors: one typed exception per kind of failure, each with its standard code.

Codes follow geth and anvil, so clients branch on them unchanged: -32700 parse error,
-32600 invalid request, -32601 method not found, -32602 invalid params, -32603
internal, -32000 for refused transactions and state errors, 3 for a revert (its bytes
in ``data``, so ethers and web3.py decode reason strings and custom errors).
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode

from node import errors as node_errors


class RPCError(Exception):
    code = -32603
    default_message = "internal error"

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class ParseError(RPCError):
    code = -32700
    default_message = "parse error"


class InvalidRequest(RPCError):
    code = -32600
    default_message = "invalid request"


class MethodNotFound(RPCError):
    code = -32601
    default_message = "method not found"


class InvalidParams(RPCError):
    code = -32602
    default_message = "invalid params"


class InternalError(RPCError):
    code = -32603


class ServerError(RPCError):
    """geth's -32000: a refused transaction, an unknown block, a state error."""

    code = -32000


class BlockOutOfRange(ServerError):
    """A block number past the head: anvil answers -32602 (geth -32000 "header not
    found"). A ServerError still, so that lookups which answer null for an unknown block
    catch it as they catch any other."""

    code = -32602


class ResourceNotFound(RPCError):
    code = -32001
    default_message = "resource not found"


class LimitExceeded(RPCError):
    code = -32005
    default_message = "limit exceeded"


#: Error(string) and Panic(uint256) selectors, which geth decodes into the message.
_ERROR_STRING = bytes.fromhex("08c379a0")
_PANIC = bytes.fromhex("4e487b71")


class ExecutionReverted(RPCError):
    """A REVERT: code 3, the revert bytes as ``data`` (geth's shape)."""

    code = 3

    def __init__(self, revert_data: bytes) -> None:
        reason = decode_revert_reason(revert_data)
        super().__init__(
            "execution reverted" + (f": {reason}" if reason else ""),
            "0x" + revert_data.hex(),
        )


def decode_revert_reason(data: bytes) -> str | None:
    try:
        if data[:4] == _ERROR_STRING:
            return str(abi_decode(["string"], data[4:])[0])
        if data[:4] == _PANIC:
            return f"panic: {hex(abi_decode(['uint256'], data[4:])[0])}"
    except Exception:
        return None
    return None


#: Each kind of node error and the JSON-RPC error it becomes; the first match wins, so
#: a subclass sits above its base.
_NODE_ERROR_CODES: tuple[tuple[type[node_errors.NodeError], type[RPCError]], ...] = (
    (node_errors.NotAvailable, MethodNotFound),
    (node_errors.UnknownFutureBlock, BlockOutOfRange),
    (node_errors.InvalidInput, InvalidParams),
    (node_errors.LimitExceeded, LimitExceeded),
    (node_errors.NotFound, ResourceNotFound),
    (node_errors.Refused, ServerError),
)


def from_node_error(error: node_errors.NodeError) -> RPCError:
    """The JSON-RPC error that reports ``error`` (the one place codes are chosen)."""
    for kind, rpc_error in _NODE_ERROR_CODES:
        if isinstance(error, kind):
            return rpc_error(error.message)
    return ServerError(error.message)
