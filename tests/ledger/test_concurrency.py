"""Appends from several real processes form one gapless log with unforked checkpoints."""

from __future__ import annotations

import base64
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from dangan.db import create_db_engine, upgrade
from dangan.ledger import merkle
from dangan.ledger.checkpoints import iter_checkpoints
from dangan.ledger.log import iter_entries
from dangan.ledger.note import NoteSigner, NoteVerifier
from dangan.ledger.tree import consistency_proof_at
from dangan.ledger.verify import verify_ledger

PROCESSES, APPENDS = 4, 500
ORIGIN = "test.example/ledger"

WORKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from dangan.db import create_db_engine, write_transaction
    from dangan.ledger.checkpoints import ensure_checkpoint
    from dangan.ledger.log import append_event
    from dangan.ledger.note import NoteSigner

    url, key_file, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    signer = NoteSigner.from_pem("%s", open(key_file, "rb").read())
    engine = create_db_engine(url)
    for i in range(count):
        with write_transaction(engine) as conn:
            now = datetime.now(UTC)
            append_event(conn, kind="test.append", actor=worker, subject={"i": i}, now=now)
            ensure_checkpoint(conn, signer=signer, origin="%s", now=now)
    engine.dispose()
    """
    % (ORIGIN, ORIGIN)
)


def test_four_processes_append_one_gapless_log(database_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(database_url)
    upgrade(engine)
    signer = NoteSigner.generate(ORIGIN)
    key_file = tmp_path / "ledger.key"
    key_file.write_bytes(signer.private_pem())
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, database_url, str(key_file), f"w{n}", str(APPENDS)],
            env=os.environ.copy(),
        )
        for n in range(PROCESSES)
    ]
    assert [w.wait(timeout=600) for w in workers] == [0] * PROCESSES

    total = PROCESSES * APPENDS
    verifier = NoteVerifier.parse(signer.verifier_key())
    with engine.connect() as conn:
        entries = list(iter_entries(conn))
        assert [e.seq for e in entries] == list(range(total))  # no gaps, no duplicates
        per_worker = {}
        for e in entries:
            per_worker.setdefault(e.body.split(b'"actor":"')[1][:2], []).append(e)
        assert sorted(len(v) for v in per_worker.values()) == [APPENDS] * PROCESSES
        assert verify_ledger(conn, verifier=verifier) == total  # chain, tree, every checkpoint

        cps = list(iter_checkpoints(conn))
        assert [cp.size for cp in cps] == list(range(1, total + 1))
        roots = {cp.size: cp.root for cp in cps}
        pairs = [(n, n + 1) for n in range(1, total)]
        rng = random.Random(7)
        pairs += [tuple(sorted(rng.sample(range(1, total + 1), 2))) for _ in range(500)]
        for old, new in pairs:
            proof = consistency_proof_at(conn, old, new, head_size=total)
            assert merkle.verify_consistency(old, new, roots[old], roots[new], proof), (old, new)
        last = cps[-1]
        assert base64.b64decode(last.note.split("\n")[2]) == last.root
    engine.dispose()
