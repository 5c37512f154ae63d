"""Endpoints that take the bare request are answered before routing, as the route would."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from dangan.api._direct import DirectRoutes, RequestRoute
from dangan.api.observability import Metrics, RequestContextMiddleware
from dangan.api.problems import install_problem_handlers
from dangan.errors import InvalidRequest


def make_app(*, direct: bool) -> tuple[FastAPI, list[str]]:
    """An app with one bare-request POST route and one ordinary GET on the same path;
    ``calls`` records which way each request reached its endpoint."""
    calls: list[str] = []
    router = APIRouter(prefix="/v1/things")

    async def create(request: Request) -> Response:
        calls.append("route" if "starlette.exception_handlers" in request.scope else "direct")
        body = await request.body()
        if body == b"bad":
            raise InvalidRequest("that is not a thing")
        return JSONResponse({"got": body.decode()}, status_code=201, headers={"Location": "/x"})

    router.add_api_route("", create, methods=["POST"], route_class_override=RequestRoute)

    @router.get("")
    async def listing() -> dict[str, list[str]]:
        return {"items": []}

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(router)
    if direct:
        app.add_middleware(DirectRoutes, routes=router.routes)
    app.add_middleware(RequestContextMiddleware, metrics=Metrics.create())
    return app, calls


def test_direct_answers_are_those_of_the_route() -> None:
    answers = {}
    for direct in (False, True):
        app, calls = make_app(direct=direct)
        with TestClient(app) as client:
            ok = client.post("/v1/things", content=b"one")
            bad = client.post("/v1/things", content=b"bad")
            listed = client.get("/v1/things")
        assert calls == (["direct", "direct"] if direct else ["route", "route"])
        for response in (ok, bad):
            assert response.headers["x-request-id"]
        answers[direct] = [
            (r.status_code, r.headers["content-type"], r.headers.get("location"),
             {k: v for k, v in r.json().items() if k != "request_id"})
            for r in (ok, bad, listed)
        ]
    assert answers[True] == answers[False]
    assert answers[True][1][0] == 400
    assert answers[True][1][1] == "application/problem+json"
    assert answers[True][2] == (200, "application/json", None, {"items": []})


def test_only_bare_request_routes_and_exact_matches_are_taken() -> None:
    app, calls = make_app(direct=True)
    with TestClient(app) as client:
        assert client.get("/v1/things").status_code == 200
        assert client.put("/v1/things", content=b"x").status_code == 405
        assert client.post("/v1/things/", content=b"x", follow_redirects=False).status_code in (307, 404)
    assert calls == []


def test_uploads_are_answered_directly() -> None:
    from dangan.api import documents

    direct = DirectRoutes(make_app(direct=False)[0], routes=documents.router.routes)
    assert set(direct._routes) == {("POST", "/v1/documents")}
