"""The ``eth_`` namespace, one module per subject: chain, blocks, accounts, transactions, sign, call, simulate, fees, filters."""
