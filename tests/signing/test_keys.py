"""Tests for key sources (``dangan.signing.keys``): PKCS#12 files and SoftHSM2 tokens.

Signatures are checked with ``cryptography`` against the certificate, and CMS signatures
made through pyHanko with ``openssl cms -verify``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pkcs11
import pytest
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

import dangan.signing.keys as keys_module
from dangan.errors import DanganError
from dangan.signing.errors import KeySourceError, SigningError
from dangan.signing.keys import (
    KeySource,
    KeySourceConfig,
    LoadedKeySigner,
    Pkcs11KeySource,
    Pkcs12KeySource,
    SigningCredential,
    key_source_from_config,
)
from dangan.signing.pki import DevPki, IssuedCredential
from tests.signing.conftest import PASSPHRASE, needs_openssl, openssl
from tests.support.softhsm import SEAL_TOKEN, SPARE_TOKEN, SealKeys, TokenKey

KEY_TYPES = ["rsa2048", "p256"]
DATA = "已审批：准予登记 approved".encode()
WRONG_PIN = "wrong-pin-97531"


def sign(credential: SigningCredential, data: bytes = DATA) -> bytes:
    """A raw signature through pyHanko's async signer interface."""
    return asyncio.run(credential.signer.async_sign_raw(data, "sha256"))


def verify(certificate: x509.Certificate, signature: bytes, data: bytes = DATA) -> None:
    """Raise InvalidSignature unless ``signature`` over ``data`` verifies with the certificate."""
    public_key = certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


def cms_verifies(
    credential: SigningCredential, root_pem: Path, directory: Path, data: bytes = DATA
) -> str:
    """Sign ``data`` as detached CMS with pyHanko and verify it with ``openssl cms``."""
    content_info = asyncio.run(
        credential.signer.async_sign_general_data(data, "sha256", detached=True)
    )
    (directory / "data.bin").write_bytes(data)
    (directory / "signature.der").write_bytes(content_info.dump())
    result = openssl(
        *("cms", "-verify", "-inform", "DER", "-in", directory / "signature.der", "-binary"),
        *("-content", directory / "data.bin", "-CAfile", root_pem, "-purpose", "any"),
        *("-out", directory / "verified.bin"),
    )
    assert (directory / "verified.bin").read_bytes() == data
    return result.stderr


@pytest.fixture
def sources() -> Iterator[list[KeySource]]:
    """Key sources a test opens; closed afterwards, so no token stays logged in."""
    opened: list[KeySource] = []
    yield opened
    for source in opened:
        source.close()


# --- PKCS#12 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seals(pki: DevPki, now: datetime) -> dict[str, IssuedCredential]:
    """Seal credentials of the development PKI by key type."""
    return {
        key_type: pki.issue_seal_certificate(organisation="档案馆", key_type=key_type, now=now)
        for key_type in KEY_TYPES
    }


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_pkcs12_source_signs_for_its_certificate(
    seals: dict[str, IssuedCredential], pki: DevPki, key_type: str
) -> None:
    seal = seals[key_type]
    source = Pkcs12KeySource(seal.pkcs12_path, passphrase=PASSPHRASE)
    credential = source.credential()
    assert isinstance(source, KeySource)
    assert isinstance(credential.signer, LoadedKeySigner)
    assert credential.certificate == seal.certificate
    assert credential.chain == (pki.issuing, pki.root)
    verify(seal.certificate, sign(credential))
    assert credential.signer.signing_cert.dump() == seal.certificate.public_bytes(
        serialization.Encoding.DER
    )


def test_pkcs12_is_parsed_once_and_the_key_never_again(
    seals: dict[str, IssuedCredential], monkeypatch: pytest.MonkeyPatch
) -> None:
    seal = seals["rsa2048"]
    loads: list[Path] = []
    parses: list[str] = []
    real_load_pkcs12 = keys_module.load_pkcs12
    real_load_der = serialization.load_der_private_key

    def counting_load_pkcs12(path: Path, passphrase: bytes) -> tuple:
        loads.append(path)
        return real_load_pkcs12(path, passphrase)

    def counting_load_der(*args: object, **kwargs: object) -> object:
        parses.append("der")
        return real_load_der(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(keys_module, "load_pkcs12", counting_load_pkcs12)
    monkeypatch.setattr(serialization, "load_der_private_key", counting_load_der)
    source = Pkcs12KeySource(seal.pkcs12_path, passphrase=PASSPHRASE)
    with ThreadPoolExecutor(max_workers=4) as pool:
        credentials = list(pool.map(lambda _: source.credential(), range(8)))
    assert all(c is credentials[0] for c in credentials)
    for index in range(5):
        data = DATA + bytes([index])
        verify(seal.certificate, sign(credentials[0], data), data)
    assert loads == [seal.pkcs12_path]
    assert parses == []

    # The same counter sees pyHanko's SimpleSigner parse its key for every signature.
    key_der = seal.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    simple = SimpleSigner(
        signing_cert=credentials[0].signer.signing_cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore(),
    )
    asyncio.run(simple.async_sign_raw(DATA, "sha256"))
    asyncio.run(simple.async_sign_raw(DATA, "sha256"))
    assert parses == ["der", "der"]


def test_pkcs12_close_forgets_the_key(seals: dict[str, IssuedCredential]) -> None:
    source = Pkcs12KeySource(seals["p256"].pkcs12_path, passphrase=PASSPHRASE)
    first = source.credential()
    source.close()
    second = source.credential()
    assert second is not first
    verify(second.certificate, sign(second))


def test_pkcs12_passphrase_file(seals: dict[str, IssuedCredential], tmp_path: Path) -> None:
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_bytes(PASSPHRASE + b"\n")
    source = Pkcs12KeySource(seals["p256"].pkcs12_path, passphrase_file=passphrase_file)
    verify(seals["p256"].certificate, sign(source.credential()))


def test_pkcs12_wrong_passphrase_is_a_key_source_error(
    seals: dict[str, IssuedCredential], tmp_path: Path
) -> None:
    secret = b"not-the-passphrase-8642"
    source = Pkcs12KeySource(seals["p256"].pkcs12_path, passphrase=secret)
    assert secret.decode() not in repr(source)
    with pytest.raises(KeySourceError) as caught:
        source.credential()
    assert secret.decode() not in str(caught.value)
    assert isinstance(caught.value, DanganError)
    assert caught.value.code == "key_source_unavailable"
    with pytest.raises(KeySourceError, match="cannot read the passphrase file"):
        absent = tmp_path / "absent"
        Pkcs12KeySource(seals["p256"].pkcs12_path, passphrase_file=absent).credential()


@pytest.mark.parametrize(
    "options",
    [{}, {"passphrase": PASSPHRASE, "passphrase_file": Path("p")}],
    ids=["neither", "both"],
)
def test_pkcs12_needs_one_passphrase(options: dict[str, object]) -> None:
    with pytest.raises(KeySourceError, match="exactly one of passphrase and passphrase_file"):
        Pkcs12KeySource(Path("seal.p12"), **options)  # type: ignore[arg-type]


def test_loaded_key_signer_dry_run_and_refusals(seals: dict[str, IssuedCredential]) -> None:
    for key_type in KEY_TYPES:
        signer = LoadedKeySigner.from_credential(seals[key_type])
        placeholder = asyncio.run(signer.async_sign_raw(DATA, "sha256", dry_run=True))
        assert len(placeholder) >= max(len(signer.sign_raw(DATA, "sha256")) for _ in range(20))
        with pytest.raises(SigningError, match="SHA-256 only"):
            signer.sign_raw(DATA, "sha384")
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(KeySourceError, match="does not belong"):
        LoadedKeySigner.create(certificate=seals["p256"].certificate, private_key=stranger)


@needs_openssl
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_pkcs12_cms_signature_verifies_with_openssl(
    seals: dict[str, IssuedCredential], pki: DevPki, key_type: str, tmp_path: Path
) -> None:
    source = Pkcs12KeySource(seals[key_type].pkcs12_path, passphrase=PASSPHRASE)
    output = cms_verifies(source.credential(), pki.directory / "root-ca.pem", tmp_path)
    assert "Verification successful" in output


# --- PKCS#11 on SoftHSM2 -------------------------------------------------------------


def token_source(hsm: SealKeys, key: TokenKey, **options: object) -> Pkcs11KeySource:
    options.setdefault("pin", hsm.user_pin)
    options.setdefault("key_label", key.label)
    return Pkcs11KeySource(
        hsm.module_path,
        token_label=key.token_label,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_pkcs11_source_signs_for_the_certificate_on_the_token(
    softhsm_seal_keys: SealKeys, sources: list[KeySource], key_type: str
) -> None:
    key = softhsm_seal_keys.by_type[key_type]
    source = token_source(softhsm_seal_keys, key)
    sources.append(source)
    credential = source.credential()
    assert credential is source.credential()
    assert credential.certificate == key.credential.certificate
    assert credential.chain == ()
    for index in range(3):
        data = DATA + bytes([index])
        verify(key.credential.certificate, sign(credential, data), data)
    assert str(softhsm_seal_keys.user_pin) not in repr(source)


def test_pkcs11_key_by_id_with_certificate_and_chain_files(
    softhsm_seal_keys: SealKeys, pki: DevPki, sources: list[KeySource], tmp_path: Path
) -> None:
    key = softhsm_seal_keys.by_type["p256"]
    certificate_file = tmp_path / "seal.pem"
    certificate_file.write_bytes(
        key.credential.certificate.public_bytes(serialization.Encoding.PEM)
    )
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm_seal_keys.user_pin + "\n")
    source = Pkcs11KeySource(
        softhsm_seal_keys.module_path,
        token_label=key.token_label,
        key_id=key.key_id,
        pin_file=pin_file,
        certificate_file=certificate_file,
        chain_file=pki.directory / "chain.pem",
    )
    sources.append(source)
    credential = source.credential()
    assert credential.chain == (pki.issuing, pki.root)
    verify(key.credential.certificate, sign(credential))


def test_pkcs11_certificate_of_another_key_is_refused(
    softhsm_seal_keys: SealKeys, sources: list[KeySource], tmp_path: Path
) -> None:
    # The P-256 key with a certificate for a different P-256 key: the self-test catches it.
    other = ec.generate_private_key(ec.SECP256R1())
    key = softhsm_seal_keys.by_type["p256"]
    foreign = (
        x509.CertificateBuilder()
        .subject_name(key.credential.certificate.subject)
        .issuer_name(key.credential.certificate.subject)
        .public_key(other.public_key())
        .serial_number(7)
        .not_valid_before(key.credential.certificate.not_valid_before_utc)
        .not_valid_after(key.credential.certificate.not_valid_after_utc)
        .sign(other, hashes.SHA256())
    )
    certificate_file = tmp_path / "foreign.pem"
    certificate_file.write_bytes(foreign.public_bytes(serialization.Encoding.PEM))
    source = token_source(softhsm_seal_keys, key, certificate_file=certificate_file)
    with pytest.raises(KeySourceError, match="does not belong to its certificate"):
        source.credential()
    # The failed source gave its share of the session back; a good one still works.
    good = token_source(softhsm_seal_keys, key)
    sources.append(good)
    verify(key.credential.certificate, sign(good.credential()))


@needs_openssl
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_pkcs11_cms_signature_verifies_with_openssl(
    softhsm_seal_keys: SealKeys,
    pki: DevPki,
    sources: list[KeySource],
    key_type: str,
    tmp_path: Path,
) -> None:
    key = softhsm_seal_keys.by_type[key_type]
    source = token_source(softhsm_seal_keys, key, chain_file=pki.directory / "chain.pem")
    sources.append(source)
    output = cms_verifies(source.credential(), pki.directory / "root-ca.pem", tmp_path)
    assert "Verification successful" in output


def test_pkcs11_wrong_pin(softhsm_seal_keys: SealKeys, sources: list[KeySource]) -> None:
    spare = softhsm_seal_keys.spare
    source = token_source(softhsm_seal_keys, spare, pin=WRONG_PIN)
    refused = f"the token '{SPARE_TOKEN}' refused the PIN"
    with pytest.raises(KeySourceError, match=refused) as caught:
        source.credential()
    assert WRONG_PIN not in str(caught.value)
    assert softhsm_seal_keys.user_pin not in str(caught.value)
    # The failure locked nothing: the right PIN still opens the token.
    good = token_source(softhsm_seal_keys, spare)
    sources.append(good)
    verify(spare.credential.certificate, sign(good.credential()))


def test_pkcs11_another_pin_on_an_open_token(
    softhsm_seal_keys: SealKeys, sources: list[KeySource]
) -> None:
    key = softhsm_seal_keys.by_type["rsa2048"]
    good = token_source(softhsm_seal_keys, key)
    sources.append(good)
    good.credential()
    # PKCS#11 would answer CKR_USER_ALREADY_LOGGED_IN whatever the PIN; the source says so.
    another = "already open in this process with another PIN"
    with pytest.raises(KeySourceError, match=another) as caught:
        token_source(softhsm_seal_keys, key, pin=WRONG_PIN).credential()
    assert WRONG_PIN not in str(caught.value)


def test_pkcs11_token_logged_in_by_other_code(softhsm_seal_keys: SealKeys) -> None:
    spare = softhsm_seal_keys.spare
    token = pkcs11.lib(str(softhsm_seal_keys.module_path)).get_token(token_label=SPARE_TOKEN)
    session = token.open(user_pin=softhsm_seal_keys.user_pin)
    try:
        with pytest.raises(KeySourceError, match="already logged in by other code"):
            token_source(softhsm_seal_keys, spare).credential()
    finally:
        session.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key_label": "no-such-key"}, "label 'no-such-key' on the token '.*': no such key"),
        ({"key_label": None, "key_id": b"\x7f"}, "ID 7f on the token '.*': no such key"),
        ({"token_label": "no-such-token"}, "no token labelled 'no-such-token'.*dangan-seals"),
    ],
    ids=["key-label", "key-id", "token-label"],
)
def test_pkcs11_missing_key_or_token(
    softhsm_seal_keys: SealKeys, options: dict[str, object], message: str
) -> None:
    key = softhsm_seal_keys.by_type["p256"]
    token_label = options.pop("token_label", key.token_label)
    source = Pkcs11KeySource(
        softhsm_seal_keys.module_path,
        token_label=token_label,  # type: ignore[arg-type]
        pin=softhsm_seal_keys.user_pin,
        **{"key_label": key.label, **options},  # type: ignore[arg-type]
    )
    with pytest.raises(KeySourceError, match=message) as caught:
        source.credential()
    assert softhsm_seal_keys.user_pin not in str(caught.value)


def test_pkcs11_missing_or_broken_module(softhsm_seal_keys: SealKeys, tmp_path: Path) -> None:
    key = softhsm_seal_keys.by_type["p256"]
    not_a_library = tmp_path / "libnothing.so"
    not_a_library.write_text("not a shared object")
    cases = [
        (tmp_path / "absent.so", "does not exist"),
        (not_a_library, "cannot load the PKCS#11 module"),
    ]
    for module_path, message in cases:
        source = Pkcs11KeySource(
            module_path, token_label=key.token_label, key_label=key.label, pin=WRONG_PIN
        )
        with pytest.raises(KeySourceError, match=message) as caught:
            source.credential()
        assert WRONG_PIN not in str(caught.value)


def test_pkcs11_concurrent_signing_on_one_session(
    softhsm_seal_keys: SealKeys, sources: list[KeySource]
) -> None:
    by_type = softhsm_seal_keys.by_type
    opened = {kt: token_source(softhsm_seal_keys, by_type[kt]) for kt in KEY_TYPES}
    sources.extend(opened.values())
    start = threading.Barrier(8)

    def work(worker: int) -> list[tuple[str, bytes, bytes]]:
        key_type = KEY_TYPES[worker % 2]
        credential = opened[key_type].credential()  # first calls race to open the token
        start.wait()
        done = []
        for index in range(12):
            data = DATA + bytes([worker, index])
            if index % 2:
                signature = credential.signer.sign_raw(data, "sha256")  # type: ignore[attr-defined]
            else:
                signature = sign(credential, data)
            done.append((key_type, data, signature))
        return done

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [item for batch in pool.map(work, range(8)) for item in batch]
    assert len(results) == 96
    for key_type, data, signature in results:
        verify(by_type[key_type].credential.certificate, signature, data)


def test_pkcs11_sources_share_a_session_until_the_last_closes(
    softhsm_seal_keys: SealKeys,
) -> None:
    rsa_key, ec_key = (softhsm_seal_keys.by_type[kt] for kt in KEY_TYPES)
    first = token_source(softhsm_seal_keys, rsa_key)
    second = token_source(softhsm_seal_keys, ec_key)
    try:
        one, two = first.credential(), second.credential()
        assert one.signer.pkcs11_session is two.signer.pkcs11_session  # type: ignore[attr-defined]
        first.close()
        verify(ec_key.credential.certificate, sign(two))
        first.close()  # closing twice is harmless
        second.close()
        again = first.credential()
        verify(rsa_key.credential.certificate, sign(again))
    finally:
        first.close()
        second.close()


def test_pkcs11_source_needs_a_key_and_one_pin() -> None:
    with pytest.raises(KeySourceError, match="key_label or key_id"):
        Pkcs11KeySource(Path("m.so"), token_label="t", pin="1234")
    with pytest.raises(KeySourceError, match="exactly one of pin and pin_file"):
        Pkcs11KeySource(Path("m.so"), token_label="t", key_label="k")


# --- configuration -------------------------------------------------------------------


def test_pkcs12_source_from_config(seals: dict[str, IssuedCredential]) -> None:
    config = KeySourceConfig(kind="pkcs12", path=seals["p256"].pkcs12_path, passphrase=PASSPHRASE)
    assert PASSPHRASE.decode() not in repr(config)
    source = key_source_from_config(config)
    assert isinstance(source, Pkcs12KeySource)
    verify(seals["p256"].certificate, sign(source.credential()))


def test_pkcs11_source_from_config(softhsm_seal_keys: SealKeys, sources: list[KeySource]) -> None:
    key = softhsm_seal_keys.by_type["rsa2048"]
    config = KeySourceConfig(
        kind="pkcs11",
        module_path=softhsm_seal_keys.module_path,
        token_label=key.token_label,
        key_label=key.label,
        pin=softhsm_seal_keys.user_pin,
    )
    assert softhsm_seal_keys.user_pin not in repr(config)
    pkcs11_source = key_source_from_config(config)
    sources.append(pkcs11_source)
    assert isinstance(pkcs11_source, Pkcs11KeySource)
    assert pkcs11_source.token_label == SEAL_TOKEN
    verify(key.credential.certificate, sign(pkcs11_source.credential()))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "pkcs13"}, "unknown key source kind 'pkcs13'"),
        ({"kind": "pkcs12", "passphrase": b"x"}, "pkcs12 key source needs path"),
        ({"kind": "pkcs12", "path": Path("a.p12"), "pin": "1"}, "does not take pin"),
        ({"kind": "pkcs11", "key_label": "k", "pin": "1"}, "needs module_path and token_label"),
        ({"kind": "pkcs11", "module_path": Path("m"), "path": Path("a")}, "does not take path"),
    ],
    ids=["unknown-kind", "pkcs12-no-path", "pkcs12-pin", "pkcs11-no-module", "pkcs11-path"],
)
def test_config_is_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(KeySourceError, match=message):
        KeySourceConfig(**options)  # type: ignore[arg-type]
