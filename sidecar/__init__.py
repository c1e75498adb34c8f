"""The sidecar: a gRPC service that trains, serves and attributes LoRA adapters on one base model (torch + peft)."""

__version__ = "0.1.0"
"""The sidecar's version as the engine profile and training manifests name it (the package's)."""
