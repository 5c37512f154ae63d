"""A receipt verifier written from the standards alone, sharing no code with dangan.

It follows the README's "Verifying a receipt" steps: C2SP signed-note + tlog-checkpoint
for the checkpoint, RFC 9162 §2.1.3.2 for the inclusion proof.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _rfc9162_verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    # RFC 9162 §2.1.3.2, step by step.
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify(receipt: dict, verifier_key: str) -> bool:
    name, key_id_hex, key_b64 = verifier_key.strip().split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 1 and len(raw) == 33  # Ed25519
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    key_id = _sha256(name.encode() + b"\n" + raw)[:4]
    assert key_id.hex() == key_id_hex

    ledger = receipt["ledger"]
    text, _, signatures = ledger["checkpoint"].partition("\n\n")
    text += "\n"
    verified = False
    for line in signatures.splitlines():
        dash, signer, sig_b64 = line.split(" ")
        blob = base64.b64decode(sig_b64)
        if dash == "\u2014" and signer == name and blob[:4] == key_id:
            public.verify(blob[4:], text.encode())  # raises on a bad signature
            verified = True
    if not verified:
        return False
    origin, size_text, root_b64 = text.splitlines()[:3]
    size, root = int(size_text), base64.b64decode(root_b64)
    if size != ledger["tree_size"]:
        return False
    entry = ledger["entry"].encode()
    leaf = _sha256(b"\x00" + entry)
    if leaf.hex() != ledger["leaf_hash"]:
        return False
    path = [bytes.fromhex(h) for h in ledger["inclusion_proof"]]
    if not _rfc9162_verify_inclusion(leaf, ledger["seq"], size, path, root):
        return False
    subject = json.loads(entry)["subject"]
    return subject["document"] == receipt["id"] and subject["sha256"] == receipt["sha256"]
