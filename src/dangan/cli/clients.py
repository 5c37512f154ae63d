"""``dangan clients``: API keys for approval systems."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from dangan.bootstrap import initialise, open_backends
from dangan.clients import KNOWN_SCOPES, create_client, list_clients, revoke_client
from dangan.config import load_settings

app = typer.Typer(help="Create, list and revoke API clients.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.command("create")
def create(
    name: str = typer.Option(..., help="Name of the calling system."),
    org: str = typer.Option(..., help="Organisation it acts for."),
    scopes: str = typer.Option(
        ..., help=f"Comma-separated scopes, of: {', '.join(sorted(KNOWN_SCOPES))}."
    ),
) -> None:
    """Create a client; its API key is printed once, alone on the last line of stdout."""
    settings = load_settings()
    initialise(settings)
    backends = open_backends(settings)
    try:
        new = create_client(
            backends.engine,
            name=name,
            organisation=org,
            scopes=scopes.split(","),
            now=backends.clock(),
        )
    finally:
        backends.close()
    err.print(f"client {new.client.id} ({name}, {org}): {', '.join(sorted(new.client.scopes))}")
    err.print("[yellow]Store this key now; it cannot be shown again.[/]")
    print(new.api_key, flush=True)


@app.command("list")
def list_() -> None:
    """List clients (keys are never shown, only their prefix)."""
    backends = open_backends(load_settings())
    try:
        with backends.engine.connect() as conn:
            rows = list_clients(conn)
    finally:
        backends.close()
    table = Table("id", "name", "organisation", "scopes", "key prefix", "revoked")
    for client, prefix, revoked in rows:
        table.add_row(
            client.id,
            client.name,
            client.organisation,
            " ".join(sorted(client.scopes)),
            prefix + "…",
            revoked.isoformat() if revoked else "",
        )
    out.print(table)


@app.command("revoke")
def revoke(client_id: str) -> None:
    """Revoke a client's key for good."""
    backends = open_backends(load_settings())
    try:
        revoke_client(backends.engine, client_id, now=backends.clock())
    finally:
        backends.close()
    err.print(f"revoked {client_id}")
