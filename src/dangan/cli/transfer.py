"""``dangan put`` and ``dangan get``: move documents through a running service."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import BinaryIO

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

err = Console(stderr=True, soft_wrap=True)

URL = typer.Option("http://127.0.0.1:8000", envvar="DANGAN_URL", help="Service base URL.")
KEY = typer.Option(..., envvar="DANGAN_API_KEY", help="API key (or DANGAN_API_KEY).")


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    )


class _CountingReader:
    """A file wrapper that advances a progress bar as httpx reads it."""

    def __init__(self, raw: BinaryIO, progress: Progress, task: int) -> None:
        self.raw, self.progress, self.task = raw, progress, task

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.progress.advance(self.task, len(chunk))
        return chunk

    def __getattr__(self, name: str):  # noqa: ANN204 - delegate seek/tell/name
        return getattr(self.raw, name)


def _fail(response: httpx.Response) -> None:
    try:
        problem = response.json()
        message = f"{problem.get('title')}: {problem.get('detail', '')}"
    except ValueError:
        message = response.text[:200]
    err.print(f"[red]error {response.status_code}[/]: {message}")
    raise typer.Exit(1)


def put(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    title: str = typer.Option(None, help="Title (default: the file name)."),
    kind: str = typer.Option("material", help="Kind of document."),
    org: str = typer.Option(..., "--org", help="Organisation the document belongs to."),
    external_id: str = typer.Option(None, help="Your own identifier."),
    case_ref: str = typer.Option(None, help="Case reference."),
    idempotency_key: str = typer.Option(None, help="Makes retries safe."),
    url: str = URL,
    api_key: str = KEY,
) -> None:
    """Upload FILE and print the receipt (JSON) on stdout."""
    meta = {"title": title or file.name, "kind": kind, "organisation": org}
    if external_id:
        meta["external_id"] = external_id
    if case_ref:
        meta["case_ref"] = case_ref
    headers = {"Authorization": f"Bearer {api_key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    with _progress() as progress, file.open("rb") as raw:
        task = progress.add_task(f"uploading {file.name}", total=file.stat().st_size)
        reader = _CountingReader(raw, progress, task)
        response = httpx.post(
            f"{url.rstrip('/')}/v1/documents",
            headers=headers,
            files={"file": (file.name, reader, "application/octet-stream")},
            data={"metadata": json.dumps(meta, ensure_ascii=False)},
            timeout=httpx.Timeout(30.0, read=600.0),
        )
    if response.status_code != 201:
        _fail(response)
    print(json.dumps(response.json(), indent=2, ensure_ascii=False))


def get(
    doc_id: str = typer.Argument(..., help="Document id."),
    output: Path = typer.Option(None, "-o", "--output", help="Where to write (default: <id>)."),
    version: int = typer.Option(None, help="Version (default: current)."),
    url: str = URL,
    api_key: str = KEY,
) -> None:
    """Download a document's content, checking its SHA-256 against the service's ETag."""
    target = output or Path(doc_id)
    params = {"version": version} if version else None
    headers = {"Authorization": f"Bearer {api_key}"}
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    with httpx.stream(
        "GET",
        f"{url.rstrip('/')}/v1/documents/{doc_id}/content",
        params=params,
        headers=headers,
        timeout=httpx.Timeout(30.0, read=600.0),
    ) as response:
        if response.status_code != 200:
            response.read()
            _fail(response)
        total = int(response.headers.get("content-length", 0)) or None
        with _progress() as progress, partial.open("wb") as sink:
            task = progress.add_task(f"downloading {doc_id}", total=total)
            for chunk in response.iter_bytes(1024 * 1024):
                sink.write(chunk)
                digest.update(chunk)
                progress.advance(task, len(chunk))
            sink.flush()
            os.fsync(sink.fileno())
        expected = response.headers.get("etag", "").strip('"')
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        err.print(f"[red]checksum mismatch[/]: got {digest.hexdigest()}, expected {expected}")
        raise typer.Exit(1)
    partial.replace(target)
    err.print(f"[green]saved[/] {target} (sha256 {expected})")
