"""Settings, read from ``DANGAN_*`` environment variables by :func:`load_settings`.

There is no module-level settings object: the CLI builds one and passes it down
(``create_app(settings)``), and tests build their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MEDIA_TYPES = (
    "application/pdf",
    "application/ofd",
    "image/png",
    "image/jpeg",
    "image/tiff",
    "application/xml",
    "application/json",
)


class Settings(BaseSettings):
    """Every setting of the service; each maps to ``DANGAN_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="DANGAN_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("./data"))
    """Where the embedded backends keep their files (database, objects, keys)."""
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite:///<data_dir>/dangan.db``. PostgreSQL:
    ``postgresql+psycopg://user@host:5432/db``."""
    storage: Literal["fs", "s3"] = "fs"
    """Object store backend."""
    s3_endpoint: str | None = None
    """S3 endpoint URL, e.g. ``http://127.0.0.1:8333`` (scheme decides TLS)."""
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "dangan"
    """Bucket for objects; created with Object Lock enabled when missing."""
    s3_region: str = "us-east-1"
    ledger_origin: str = "dangan.localhost/ledger"
    """Origin line of the ledger's checkpoints (C2SP tlog-checkpoint) and name of its key;
    set a unique, stable name per deployment, e.g. ``archive.example.gov.cn/ledger``."""
    ledger_key_file: Path | None = None
    """Ed25519 checkpoint signing key (PKCS#8 PEM); default ``<data_dir>/keys/ledger.key``,
    created by ``dangan init`` when missing."""
    public_url: str | None = None
    """Base URL others reach this service at (CRL distribution points in the development
    PKI's certificates); default ``http://<host>:<port>``."""
    pki_dir: Path | None = None
    """Development PKI (made by ``dangan init``); default ``<data_dir>/pki``. Every
    certificate in it says DEVELOPMENT — NOT TRUSTED."""
    pki_passphrase_file: Path | None = None
    """File holding the passphrase of the PKI's key files and PKCS#12 bundles; default
    ``<data_dir>/keys/pki-passphrase``, made (random, mode 0600) by ``dangan init``."""
    tsa_policy_oid: str = "2.25.295142093318410357145786412932547420417"
    """Policy OID of the built-in RFC 3161 time-stamp authority (a UUID-based OID under
    2.25 (ITU-T X.667) for development; set your TSA policy in production)."""
    tsa_accuracy_ms: int = Field(default=1000, ge=1)
    """Accuracy the built-in TSA states in its tokens (RFC 3161 §2.4.2)."""
    tsa_url: str | None = None
    """An external RFC 3161 time-stamp authority for dangan's own signatures and seals
    (e.g. a qualified TSA); default: the built-in one, called in process."""
    key_dir: Path | None = None
    """Directory that PKCS#12 files, passphrase and PIN files named when registering a
    seal must lie in; default ``<data_dir>/keys``."""
    pkcs11_modules: Annotated[tuple[str, ...], NoDecode] = ()
    """PKCS#11 modules (shared libraries) seals may use, comma-separated; none by default,
    e.g. ``/usr/lib/softhsm/libsofthsm2.so``."""
    max_sign_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    """Largest PDF the service seals or signs (read into memory to be signed)."""
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    """Largest accepted upload in bytes (413 beyond it)."""
    max_validate_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    """Largest PDF accepted for signature validation in bytes (``POST /v1/validate``:
    413 beyond it; a stored version beyond it gets a ``too_large`` report)."""
    validation_workers: int = Field(default=1, ge=1)
    """Processes per API worker that validate PDF signatures (each one PDF at a time)."""
    licence_timezone: str = "Asia/Shanghai"
    """Time zone of licence dates: a licence is valid through the end of its last day
    there (IANA name)."""
    public_rate_limit: int = Field(default=60, ge=1)
    """Requests per minute each client address may make to the public verification
    page and API (per worker process; bursts up to the same number)."""
    verified_token_cache: int = Field(default=10_000, ge=0)
    """QR tokens each worker remembers as verified (their signature is checked once);
    0 checks every scan afresh. The licence's status is read on every scan either way."""
    load_example_licence_types: bool = True
    """Whether ``dangan serve`` registers the two example licence types (and a
    development seal for their issuer) when they are missing."""
    allowed_media_types: Annotated[tuple[str, ...], NoDecode] = DEFAULT_MEDIA_TYPES
    """Media types accepted on upload, sniffed from content (comma-separated in env)."""
    host: str = "127.0.0.1"
    """Address ``dangan serve`` binds to."""
    port: int = 8000
    """Port ``dangan serve`` listens on."""
    workers: int = Field(default=1, ge=1)
    """Worker processes of ``dangan serve``; one per core (uploads are CPU-bound in Python,
    one core per process)."""
    keepalive_requests: int = Field(default=32, ge=1)
    """Requests one kept-alive connection carries before the service asks the client to
    reconnect, so that busy clients spread over the worker processes."""
    log_level: str = "INFO"
    log_json: bool = True
    """Write logs as one JSON object per line."""

    @field_validator("allowed_media_types", "pkcs11_modules", mode="before")
    @classmethod
    def _split_media_types(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @property
    def effective_ledger_key_file(self) -> Path:
        """Where the checkpoint signing key lives."""
        return self.ledger_key_file or self.data_dir / "keys" / "ledger.key"

    @property
    def effective_public_url(self) -> str:
        """The service's base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def effective_key_dir(self) -> Path:
        """Where key files named by seal registrations must lie."""
        return self.key_dir or self.data_dir / "keys"

    @property
    def effective_pki_dir(self) -> Path:
        """Where the development PKI lives."""
        return self.pki_dir or self.data_dir / "pki"

    @property
    def qr_key_dir(self) -> Path:
        """Where the licence QR-signing keys and their certificates live."""
        return self.effective_pki_dir / "qr-signing"

    @property
    def holder_index_key_file(self) -> Path:
        """The secret of the licence holder index (keyed hashes of ID numbers), made by
        ``dangan init``; keep it with the ledger key: searches need the same one forever."""
        return self.data_dir / "keys" / "holder-index.key"

    @property
    def effective_pki_passphrase_file(self) -> Path:
        """Where the development PKI's passphrase lives."""
        return self.pki_passphrase_file or self.data_dir / "keys" / "pki-passphrase"

    @property
    def effective_database_url(self) -> str:
        """The database URL in use, defaulting to SQLite inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'dangan.db').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit ``overrides`` winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
