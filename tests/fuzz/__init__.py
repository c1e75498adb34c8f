"""Hypothesis fuzzing of the node's input edges: raw transactions, JSON-RPC bodies, parameter parsers."""
