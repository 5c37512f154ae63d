"""Private: PKCS#11 token sessions, and a pyHanko signer for a key on a token.

PKCS#11 logs in the application, not a session (C_Login, C_Logout): once one session on a
token is logged in, another C_Login fails with CKR_USER_ALREADY_LOGGED_IN (even with a
wrong PIN) and any C_Logout ends the login of every session. So this process keeps one
logged-in session per (module, token), shared by every key that lives there, with one
lock that serialises its use: python-pkcs11 sessions must not be used from two threads
at once. python-pkcs11 likewise loads and initialises each module once per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pkcs11
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.config.pkcs11 import TokenCriteria
from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session, select_pkcs11_signing_params

from dangan.signing.errors import KeySourceError, SigningError

_CHECK_DATA = b"dangan key source self-test"


@dataclass(eq=False)
class TokenSession:
    """A logged-in session on one token, shared by every key source that names it."""

    module: str
    """Path of the PKCS#11 module."""
    label: str
    """The token label."""
    session: pkcs11.Session
    """The python-pkcs11 session; use it only while holding :attr:`lock`."""
    pin_digest: bytes = field(repr=False)
    """Keyed digest of the PIN it was opened with (see :class:`TokenSessions`)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Serialises every use of :attr:`session`."""
    users: int = 0
    """Key sources using it; the last to leave closes it."""


class TokenSessions:
    """The open token sessions of a process, one per (module, token label)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], TokenSession] = {}
        # A second source must bring the same PIN; PINs are compared through a keyed
        # digest, so no PIN stays in memory after login.
        self._pin_key = secrets.token_bytes(32)

    def acquire(self, module: str, label: str, pin: str) -> TokenSession:
        """The session on the token ``label``, opened and logged in with ``pin`` if need be."""
        digest = hmac.new(self._pin_key, pin.encode("utf-8"), hashlib.sha256).digest()
        with self._lock:
            token = self._open.get((module, label))
            if token is None:
                token = TokenSession(module, label, _login(module, label, pin), digest)
                self._open[(module, label)] = token
            elif not hmac.compare_digest(token.pin_digest, digest):
                raise KeySourceError(
                    f"the token {label!r} is already open in this process with another PIN"
                )
            token.users += 1
            return token

    def release(self, token: TokenSession) -> None:
        """One user fewer; the last one logs out and closes the session."""
        with self._lock:
            token.users -= 1
            if token.users > 0:
                return
            del self._open[(token.module, token.label)]
            with token.lock:
                try:
                    token.session.close()
                except pkcs11.PKCS11Error:
                    pass  # the token is gone already; nothing is left to close


#: The sessions of this process (login state is per process, see the module docstring).
SESSIONS = TokenSessions()


class TokenSigner(PKCS11Signer):
    """pyHanko's PKCS#11 signer, using the session only under the token's lock.

    pyHanko looks the certificate and key up lazily and signs in the event loop's
    executor; here both are looked up by :meth:`load`, and every signature takes the
    lock, in a worker thread when called from async code.
    """

    def __init__(
        self,
        token: TokenSession,
        *,
        key_label: str | None,
        key_id: bytes | None,
        certificate: asn1_x509.Certificate | None,
        chain: list[asn1_x509.Certificate],
    ) -> None:
        super().__init__(
            token.session,
            key_label=key_label,
            key_id=key_id,
            signing_cert=certificate,
            ca_chain=chain,
            other_certs_to_pull=(),
        )
        self.token = token
        self.certificate: x509.Certificate | None = None
        self._key: pkcs11.SignMixin | None = None
        self._mechanism: algos.SignedDigestAlgorithm | None = None

    @property
    def description(self) -> str:
        """Names the key for messages: its label or ID, and its token."""
        name = f"label {self.key_label!r}" if self.key_label else f"ID {self.key_id.hex()}"
        return f"the key with {name} on the token {self.token.label!r}"

    def load(self) -> x509.Certificate:
        """Find the key and its certificate on the token, now, and return the certificate."""
        with self.token.lock:
            keys = list(self.pkcs11_session.get_objects(self.signing_key_fetch_params()))
            if len(keys) != 1:
                found = "no such key" if not keys else f"{len(keys)} keys match"
                raise KeySourceError(f"{self.description}: {found}")
            self._key = keys[0]
            try:
                asn1_certificate = self.signing_cert  # pyHanko fetches it here
            except pkcs11.PKCS11Error as exc:
                raise KeySourceError(
                    f"{self.description}: no single certificate with the same label or ID"
                ) from exc
        self.certificate = x509.load_der_x509_certificate(asn1_certificate.dump())
        return self.certificate

    def use_mechanism(self, mechanism: algos.SignedDigestAlgorithm) -> None:
        """Sign with ``mechanism`` from now on (ECDSA: hash here, sign the raw digest)."""
        self._mechanism = mechanism
        # SoftHSM2 2.6 lacks CKM_ECDSA_SHA256, and tokens that have it gain nothing here.
        self.use_raw_mechanism = mechanism.signature_algo == "ecdsa"

    def check_key(self) -> None:
        """Sign once and verify with the certificate, so that a key and a certificate that
        do not belong together fail here rather than in a validator's report."""
        assert self.certificate is not None and self._mechanism is not None
        digest = getattr(hashes, self._mechanism.hash_algo.upper())()
        signature = self.sign_raw(_CHECK_DATA, self._mechanism.hash_algo)
        public_key = self.certificate.public_key()
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(signature, _CHECK_DATA, padding.PKCS1v15(), digest)
            else:
                assert isinstance(public_key, ec.EllipticCurvePublicKey)
                public_key.verify(signature, _CHECK_DATA, ec.ECDSA(digest))
        except InvalidSignature as exc:
            raise KeySourceError(f"{self.description} does not belong to its certificate") from exc

    @property
    def signature_mechanism(self) -> algos.SignedDigestAlgorithm | None:
        """The mechanism set by :meth:`use_mechanism`."""
        return self._mechanism

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """The signature over ``data``, made on the token while holding its lock."""
        if self._key is None or self._mechanism is None:
            raise SigningError(f"{self.description} is not loaded")
        digest = self._mechanism.hash_algo
        if digest_algorithm.lower() != digest:
            raise SigningError(f"{self.description} signs with {digest}, not {digest_algorithm}")
        spec = select_pkcs11_signing_params(
            self._mechanism,
            digest,
            use_raw_mechanism=self.use_raw_mechanism,
            sign_kwargs=self.sign_kwargs(data),
        )
        if spec.pre_sign_transform is not None:
            data = spec.pre_sign_transform(data)
        try:
            with self.token.lock:
                signature = self._key.sign(data, **spec.sign_kwargs)
        except pkcs11.PKCS11Error as exc:
            raise SigningError(f"{self.description} failed to sign ({type(exc).__name__})") from exc
        if spec.post_sign_transform is not None:
            signature = spec.post_sign_transform(signature)
        return signature

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        """:meth:`sign_raw` in a worker thread; a dry run returns pyHanko's placeholder."""
        if dry_run:
            return bytes(self.estimate_raw_signature_size_bytes())
        return await asyncio.to_thread(self.sign_raw, data, digest_algorithm)


def _login(module: str, label: str, pin: str) -> pkcs11.Session:
    """A session on the token ``label`` of ``module``, logged in as the user."""
    if not Path(module).is_file():
        raise KeySourceError(f"the PKCS#11 module {module} does not exist")
    try:
        slots = pkcs11.lib(module).get_slots(token_present=True)
    except pkcs11.PKCS11Error as exc:
        raise KeySourceError(f"cannot load the PKCS#11 module {module}: {exc}") from exc
    labels = sorted(_token_labels(slots))
    if label not in labels:
        present = ", ".join(map(repr, labels)) or "none"
        raise KeySourceError(f"no token labelled {label!r} in {module} (tokens: {present})")
    try:
        return open_pkcs11_session(module, token_criteria=TokenCriteria(label=label), user_pin=pin)
    except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange) as exc:
        raise KeySourceError(f"the token {label!r} refused the PIN") from exc
    except pkcs11.PinLocked as exc:
        raise KeySourceError(f"the PIN of the token {label!r} is locked") from exc
    except pkcs11.UserAlreadyLoggedIn as exc:
        raise KeySourceError(
            f"the token {label!r} is already logged in by other code in this process"
        ) from exc
    except pkcs11.PKCS11Error as exc:
        raise KeySourceError(f"cannot open the token {label!r} ({type(exc).__name__})") from exc


def _token_labels(slots: list[pkcs11.Slot]) -> set[str]:
    labels = set()
    for slot in slots:
        try:
            labels.add(slot.get_token().label)
        except pkcs11.PKCS11Error:
            continue  # a slot whose token cannot be read is no candidate
    return labels
