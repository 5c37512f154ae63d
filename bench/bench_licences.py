"""Licences through the HTTP API: public verification under load and issuance, 2 cores.

A ``dangan serve`` subprocess on the embedded defaults (SQLite, local objects, the
development PKI, the example licence types it registers at start) with 2 workers.

(a) ``GET /v1/public/licences/verify?token=…`` for licences issued first, from 16
    concurrent keep-alive clients for a fixed time. Baseline, in the same run: a trivial
    FastAPI app (``bench/_trivial_app.py``) under uvicorn with the same workers and
    options, driven by the same client; the two take turns in slices. Target: at least
    0.5x the trivial endpoint's requests per second.
(b) ``POST /v1/licences`` one at a time (render, QR, seal at B-T, archive, record).
    Target: median at most 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._http import build_request, run_for, run_load
from bench.bench_sealing import json_request, seal_engine
from tests.support.server import (
    dangan_cli,
    free_port,
    running_server,
    wait_until_ready,
)

with warnings.catch_warnings():  # starlette's TestClient warns about httpx on import
    warnings.simplefilter("ignore")
    from tests.licences.conftest import ISSUER, food_licence

RATIO_TARGET = 0.5
ISSUE_TARGET_S = 0.100
#: Requests a minute per client address on the public routes: every request of the
#: benchmark comes from 127.0.0.1, and none must be answered 429.
RATE_LIMIT = 1_000_000_000
TRIVIAL_APP = Path(__file__).resolve().parent / "_trivial_app.py"


class WrongAnswers(Exception):
    """The service answered something other than what every request must get."""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run the load client on uvloop when it is installed (uvicorn's own loop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@contextmanager
def running_trivial_app(port: int, workers: int, log: Path) -> Iterator[subprocess.Popen]:
    """Start the baseline app and wait until ``/ping`` answers (at most 60 s)."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, str(TRIVIAL_APP), "--port", str(port), "--workers", str(workers)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/ping", log, what="trivial app")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def issue(port: int, key: str, count: int, *, concurrency: int) -> tuple[list[float], list[dict]]:
    """Issue ``count`` food business licences; (latencies in order, answers)."""
    requests = [json_request("/v1/licences", port, key, food_licence()) for _ in range(count)]
    bodies: dict[int, bytes] = {}
    _s, latencies, statuses = run_async(
        run_load("127.0.0.1", port, requests, concurrency=concurrency, bodies=bodies)
    )
    bad = [i for i, s in enumerate(statuses) if s != 201]
    if bad:
        raise WrongAnswers(f"{len(bad)} issuances failed, e.g. status {statuses[bad[0]]}: "
                           f"{bodies[bad[0]][:300]!r}")
    return latencies, [json.loads(bodies[i]) for i in range(count)]


def is_valid(status: int, body: bytes) -> bool:
    """A verification answer is right when it says "valid" (compact JSON on both sides)."""
    return status == 200 and b'"status":"valid"' in body


class Side:
    """One endpoint under load: its requests and what the slices measured."""

    def __init__(self, name: str, port: int, requests: list[bytes]) -> None:
        self.name, self.port, self.requests = name, port, requests
        self.count, self.seconds, self.client_cpu = 0, 0.0, 0.0
        self.latencies: list[float] = []
        self.refused: list[tuple[int, bytes]] = []

    def drive(self, clients: int, seconds: float, *, keep: bool = True) -> None:
        cpu = time.process_time()
        took, latencies, refused = run_async(run_for(
            "127.0.0.1", self.port, self.requests, concurrency=clients, seconds=seconds,
            accept=is_valid,
        ))
        if keep:
            self.client_cpu += time.process_time() - cpu
            self.count += len(latencies)
            self.seconds += took
            self.latencies += latencies
            self.refused += refused

    def line(self) -> str:
        lat = sorted(self.latencies)
        return (f"  {self.name + ':':58} {self.count / self.seconds:7.0f} req/s  "
                f"p50 {statistics.median(lat) * 1e3:5.1f} ms  "
                f"p99 {lat[int(len(lat) * 0.99) - 1] * 1e3:5.1f} ms  "
                f"(client {self.client_cpu / self.seconds:4.0%} of a core)")


def bench_verification(sides: list[Side], args: argparse.Namespace) -> bool:
    """The sides take turns in slices, so that drift (other load) hits both."""
    for side in sides:
        side.drive(args.clients, 2.0, keep=False)  # warm-up: connections, caches
    for _ in range(args.slices):
        for side in sides:
            side.drive(args.clients, args.seconds / args.slices)
    for side in sides:
        if side.refused:
            status, body = side.refused[0]
            raise WrongAnswers(f"{side.name}: {len(side.refused)} answers not 200 valid, "
                               f"e.g. {status}: {body[:300]!r}")
    baseline, dangan = sides
    print(f"(a) verification: {args.clients} keep-alive clients, {args.workers} worker(s), "
          f"{args.slices} alternating slices of {args.seconds / args.slices:.0f} s a side; "
          f"public rate limit raised to {RATE_LIMIT}/min so that it never answers 429; "
          f"verified-token cache {args.token_cache or 'off: every scan checks the signature'}")
    cpu = (baseline.client_cpu + dangan.client_cpu) / (baseline.count + dangan.count)
    print(f"  client: bench/_http.py on {'uvloop' if _has_uvloop() else 'asyncio'} in this "
          f"process, {cpu * 1e6:.0f} us CPU a request; every answer 200 with status \"valid\"")
    print(baseline.line())
    print(dangan.line())
    ratio = (dangan.count / dangan.seconds) / (baseline.count / baseline.seconds)
    print(f"  ratio {ratio:.2f}x (target >= {RATIO_TARGET:.2f}x): {verdict(ratio >= RATIO_TARGET)}")
    return ratio >= RATIO_TARGET


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def bench_issuance(port: int, key: str, args: argparse.Namespace) -> tuple[float, dict]:
    """Sequential issuance over one keep-alive connection; (median, the last answer)."""
    latencies, answers = issue(port, key, args.issuances + 5, concurrency=1)
    times = latencies[5:]  # the first five warm up
    median = statistics.median(times)
    print(f"(b) issuance: POST /v1/licences (SPJY, B-T), {args.issuances} one at a time "
          f"after 5 warm-ups")
    print(f"  {'HTTP API:':58} median {median * 1e3:6.1f} ms  "
          f"p90 {statistics.quantiles(times, n=10)[-1] * 1e3:6.1f} ms")
    return median, answers[-1]


def licence_rendering(answer: dict) -> Any:
    """What ``LicenceService`` renders for the issued licence ``answer``, before its QR."""
    from datetime import date

    from dangan.licences.holders import ID_TYPE_LABELS
    from dangan.licences.render import LicenceField, LicenceRendering
    from dangan.licences.types import example_definitions, parse_definition

    definition = next(d for d in example_definitions() if d["code"] == "SPJY")
    parsed = parse_definition(definition)
    body = food_licence()
    label = definition.get("holder", {}).get("label", {"zh": "持证者", "en": "Holder"})
    id_label = ID_TYPE_LABELS[body["holder"]["id_type"]]
    return LicenceRendering(
        title_zh=parsed["name_zh"], title_en=parsed["name_en"], identifier=answer["identifier"],
        holder_label_zh=label["zh"], holder_label_en=label["en"],
        holder_name=body["holder"]["name"], holder_id_label_zh=id_label[0],
        holder_id_label_en=id_label[1], holder_id=body["holder"]["id_number"],
        fields=tuple(LicenceField(f.zh, f.en, str(body["fields"][f.key]))
                     for f in parsed["fields"] if body["fields"].get(f.key)),
        issuer_name=ISSUER, valid_from=date.fromisoformat(answer["valid_from"]),
        valid_until=date.fromisoformat(answer["valid_until"]) if answer["valid_until"] else None,
        issued_on=date.fromisoformat(answer["valid_from"]),
    )


def in_process_stages(answer: dict, root: Path, count: int = 20) -> dict[str, float]:
    """Medians of issuance's stages, each timed alone in this process on the same licence:
    render, QR, QR overlay, and the seal (``sign_pdf`` at B-T with a P-256 development key,
    the example types' seal, and the TSA in process; what ``seal_pdf`` does before storing)."""
    from datetime import UTC, datetime
    from functools import partial

    from dangan.licences.qr_overlay import draw_qr
    from dangan.licences.render import make_qr, render_licence_pdf
    from dangan.licences.service import A4_HEIGHT_MM
    from dangan.licences.token import qr_url
    from dangan.signing.pades import sign_pdf

    rendering = licence_rendering(answer)
    base, _, token = answer["verification_url"].rpartition("/v/")
    url = qr_url(base, token)
    rendered = render_licence_pdf(rendering)  # warm-up: the font is parsed once
    qr = make_qr(url)
    qr_changes = partial(draw_qr, qr=qr, box_mm=rendered.qr_box_mm, page_height_mm=A4_HEIGHT_MM)
    signer, stamper, image = seal_engine(root, key_type="p256")
    k = 72 / 25.4  # points a millimetre
    x, y, width, height = rendered.seal_box_mm
    box = (x * k, (A4_HEIGHT_MM - y - height) * k, (x + width) * k, (A4_HEIGHT_MM - y) * k)
    stages: dict[str, Callable[[], object]] = {
        "render (A4, CJK font)": lambda: render_licence_pdf(rendering),
        "QR symbol": lambda: make_qr(url),
        "QR drawn and sealed (B-T, P-256)": lambda: runner.run(sign_pdf(
            rendered.pdf, signer=signer, now=datetime.now(UTC), level="B-T",
            timestamper=stamper, page=0, box=box, appearance=image, changes=qr_changes)),
    }
    medians = {}
    with asyncio.Runner() as runner:
        for name, stage in stages.items():
            times = []
            for _ in range(count + 2):  # two warm-ups
                started = time.perf_counter()
                stage()
                times.append(time.perf_counter() - started)
            medians[name] = statistics.median(times[2:])
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in (a)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0, help="load time a side in (a)")
    parser.add_argument("--slices", type=int, default=3, help="slices the sides alternate in")
    parser.add_argument("--licences", type=int, default=20, help="licences verified in (a)")
    parser.add_argument("--issuances", type=int, default=40, help="issuances timed in (b)")
    parser.add_argument(
        "--token-cache", type=int, default=0,
        help="DANGAN_VERIFIED_TOKEN_CACHE of the server (default 0: every scan checks the "
             "token's signature, as for licences scanned once each)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dangan-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        env = {"DANGAN_DATA_DIR": str(root / "data"), "DANGAN_LOG_LEVEL": "WARNING",
               "DANGAN_PUBLIC_RATE_LIMIT": str(RATE_LIMIT),
               "DANGAN_VERIFIED_TOKEN_CACHE": str(args.token_cache)}
        key = dangan_cli(
            "clients", "create", "--name", "bench", "--org", ISSUER,
            "--scopes", "licences:issue,licences:read", env=env,
        ).stdout.strip().splitlines()[-1]
        port, trivial_port = free_port(), free_port()
        serve_env = {**env, "DANGAN_WORKERS": str(args.workers)}
        with (
            running_server(serve_env, root / "server.log", port=port),
            running_trivial_app(trivial_port, args.workers, root / "trivial.log"),
        ):
            # Issued from two connections at once, so that both workers warm up.
            _lat, answers = issue(port, key, args.licences, concurrency=2)
            tokens = [a["verification_url"].rpartition("/v/")[2] for a in answers]
            sides = [
                Side("baseline (trivial FastAPI endpoint, GET /ping)", trivial_port,
                     [build_request("GET", "/ping", f"127.0.0.1:{trivial_port}", {})]),
                Side(f"GET /v1/public/licences/verify ({len(tokens)} licences)", port,
                     [build_request("GET", f"/v1/public/licences/verify?token={t}",
                                    f"127.0.0.1:{port}", {}) for t in tokens]),
            ]
            try:
                ok_verify = bench_verification(sides, args)
                median, answer = bench_issuance(port, key, args)
            except WrongAnswers as exc:
                print(f"licences: {exc}")
                return 1
        stages = in_process_stages(answer, root / "stages-pki")
    print("  in process, each stage alone (medians):")
    for name, seconds in stages.items():
        print(f"    {name + ':':56} {seconds * 1e3:6.1f} ms")
    rest = median - sum(stages.values())
    print(f"    {'the rest (storing, recording, HTTP, thread hops):':56} {rest * 1e3:6.1f} ms")
    print(f"  target median <= {ISSUE_TARGET_S * 1e3:.0f} ms: {verdict(median <= ISSUE_TARGET_S)}")
    print(f"licences: {ok_verify + (median <= ISSUE_TARGET_S)}/2 targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
