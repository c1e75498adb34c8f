"""The one error a command raises for its user."""

from __future__ import annotations


class CLIError(RuntimeError):
    """A command failed; the message is for the user (``ailedger`` prints it as one line and
    exits with status 1)."""
