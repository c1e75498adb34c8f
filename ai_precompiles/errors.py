"""Typed errors of the AI modules and their mapping to an EVM revert.

Every rule an operation checks raises an :class:`AIError` subclass with a reason string; the
dispatcher turns it into ``Revert(Error(string))`` so wallets, web3.py and ethers show the reason,
and the transaction's state changes are undone by py-evm's snapshot.
"""

from __future__ import annotations

from eth_abi import encode

#: selector of Solidity's ``Error(string)``
ERROR_SELECTOR = bytes.fromhex("08c379a0")


class AIError(Exception):
    """A clean rejection of an AI operation; the message is the revert reason."""

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__

    def revert_data(self) -> bytes:
        """ABI-encoded ``Error(string)``: what Solidity's ``revert("...")`` returns."""
        return ERROR_SELECTOR + encode(["string"], [self.reason])


class BadCalldata(AIError):
    """Calldata that does not decode against the precompile's ABI."""


class NotFound(AIError):
    """A referenced record (datanet, contribution, model, proposal) does not exist."""


class Unauthorized(AIError):
    """The sender may not perform this operation (not a curator, not the owner...)."""


class InvalidArgument(AIError):
    """An argument breaks a rule (size over limit, weights not summing, bad bounds...)."""


class InvalidState(AIError):
    """The record is not in a state that allows the operation (already decided, retired...)."""


class BadSignature(AIError):
    """A signature does not verify or recovers to the wrong address."""


class WriteInStaticCall(AIError):
    """A state-changing function reached through STATICCALL or eth_call with is_static."""


class InsufficientFunds(AIError):
    """A deposit, stake or claimable balance is too small for the operation."""


class WrongCallKind(AIError):
    """A precompile reached by DELEGATECALL or CALLCODE (or any frame whose storage or code
    address is not the precompile itself): only CALL and STATICCALL reach the AI modules."""


class ExecutionInterrupted(Exception):  # noqa: N818 - an interrupt, not an error of the call
    """The host stopped the whole execution from outside the call (an ``eth_call`` or
    ``eth_estimateGas`` past its time budget: ``state.vm.CallTimeout`` derives from it).

    Neither a rule of the chain nor a bug of the module: the dispatcher passes it on untouched,
    so the caller sees the timeout it is, never a :class:`PrecompileFault`.
    """


class PrecompileFault(Exception):
    """A bug inside an AI precompile (any exception that is not an :class:`AIError`).

    Deliberately not a ``VMError``: py-evm turns a ``VMError`` into a failed transaction that
    is still included in the block, which would make the bug part of the consensus rules. This
    exception escapes ``apply_transaction`` instead, so the node refuses to build (or import) a
    block that runs into it and drops the offending transaction, loudly.
    """

    def __init__(self, module: str, function: str, cause: BaseException) -> None:
        super().__init__(f"{module}.{function}: {type(cause).__name__}: {cause}")
        self.module = module
        self.function = function
        self.cause = cause


def decode_revert_reason(data: bytes) -> str | None:
    """The reason string of ``Error(string)`` revert data, or None for other data."""
    from eth_abi import decode

    if len(data) < 4 or data[:4] != ERROR_SELECTOR:
        return None
    try:
        return str(decode(["string"], data[4:])[0])
    except Exception:
        return None
