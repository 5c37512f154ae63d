"""The checkpoint signing key: made once by ``dangan init``, loaded once per process."""

from __future__ import annotations

import os
from pathlib import Path

from dangan.errors import BackendUnavailable
from dangan.ledger.note import NoteSigner


def create_signing_key(path: Path, *, name: str) -> bool:
    """Write a new Ed25519 key to ``path`` (mode 0600) unless one exists; True if created.

    The public verifier key is written beside it as ``<stem>.pub``.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = NoteSigner.generate(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, signer.private_pem())
        os.fsync(fd)
    finally:
        os.close(fd)
    path.with_suffix(".pub").write_text(signer.verifier_key() + "\n")
    return True


def load_signing_key(path: Path, *, name: str) -> NoteSigner:
    """The signer for checkpoints; a clear error when the key is missing."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise BackendUnavailable(
            f"no ledger signing key at {path}: run 'dangan init' first"
        ) from exc
    return NoteSigner.from_pem(name, pem)
