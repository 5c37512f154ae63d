"""The baseline of ``bench_licences.py``: a FastAPI app with one ``async def`` endpoint
that returns a small JSON, served by uvicorn with the options ``dangan serve`` uses.

    python bench/_trivial_app.py --port PORT --workers 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fastapi import FastAPI

#: What ``GET /ping`` answers: the same status line the verification JSON carries, so
#: the load client checks both answers the same way.
ANSWER = {"status": "valid"}


def create_app() -> FastAPI:
    app = FastAPI()

    # FastAPI's hello world: the dict is encoded into a JSONResponse, with no response
    # model to validate it against (the verify route returns its JSONResponse as well).
    @app.get("/ping", response_model=None)
    async def ping() -> dict[str, str]:
        return ANSWER

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # Worker processes are spawned and import this module by name from the repository.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    # The options of ``dangan serve`` (src/dangan/cli/main.py).
    uvicorn.run(
        "bench._trivial_app:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
