"""The sidecar: a gRPC service that trains, serves and attributes LoRA adapters on one base model (torch + peft)."""
