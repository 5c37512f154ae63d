"""``dangan``: run the service, manage clients, move documents in and out."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from dangan.cli import clients as clients_cli
from dangan.cli import ledger as ledger_cli
from dangan.cli import transfer
from dangan.cli import validate as validate_cli
from dangan.cli import verify_qr as verify_qr_cli
from dangan.config import Settings, load_settings
from dangan.errors import DanganError

app = typer.Typer(
    name="dangan",
    help="Paperless e-documents and electronic archives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(clients_cli.app, name="clients")
app.command("put")(transfer.put)
app.command("get")(transfer.get)
app.command("verify")(ledger_cli.verify)
app.command("verify-ledger")(ledger_cli.verify_ledger_command)
app.command("audit")(ledger_cli.audit)
app.command("validate")(validate_cli.validate)
app.command("verify-qr")(verify_qr_cli.verify_qr)
err = Console(stderr=True, soft_wrap=True)


@app.command()
def init() -> None:
    """Create the data dir and bring the database schema up to date (safe to repeat)."""
    from dangan.bootstrap import initialise

    settings = load_settings()
    initialise(settings)
    err.print(f"[green]ready[/]: data dir {settings.data_dir.resolve()}")
    err.print(f"database: {settings.effective_database_url.split('@')[-1]}")
    err.print(f"storage: {settings.storage}")


@app.command()
def serve(
    host: str = typer.Option(None, help="Address to bind (default DANGAN_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default DANGAN_PORT or 8000)."),
    workers: int = typer.Option(None, min=1, help="Worker processes (default DANGAN_WORKERS or 1)."),
) -> None:
    """Initialise if needed, then serve the HTTP API."""
    import uvicorn

    from dangan.api.observability import configure_logging
    from dangan.bootstrap import initialise

    settings = load_settings()
    configure_logging(level=settings.log_level, as_json=settings.log_json)
    initialise(settings)
    if settings.load_example_licence_types:
        _load_example_licence_types(settings)
    uvicorn.run(
        "dangan.api:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


def _load_example_licence_types(settings: Settings) -> None:
    from dangan.bootstrap import open_backends
    from dangan.licences.examples import load_example_types

    backends = open_backends(settings)
    try:
        for code in load_example_types(settings, backends):
            err.print(f"example licence type {code} registered")
    finally:
        backends.close()


def main() -> None:
    """Entry point: domain errors become a one-line message and exit status 1."""
    try:
        app()
    except DanganError as exc:
        err.print(f"[red]error[/] ({exc.code}): {exc.detail}")
        sys.exit(1)
