"""The verifiable ledger: an append-only log whose entries are leaves of an RFC 9162 Merkle tree."""
