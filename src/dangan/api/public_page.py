"""The public verification page the licence QR opens: ``GET /v/{token}`` (and ``/V/``, the
upper-case form the QR carries). Chinese by default with an English toggle; the status as
text and icon; a local check of a received PDF, hashed in the browser and never uploaded.

The page is self-contained: no external resource, no request from the page itself, and a
Content-Security-Policy that admits only its own stylesheet and script, by their SHA-256
(a CSP hash-source). Like the JSON route it is rate-limited per address, never
cached, and logged by its route, not its path (the token names the holder).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cache
from importlib import resources
from typing import Annotated

import jinja2
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from dangan.api.deps import AppContext, context
from dangan.api.ratelimit import public_rate_limit
from dangan.licences.verification import Verification, verify_public

router = APIRouter(tags=["public"])

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class _PageAssets:
    """The page's template, inline stylesheet and script, and the headers that admit them."""

    template: jinja2.Template
    style: Markup
    script: Markup
    headers: dict[str, str]
    """Sent with every page: no caching, no referrer, and a CSP naming the two hashes."""


@router.get(
    "/v/{token}",
    summary="The public verification page a licence's QR code opens",
    response_class=HTMLResponse,
    dependencies=[Depends(public_rate_limit)],
)
@router.get("/V/{token}", include_in_schema=False, dependencies=[Depends(public_rate_limit)])
async def verification_page(
    ctx: Annotated[AppContext, Depends(context)], token: str
) -> HTMLResponse:
    # One indexed read, answered on the event loop like the JSON route. Every outcome,
    # "not recognised" included, is a 200: the page itself says what was found.
    verification = verify_public(ctx.licences, token)
    page = render_page(verification, timezone=ctx.licences.timezone)
    return HTMLResponse(page, headers=_assets().headers)


def render_page(verification: Verification, *, timezone: tzinfo) -> str:
    """The HTML for ``verification``, with ``checked_at`` shown in the licences' timezone."""
    assets = _assets()
    return assets.template.render(
        status=verification.status,
        licence=verification.licence,
        checked_at=verification.checked_at.astimezone(timezone),
        style=assets.style,
        script=assets.script,
    )


@cache
def _assets() -> _PageAssets:
    """Loaded and hashed once per process, on first use (nothing happens at import)."""
    folder = resources.files("dangan.api") / "templates"
    style = (folder / "verify.css").read_text(encoding="utf-8")
    script = (folder / "verify.js").read_text(encoding="utf-8")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("dangan.api", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["zh_date"] = _zh_date
    environment.filters["en_date"] = _en_date
    environment.filters["local_time"] = _local_time
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_hash_source(script)}",
            f"style-src {_hash_source(style)}",
            "img-src data:",  # only the empty favicon, so the browser asks for none
            "form-action 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )
    headers = {
        "Content-Security-Policy": policy,
        # A suspension must show at once; a token is nobody else's business.
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Robots-Tag": "noindex, nofollow",
    }
    return _PageAssets(
        template=environment.get_template("verify.html"),
        style=Markup(style),
        script=Markup(script),
        headers=headers,
    )


def _hash_source(text: str) -> str:
    """A CSP hash-source for an inline element whose content is exactly ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _zh_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _en_date(day: date) -> str:
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def _local_time(moment: datetime) -> str:
    """``2026-05-01 14:03:05 UTC+08:00``."""
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"
