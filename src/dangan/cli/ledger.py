"""``dangan verify``, ``dangan verify-ledger`` and ``dangan audit``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import func, select

from dangan.bootstrap import open_backends
from dangan.config import load_settings
from dangan.db.tables import ledger_entries
from dangan.errors import DanganError
from dangan.ledger.audit import audit as run_audit
from dangan.ledger.audit import recorded_objects
from dangan.ledger.note import NoteVerifier
from dangan.ledger.verify import verify_ledger, verify_receipt

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def verify(
    receipt: Path = typer.Argument(..., exists=True, dir_okay=False, help="Receipt JSON."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False,
                             help="Checkpoint verifier key (from GET /v1/ledger/key)."),
    file: Path = typer.Option(None, "--file", exists=True, dir_okay=False,
                              help="Also check that this file is the recorded content."),
) -> None:
    """Check a receipt with no server: signature, leaf hash, inclusion proof, content."""
    import hashlib

    try:
        data = json.loads(receipt.read_text(encoding="utf-8"))
    except ValueError as exc:
        err.print(f"[red]not JSON[/]: {exc}")
        raise typer.Exit(1) from exc
    result = verify_receipt(data, key.read_text(encoding="utf-8"))
    if file is not None:
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != result.sha256:
            err.print(f"[red]FAILED[/]: {file} has SHA-256 {digest.hexdigest()}, "
                      f"the receipt records {result.sha256}")
            raise typer.Exit(1)
    out.print(
        f"[green]OK[/]: document {result.document_id} (sha256 {result.sha256}) is entry "
        f"{result.seq} of the {result.tree_size}-entry tree signed by {result.origin}"
    )


def verify_ledger_command() -> None:
    """Recompute the whole hash chain, Merkle tree and every stored checkpoint."""
    settings = load_settings()
    backends = open_backends(settings)
    verifier = NoteVerifier.parse(backends.ledger.verifier_key())
    try:
        with backends.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(ledger_entries)).scalar() or 0
            with _progress() as progress:
                task = progress.add_task("verifying ledger", total=total)
                size = verify_ledger(
                    conn, verifier=verifier, progress=lambda n: progress.advance(task, n)
                )
    except DanganError as exc:
        err.print(f"[red]FAILED[/]: {exc.detail}")
        raise typer.Exit(1) from exc
    finally:
        backends.close()
    out.print(f"[green]OK[/]: {size} entries, chain, tree and checkpoints verify")


def audit(
    sample: int = typer.Option(None, min=1, help="Re-hash only this many random objects."),
    seed: int = typer.Option(None, help="Seed for --sample (repeatable audits)."),
) -> None:
    """Re-hash stored objects and compare with what the ledger recorded."""
    settings = load_settings()
    backends = open_backends(settings)
    try:
        with backends.engine.connect() as conn:
            recorded = recorded_objects(conn)
            total = len(recorded) if sample is None else min(sample, len(recorded))
            with _progress() as progress:
                task = progress.add_task("auditing objects", total=total)
                report = run_audit(
                    conn,
                    backends.store,
                    sample=sample,
                    rng=random.Random(seed) if seed is not None else None,
                    progress=lambda n: progress.advance(task, n),
                    recorded=recorded,
                )
    finally:
        backends.close()
    for finding in report.findings:
        out.print(f"[red]{finding.kind}[/] {finding.sha256}: {finding.detail}")
    scope = f"{report.checked} of {report.recorded} (sample)" if report.sampled else str(report.checked)
    if not report.ok:
        err.print(f"[red]FAILED[/]: {len(report.findings)} problem(s); {scope} objects re-hashed")
        raise typer.Exit(1)
    out.print(f"[green]OK[/]: {scope} objects re-hashed, all as recorded")
