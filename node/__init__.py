"""Wiring: CLI, JSON-RPC server, transaction pool, block production and metrics."""
