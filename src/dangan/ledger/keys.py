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
    _write_durably(path, signer.private_pem(), mode=0o600)
    _write_durably(path.with_suffix(".pub"), (signer.verifier_key() + "\n").encode(), mode=0o644)
    return True


def _write_durably(path: Path, data: bytes, *, mode: int) -> None:
    """Write a new file and make it and its directory entry survive a crash."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_signing_key(path: Path, *, name: str) -> NoteSigner:
    """The signer for checkpoints; a clear error when the key is missing."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise BackendUnavailable(
            f"no ledger signing key at {path}: run 'dangan init' first"
        ) from exc
    return NoteSigner.from_pem(name, pem)
