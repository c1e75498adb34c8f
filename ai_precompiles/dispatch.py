"""Turns a module's handlers into a py-evm precompile: selector dispatch, gas, static checks,
payable checks, ABI decoding, and the mapping of every failure to a clean ``Revert``.

Only ``VMError`` subclasses may leave a precompile (anything else would escape
``apply_transaction`` and crash block building), so decoding errors and unexpected exceptions
become ``Revert(Error(string))`` too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from eth.exceptions import Revert, VMError

from . import abi as abimod
from .addresses import GOVERNANCE
from .context import Ctx
from .errors import AIError, BadCalldata, InvalidArgument
from .params import get_param

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

    def __init__(self, name: str, address: bytes, handlers: dict[str, Handler]) -> None:
        self.name = name
        self.address = address
        self.abi = abimod.load(name)
        missing = set(handlers) - set(self.abi.by_name)
        if missing:
            raise ValueError(f"{name}: handlers without ABI entry: {sorted(missing)}")
        self.handlers = handlers

    def __call__(self, computation: Any) -> Any:
        try:
            data = bytes(computation.msg.data)
            fn = self.abi.functions.get(data[:4])
            if fn is None or fn.name not in self.handlers:
                raise BadCalldata(f"{self.name}: unknown function selector 0x{data[:4].hex()}")
            price = get_param(computation.state, price_param(fn))
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
        except VMError:
            raise
        except Exception as exc:  # a bug must not crash block building: fail this call only
            log.exception("%s precompile: unexpected error", self.name)
            err = AIError(f"{self.name}: internal error: {type(exc).__name__}")
            computation.output = err.revert_data()
            raise Revert(computation.output) from None
        return computation

    def call_native(self, ctx: Ctx, function: str, *args: Any) -> Any:
        """Run ``function`` with already-decoded arguments under ``ctx`` (native tx path)."""
        fn = self.abi.by_name[function]
        if not fn.view:
            ctx.require_write()
        ctx.meter.add_prepaid(get_param(ctx.state, price_param(fn)))
        return self.handlers[function](ctx, *args)


def governance_store(ctx: Ctx) -> Any:
    return ctx.store(GOVERNANCE)
