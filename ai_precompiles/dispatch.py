"""Turns a module's handlers into a py-evm precompile: who may reach it, selector dispatch, gas,
static and payable checks, ABI decoding, and what a failure becomes.

- Only CALL and STATICCALL reach a module: a frame whose storage or code address is not the
  precompile's own (DELEGATECALL, CALLCODE) is refused before anything runs. Through
  DELEGATECALL the module would see the caller's caller as ``msg.sender`` (impersonation) and a
  ``msg.value`` that never moved (minting); through CALLCODE the value moves from the contract to
  itself. EIP-7702 delegation to a precompile never runs it (py-evm treats the code as empty).
- STATICCALL (and ``eth_call`` with ``is_static``) may run views only; a state-changing function
  reverts with :class:`~ai_precompiles.errors.WriteInStaticCall`.
- An :class:`~ai_precompiles.errors.AIError` (the module's own rejections and decoding errors)
  becomes ``Revert(Error(string))``: a rule of the chain. Any other exception is a bug and must
  not silently become one: it is raised as :class:`~ai_precompiles.errors.PrecompileFault`, which
  is not a ``VMError`` and so escapes ``apply_transaction``; the node drops the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from eth.exceptions import Revert, VMError

from . import abi as abimod
from .addresses import GOVERNANCE
from .context import Ctx
from .errors import (
    AIError,
    BadCalldata,
    ExecutionInterrupted,
    InvalidArgument,
    PrecompileFault,
    WrongCallKind,
)
from .upgrades import gas_price

log = logging.getLogger(__name__)

Handler = Callable[..., Any]


def price_param(fn: abimod.AbiFunction) -> str:
    """Governance parameter holding the gas price of ``fn``: ``gas.<name>`` or ``gas.read``."""
    return "gas.read" if fn.view else f"gas.{fn.name}"


class Precompile:
    """A precompile built from ``abi/<name>.json`` and one handler per ABI function.

    A handler is ``handler(ctx, *decoded_args) -> result``; the result is encoded with the
    function's ABI outputs.
    """

    def __init__(self, name: str, address: bytes, handlers: dict[str, Handler],
                 abi: abimod.ModuleAbi | None = None) -> None:
        """``abi`` defaults to the shipped ``abi/<name>.json``."""
        self.name = name
        self.address = address
        self.abi = abi if abi is not None else abimod.load(name)
        missing = set(handlers) - set(self.abi.by_name)
        if missing:
            raise ValueError(f"{name}: handlers without ABI entry: {sorted(missing)}")
        self.handlers = handlers

    def __call__(self, computation: Any) -> Any:
        fn_name = "?"
        try:
            msg = computation.msg
            if bytes(msg.storage_address) != self.address or bytes(msg.code_address) != self.address:
                raise WrongCallKind(f"{self.name}: only CALL and STATICCALL may reach a precompile")
            data = bytes(msg.data)
            fn = self.abi.functions.get(data[:4])
            if fn is None or fn.name not in self.handlers:
                raise BadCalldata(f"{self.name}: unknown function selector 0x{data[:4].hex()}")
            fn_name = fn.name
            # by height: an upgrade active at this block may supersede the parameter
            price = gas_price(computation.state, price_param(fn))
            ctx = Ctx.from_computation(computation, prepaid=price)
            if ctx.value and not fn.payable:
                raise InvalidArgument(f"{fn.name} is not payable")
            if not fn.view:
                ctx.require_write()
            try:
                args = fn.decode_args(data[4:])
            except Exception as exc:
                raise BadCalldata(f"{fn.name}: calldata does not decode ({exc})") from None
            result = self.handlers[fn.name](ctx, *args)
            computation.output = fn.encode_result(result)
        except AIError as exc:
            computation.output = exc.revert_data()
            raise Revert(computation.output) from None
        except (VMError, ExecutionInterrupted):
            raise
        except Exception as exc:
            log.critical("%s.%s precompile fault: %r", self.name, fn_name, exc, exc_info=True)
            raise PrecompileFault(self.name, fn_name, exc) from exc
        return computation


def governance_store(ctx: Ctx) -> Any:
    return ctx.store(GOVERNANCE)
