"""Typed errors of the sidecar; the gRPC edge maps each kind to one status code.

Bad input gets one of these, never a bare exception, so that `service.py` can turn it
into the right gRPC status (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED) with the
message written here.
"""

from __future__ import annotations


class SidecarError(Exception):
    """Base of every error the sidecar reports to a caller."""


class InvalidArgument(SidecarError):
    """A request field is out of range or malformed (bad hyper-parameters, prompt too long)."""


class AdapterNotFound(SidecarError):
    """The named adapter is neither in the cache nor in the store."""


class QueueFull(SidecarError):
    """The serving queue holds its maximum number of waiting requests; retry later."""


class RequestNotFound(SidecarError):
    """A replay named a request id that the sidecar's journal does not hold."""


class EngineUnavailable(SidecarError):
    """The serving engine cannot finish the request: its worker stopped, the request timed
    out, or the journal that Replay relies on could not be written."""


class IntegrityError(SidecarError):
    """Received bytes do not hash to what their sender announced (a corrupt or tampered artifact)."""


class Incompatible(SidecarError):
    """The request is well formed but is for another base model or engine profile than this
    sidecar runs: it cannot serve or verify it here."""


class AlreadyExists(SidecarError):
    """An adapter id, or the same weights with another manifest, is already held with other content."""
