"""Consensus: who may seal the next block. A single validator for now; Tendermint BFT later."""
