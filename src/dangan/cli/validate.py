"""``dangan validate``: the signatures of a local PDF, validated with no server."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from dangan.clock import system_clock
from dangan.config import load_settings
from dangan.errors import DanganError
from dangan.signing.trust import local_trust, read_trust_roots
from dangan.signing.validation import DocumentReport, Indication, SignatureReport, validate_pdf

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

_STYLE = {
    Indication.TOTAL_PASSED: "green",
    Indication.TOTAL_FAILED: "red",
    Indication.INDETERMINATE: "yellow",
}


def _readable_pems(paths: list[Path]) -> list[Path]:
    """Typer callback: every ``--trust`` file must hold PEM certificates (else exit 2)."""
    for path in paths:
        try:
            read_trust_roots(path)
        except DanganError as exc:
            raise typer.BadParameter(exc.detail, param_hint="--trust") from exc
    return paths


def validate(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="The PDF to validate."),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print the report as JSON, as POST /v1/validate returns it."),
    trust: list[Path] = typer.Option([], "--trust", exists=True, dir_okay=False, readable=True,
                                     metavar="PEM", callback=_readable_pems,
                                     help="PEM file of trusted root certificates (repeatable)."),
) -> None:
    """Validate the signatures of FILE with no server; exit 0 only for TOTAL_PASSED.

    Trusted: the data dir's development root (if `dangan init` made one) and --trust files.

    The report follows ETSI EN 319 102-1; nothing is fetched from the network.
    """
    settings = load_settings()
    anchors = local_trust(settings, trust)
    if not anchors.roots:
        err.print(f"[yellow]no trust roots[/]: none in {settings.effective_pki_dir} and no "
                  "--trust; no signature can pass")
    with err.status("validating"):
        report = asyncio.run(
            validate_pdf(
                file.read_bytes(),
                trust_roots=anchors.roots,
                crls=anchors.crls,
                now=system_clock(),
                max_bytes=settings.max_validate_bytes,
            )
        )
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_summary(report)
    raise typer.Exit(0 if report.passed else 1)


def _print_summary(report: DocumentReport) -> None:
    """The bottom line, one table row per signature (changes after it as pyHanko's
    modification level), then each signature's detail, full subject and changes."""
    verdict = str(report.indication)
    if report.sub_indication is not None:
        verdict += f" / {report.sub_indication}"
    out.print(f"[bold {_STYLE[report.indication]}]{verdict}[/]: {report.detail}")
    out.print(f"sha256 {report.document_sha256}, validated at {_time(report.validation_time)}")
    if not report.signatures:
        return
    # Narrow enough for 80 columns: long values wrap inside their cell, none is dropped.
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("#", no_wrap=True)
    table.add_column("signer", min_width=6, overflow="fold")
    table.add_column("indication", no_wrap=True)
    table.add_column("sub-indication", min_width=14, overflow="fold")
    table.add_column("timestamp", min_width=10)
    table.add_column("coverage", min_width=8)
    table.add_column("changes after", min_width=12)
    for number, signature in enumerate(report.signatures, 1):
        table.add_row(str(number), *_row(signature))
    out.print(table)
    for number, signature in enumerate(report.signatures, 1):
        out.print(f"#{number} {signature.field_name} ({signature.kind}): {signature.detail}")
        out.print(f"   signer: {signature.signer_subject or '–'}", highlight=False)
        if signature.trust_anchor:
            out.print(f"   trust anchor: {signature.trust_anchor}", highlight=False)
        if signature.changes:
            out.print(f"   changes after it: {'; '.join(signature.changes)}", highlight=False)


def _row(signature: SignatureReport) -> tuple[str, ...]:
    stamp = "–"
    if signature.timestamp is not None:
        trusted = "" if signature.timestamp.trusted else " [red](not trusted)[/]"
        stamp = _time(signature.timestamp.gen_time).replace(" ", "\n") + trusted
    return (
        _common_name(signature.signer_subject) or "–",
        f"[{_STYLE[signature.indication]}]{signature.indication}[/]",
        str(signature.sub_indication or "–"),
        stamp,
        signature.coverage or "–",
        signature.modification_level or "–",
    )


def _common_name(subject: str | None) -> str | None:
    """The CN of an RFC 4514 subject string (the whole string when it has none)."""
    if subject is None:
        return None
    for attribute in re.split(r"(?<!\\),", subject):
        if attribute.startswith("CN="):
            return attribute[3:].replace("\\", "")
    return subject


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
