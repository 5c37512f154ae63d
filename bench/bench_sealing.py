"""Sealing through the HTTP API: PAdES B-T seals on one-page ~50 KB PDFs, 2 cores.

A ``dangan serve`` subprocess on the embedded defaults (SQLite, local objects, the
development PKI with an RSA-2048 seal key, the built-in TSA in process) receives
``POST /v1/documents/{id}/seal`` from 8 concurrent keep-alive clients, one request per
document already uploaded. Each seal reads the current version, signs it with the seal
image at B-T, stores the new version and records ``document.sealed`` with a usage-log row.

Baseline, in the same run: dangan's signing engine alone (``sign_pdf`` with the key
loaded once and the TSA in process), one document at a time in this process, on the same
PDF. Target: at least 60 seals/s through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._host import StealMeter, steal_report  # noqa: E402
from bench._http import build_request, run_load  # noqa: E402
from bench.bench_ingest import upload_requests  # noqa: E402
from bench.bench_signing import make_pdf  # noqa: E402
from tests.support.server import dangan_cli, free_port, running_server  # noqa: E402

TARGET_PER_S = 60.0


def json_request(path: str, port: int, key: str, body: dict) -> bytes:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return build_request("POST", path, f"127.0.0.1:{port}", headers, json.dumps(body).encode())


def seal_engine(root: Path, *, key_type: str = "rsa2048") -> tuple[Any, Any, bytes]:
    """A development seal key loaded once, the built-in TSA in process and a round seal
    image: (signer, timestamper, image) for ``sign_pdf``."""
    from dangan.signing.keys import LoadedKeySigner
    from dangan.signing.pades import InProcessTimeStamper
    from dangan.signing.pki import DevPki
    from dangan.signing.tsa import TimestampAuthority
    from dangan.seals.appearance import render_round_seal

    now = datetime.now(UTC)
    pki = DevPki.create(root, now=now, crl_url="http://127.0.0.1/crl", passphrase=b"bench")
    credential = pki.issue_seal_certificate(organisation="bench", key_type=key_type, now=now)
    signer = LoadedKeySigner.create(
        certificate=credential.certificate, private_key=credential.private_key, chain=credential.chain
    )
    tsa = TimestampAuthority.from_credential(
        pki.tsa, policy_oid="1.3.6.1.4.1.57264.1.1", accuracy_ms=1000, clock=lambda: datetime.now(UTC)
    )
    return signer, InProcessTimeStamper(tsa), render_round_seal(organisation="bench")


def engine_baseline(pdf: bytes, count: int, root: Path) -> float:
    """Seals per second of dangan's signing engine alone, in this process."""
    from dangan.signing.pades import sign_pdf

    signer, stamper, seal = seal_engine(root)

    async def run() -> float:
        started = 0.0
        for i in range(count + 5):
            if i == 5:  # warm-up done
                started = time.perf_counter()
            await sign_pdf(
                pdf, signer=signer, now=datetime.now(UTC), level="B-T", timestamper=stamper,
                page=0, box=(238, 170, 357, 289), appearance=seal,
            )
        return time.perf_counter() - started

    return count / asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-docs", type=int, default=100)
    args = parser.parse_args()
    pdf = make_pdf(50 * 1024)

    with tempfile.TemporaryDirectory(prefix="dangan-bench-", dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        steal = {"baseline": StealMeter(), "API": StealMeter()}
        with steal["baseline"]:
            base_rate = engine_baseline(pdf, args.baseline_docs, root / "baseline-pki")
        env = {"DANGAN_DATA_DIR": str(root / "data"), "DANGAN_LOG_LEVEL": "WARNING"}
        key = dangan_cli(
            "clients", "create", "--name", "bench", "--org", "bench",
            "--scopes", "documents:write,seal:use,seals:admin", env=env,
        ).stdout.strip().splitlines()[-1]
        port = free_port()
        with running_server({**env, "DANGAN_WORKERS": str(args.workers)}, root / "server.log", port=port):
            bodies: dict[int, bytes] = {}
            asyncio.run(run_load(
                "127.0.0.1", port,
                [json_request("/v1/seals", port, key,
                              {"organisation": "bench", "name": "bench seal", "kind": "official"})],
                concurrency=1, bodies=bodies,
            ))
            seal_id = json.loads(bodies[0])["id"]
            # Each document differs (a trailing comment), as real ones do.
            docs = [pdf + f"% {i}\n".encode() for i in range(args.docs + 20)]
            uploads = upload_requests(docs, port, key, kind="approval-result")
            bodies.clear()
            asyncio.run(run_load("127.0.0.1", port, uploads, concurrency=args.clients, bodies=bodies))
            doc_ids = [json.loads(bodies[i])["id"] for i in range(len(uploads))]
            seal_body = {"seal_id": seal_id, "level": "B-T", "page": 1, "x": 84, "y": 200}
            requests = [
                json_request(f"/v1/documents/{doc}/seal", port, key, seal_body) for doc in doc_ids
            ]
            # Warm-up: every worker process opens the seal key and loads its modules.
            asyncio.run(run_load("127.0.0.1", port, requests[:20], concurrency=args.clients))
            bodies.clear()
            with steal["API"]:
                api_s, latencies, statuses = asyncio.run(
                    run_load("127.0.0.1", port, requests[20:], concurrency=args.clients, bodies=bodies)
                )
    bad = [s for s in statuses if s != 201]
    if bad:
        print(f"sealing: {len(bad)} requests failed, e.g. status {bad[0]}: "
              f"{next(b for b in bodies.values() if b'version' not in b)[:300]!r}")
        return 1
    api_rate = args.docs / api_s
    latencies.sort()
    print(f"sealing: {args.docs} one-page PDFs of ~50 KiB, PAdES B-T, RSA-2048, "
          f"{args.clients} clients, {args.workers} worker(s)")
    print(f"  baseline (sign_pdf alone, one at a time, in process): {base_rate:7.1f} seals/s")
    print(f"  HTTP API (POST /v1/documents/{{id}}/seal):             {api_rate:7.1f} seals/s  "
          f"median {statistics.median(latencies) * 1000:.1f} ms  "
          f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms")
    print(f"  ratio to the engine alone {api_rate / base_rate:.2f}x; "
          f"target >= {TARGET_PER_S:.0f} seals/s: {'PASS' if api_rate >= TARGET_PER_S else 'MISS'}")
    for line in steal_report(steal):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
