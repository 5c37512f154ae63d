"""SoftHSM2 tokens for PKCS#11 tests, made with ``softhsm2-util`` and ``pkcs11-tool``.

:func:`softhsm` writes a ``softhsm2.conf`` whose token directory lies in a temp dir and
points ``SOFTHSM2_CONF`` at it, for this process and the tools it runs. Tokens are
initialised with ``softhsm2-util --init-token``; keys are imported from unencrypted
PKCS#8 PEM with ``softhsm2-util --import`` and certificates written with
``pkcs11-tool --write-object``.

SoftHSM2 reads its configuration and lists its tokens once, when a process first
initialises the library, and python-pkcs11 never finalises it. So make every token a
test run needs before anything in the process opens the module, and use one token
directory per process. The PINs here are test values; the tools see them on their
command lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from dangan.signing.pki import IssuedCredential

#: Where Debian's softhsm2 package puts the PKCS#11 module.
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
_TOOLS = ("softhsm2-util", "pkcs11-tool")
_TIMEOUT = 60


def softhsm_missing() -> str | None:
    """Why SoftHSM2 tests cannot run here, or None when they can."""
    if not SOFTHSM_MODULE.is_file():
        return f"needs the SoftHSM2 module {SOFTHSM_MODULE} (Debian package softhsm2)"
    for tool in _TOOLS:
        if shutil.which(tool) is None:
            return f"needs the {tool} command (Debian packages softhsm2 and opensc)"
    return None


@dataclass(frozen=True)
class TokenKey:
    """A private key and its certificate on a token, both under one label and ID."""

    token_label: str
    """Label of the token holding the key."""
    label: str
    """CKA_LABEL of the private key and of the certificate."""
    key_id: bytes
    """CKA_ID of the private key and of the certificate."""
    credential: IssuedCredential
    """The development PKI credential the key and certificate came from."""


@dataclass(frozen=True)
class SoftHsmToken:
    """An initialised token; add keys with :meth:`import_credential`."""

    module_path: Path
    """The SoftHSM2 PKCS#11 module."""
    label: str
    """The token label."""
    user_pin: str = field(repr=False)
    """The user PIN."""
    so_pin: str = field(repr=False)
    """The security officer PIN."""
    work_dir: Path
    """Where key files live for the moment they are imported."""

    def import_credential(
        self, credential: IssuedCredential, *, label: str, key_id: bytes
    ) -> TokenKey:
        """Put the key and certificate of ``credential`` on the token as ``label``/``key_id``."""
        stem = f"{self.label}-{key_id.hex()}"
        key_path = self.work_dir / f"{stem}.pk8.pem"
        cert_path = self.work_dir / f"{stem}.cert.der"
        pkcs8 = credential.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pkcs8)
        try:
            run_tool(
                *("softhsm2-util", "--import", key_path, "--token", self.label),
                *("--label", label, "--id", key_id.hex(), "--pin", self.user_pin),
            )
        finally:
            key_path.unlink()
        cert_path.write_bytes(credential.certificate.public_bytes(serialization.Encoding.DER))
        run_tool(
            *("pkcs11-tool", "--module", self.module_path, "--token-label", self.label),
            *("--login", "--pin", self.user_pin, "--write-object", cert_path, "--type", "cert"),
            *("--label", label, "--id", key_id.hex()),
        )
        return TokenKey(token_label=self.label, label=label, key_id=key_id, credential=credential)


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 token directory of its own; make tokens with :meth:`create_token`."""

    directory: Path
    """Holds ``softhsm2.conf`` and the ``tokens`` directory."""
    module_path: Path = SOFTHSM_MODULE
    """The SoftHSM2 PKCS#11 module."""

    @property
    def config_path(self) -> Path:
        """The ``softhsm2.conf`` that ``SOFTHSM2_CONF`` names."""
        return self.directory / "softhsm2.conf"

    def create_token(self, *, label: str, so_pin: str, user_pin: str) -> SoftHsmToken:
        """Initialise a token in the first free slot."""
        run_tool(
            *("softhsm2-util", "--init-token", "--free", "--label", label),
            *("--so-pin", so_pin, "--pin", user_pin),
        )
        work_dir = self.directory / "work"
        work_dir.mkdir(mode=0o700, exist_ok=True)
        return SoftHsmToken(
            module_path=self.module_path,
            label=label,
            user_pin=user_pin,
            so_pin=so_pin,
            work_dir=work_dir,
        )


@dataclass(frozen=True)
class SealKeys:
    """Seal keys of the development PKI on SoftHSM2 tokens, as the signing tests use them."""

    module_path: Path
    """The SoftHSM2 PKCS#11 module."""
    user_pin: str = field(repr=False)
    """The user PIN of every token."""
    by_type: dict[str, TokenKey]
    """One key per key type (``rsa2048``, ``p256``), all on the token :data:`SEAL_TOKEN`."""
    spare: TokenKey
    """A key on the token :data:`SPARE_TOKEN`, for tests that must log in there first."""


#: Label of the token holding :attr:`SealKeys.by_type`.
SEAL_TOKEN = "dangan-seals"
#: Label of the token holding :attr:`SealKeys.spare`.
SPARE_TOKEN = "dangan-spare"
#: Test PINs (SoftHSM2 takes 4 to 255 characters).
USER_PIN = "user-pin-2468"
SO_PIN = "so-pin-1357"


def put_seal_keys(hsm: SoftHsm, credentials: dict[str, IssuedCredential]) -> SealKeys:
    """Make the tokens :data:`SEAL_TOKEN` and :data:`SPARE_TOKEN` and import ``credentials``.

    Keys are labelled ``seal-<key type>`` with CKA_ID 01, 02, … in the order given; the
    spare token holds the first credential again.
    """
    seals = hsm.create_token(label=SEAL_TOKEN, so_pin=SO_PIN, user_pin=USER_PIN)
    spare = hsm.create_token(label=SPARE_TOKEN, so_pin=SO_PIN, user_pin=USER_PIN)
    by_type = {
        key_type: seals.import_credential(
            credential, label=f"seal-{key_type}", key_id=bytes([number])
        )
        for number, (key_type, credential) in enumerate(credentials.items(), start=1)
    }
    first_type, first = next(iter(credentials.items()))
    spare_key = spare.import_credential(first, label=f"seal-{first_type}", key_id=b"\x01")
    return SealKeys(
        module_path=hsm.module_path, user_pin=USER_PIN, by_type=by_type, spare=spare_key
    )


@contextmanager
def softhsm(directory: Path) -> Iterator[SoftHsm]:
    """A SoftHSM2 configuration in ``directory``, named by ``SOFTHSM2_CONF`` until exit."""
    tokens = directory / "tokens"
    tokens.mkdir(mode=0o700, parents=True, exist_ok=True)
    hsm = SoftHsm(directory=directory)
    hsm.config_path.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(hsm.config_path)
    try:
        yield hsm
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


def run_tool(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Run a SoftHSM2 or OpenSC tool; a failure raises with its output, PINs masked."""
    command = [str(a) for a in args]
    result = subprocess.run(command, capture_output=True, check=False, timeout=_TIMEOUT)
    if result.returncode != 0:
        shown = _masked(command)
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        raise RuntimeError(f"{' '.join(shown)} failed ({result.returncode}):\n{output}")
    return result


def _masked(command: list[str]) -> list[str]:
    pin_flags = {"--pin", "--so-pin"}
    return ["***" if i > 0 and command[i - 1] in pin_flags else a for i, a in enumerate(command)]
