"""``dangan verify-qr``: a licence QR code checked against a saved trust list, offline.

Exit status: 0 recognised, 1 not recognised, 2 when the check cannot be made (a
malformed trust list, an unreadable image, no QR code in it, no zbar library).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import typer

from dangan.licences.token import (
    QrClaims,
    TokenNotRecognised,
    qr_url,
    token_from_payload,
    verify_token,
)
from dangan.licences.trust_list import MalformedTrustList, TrustedKey, TrustList

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def verify_qr(
    source: str = typer.Argument(..., metavar="PAYLOAD|IMAGE",
                                 help="A PNG or JPEG of the QR code, or its payload: the URL "
                                      "or the bare token."),
    trust_list: Path = typer.Option(..., "--trust-list", exists=True, dir_okay=False,
                                    readable=True, metavar="FILE",
                                    help="The trust list saved from "
                                         "/.well-known/dangan/trust-list.json."),
    at: str | None = typer.Option(None, "--at", metavar="TIME",
                                  help="Check as at this RFC 3339 time (default: now)."),
) -> None:
    """Verify the signed token of a licence QR code with no network.

    Exit 0 when recognised, 1 when not recognised, 2 when the check cannot be made.
    """
    trust = _read_trust_list(trust_list)
    now = _moment(at)
    payload = _image_payload(Path(source)) if _is_image(source) else source
    try:
        token = token_from_payload(payload)
        claims, key = verify_token(token, trust, now=now)
    except TokenNotRecognised:
        # No reason is given: whatever failed, telling it would help a forger.
        typer.echo("NOT RECOGNISED")
        raise typer.Exit(1) from None
    _print_recognised(claims, key, now=now, online=_online_url(trust, token))


def _read_trust_list(path: Path) -> TrustList:
    try:
        content = path.read_bytes()
    except OSError as exc:
        _cannot_check(f"cannot read the trust list {path}: {exc.strerror}")
    try:
        return TrustList.from_json(json.loads(content))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _cannot_check(f"the trust list {path} is not a JSON file ({exc})")
    except MalformedTrustList as exc:
        _cannot_check(f"the trust list {path} is malformed: {exc.detail}")


def _moment(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise typer.BadParameter("must be an RFC 3339 time", param_hint="--at") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter("must carry a time zone, e.g. Z", param_hint="--at")
    return moment.astimezone(UTC)


def _is_image(source: str) -> bool:
    """Whether SOURCE names an image file rather than a URL or a token."""
    if "://" in source:
        return False
    if source.lower().endswith(_IMAGE_SUFFIXES):
        return True
    try:
        return Path(source).is_file()
    except OSError:  # e.g. a token longer than a file name may be
        return False


def _image_payload(path: Path) -> str:
    """The text of the one QR code in the image at ``path`` (decoded with zbar)."""
    try:
        from PIL import Image, UnidentifiedImageError
        from pyzbar.pyzbar import ZBarSymbol, decode
    except ImportError as exc:  # pyzbar raises ImportError when libzbar is missing too
        _cannot_check(
            f"cannot read QR images: {exc}. Install pyzbar and the zbar library "
            "(Debian: apt install libzbar0), or pass the payload instead of the image"
        )
    try:
        with Image.open(path) as image:
            symbols = decode(image, symbols=[ZBarSymbol.QRCODE])
    except (OSError, UnidentifiedImageError) as exc:
        _cannot_check(f"cannot read the image {path}: {exc}")
    if len(symbols) != 1:
        _cannot_check(f"{path} holds {len(symbols)} QR codes; expected one")
    return symbols[0].data.decode("utf-8", errors="replace")


def _online_url(trust: TrustList, token: str) -> str:
    try:
        return qr_url(trust.issuer, token)
    except ValueError:
        return trust.issuer


def _print_recognised(claims: QrClaims, key: TrustedKey, *, now: datetime, online: str) -> None:
    expires = "no end date"
    if claims.expires_at is not None:
        expires = _time(claims.expires_at)
        if claims.expires_at <= now:
            expires += " (EXPIRED)"
    lines = [
        "RECOGNISED",
        f"licence:      {claims.licence}",
        f"type code:    {claims.type_code}",
        f"issuer:       {claims.issuer}",
        f"holder:       {claims.holder}",
        f"issued:       {_time(claims.issued_at)}",
        f"expires:      {expires}",
        f"PDF SHA-256:  {claims.pdf_sha256.hex()} (of its first revision: the bytes up to the first %%EOF)",
        f"key id:       {key.kid.hex()} ({key.status})",
        "The live status (suspended, revoked) can only be checked online at",
        f"  {online}",
    ]
    typer.echo("\n".join(lines))


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _cannot_check(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
