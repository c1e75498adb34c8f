"""The one error a command raises for its user, and how it reads under ``--json``."""

from __future__ import annotations

from typing import Any

#: The ``code`` of a JSON error: what kind of failure it was (``message`` says the rest).
USAGE = "usage"  # bad flags or arguments (exit status 2)
UNREACHABLE = "unreachable"  # no answer from the node at --rpc
RPC = "rpc"  # the node answered with an error (``rpcCode``: its JSON-RPC code)
FAILED = "failed"  # the command refused or failed (bad input, a reverted transaction ...)


class CLIError(RuntimeError):
    """A command failed; the message is for the user (``ailedger`` prints it as one line and
    exits with status 1, or as :func:`error_json` under ``--json``). ``code`` is one of the
    codes above; ``details`` adds fields to the JSON error (the node's ``rpcCode``)."""

    def __init__(self, message: str, *, code: str = FAILED, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = dict(details or {})


def error_json(message: str, code: str = FAILED, **details: Any) -> dict[str, Any]:
    """What a command run with ``--json`` prints on stdout when it fails, instead of its
    result: ``{"error": {"code": ..., "message": ..., ...details}}``, one object a script
    parses the same way as a result."""
    return {"error": {"code": code, "message": message, **details}}
