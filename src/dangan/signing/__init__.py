"""Signatures, seals and timestamps: a development PKI, an RFC 3161 Time-Stamp Authority,
key sources and (later) PAdES signing and validation."""
