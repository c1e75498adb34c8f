"""Peer-to-peer: the libp2p host, gossip topics and request/response protocols."""
