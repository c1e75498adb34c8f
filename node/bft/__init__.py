"""A BFT validator's side of the node: the consensus reactor (engine plumbing), the evidence it
puts on chain, and the test-only transport faults that real-process tests switch on."""
