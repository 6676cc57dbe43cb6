"""What a request gets when no route serves it.

The fallback route comes after every other (app.main installs it last) and takes any method on any path,
so Starlette's own 405, whose Allow header names only the first route that matched the path, is never
sent. Instead:
- a path some route serves with other methods: 405 with every method those routes allow, or for OPTIONS
  200 with the same Allow header (RFC 9110 9.3.7; HAPI answers OPTIONS likewise);
- a first segment that is no resource type this server knows: 404, unknown type (also for `POST /0/_search`
  and `POST /0/$reindex`, which were 405);
- a known type with a malformed id: 400;
- a path that only a trailing slash keeps from a route: 307 to the path without it (as Starlette did);
- anything else: 404.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from app.fhir.outcome import Category, FhirError
from app.fhir.validate import check_id

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

fallback_router = APIRouter()


def _routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route of the app, into included routers (FastAPI keeps their own routes as they were)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods some route other than the fallback serves `path` with, in a fixed order."""
    allowed: set[str] = set()
    for route in _routes(app.router.routes):
        pattern = getattr(route, "path_regex", None)
        methods = getattr(route, "methods", None)
        if getattr(route, "endpoint", None) is unrouted or pattern is None or not methods:
            continue
        if pattern.fullmatch(path):
            allowed.update(methods)
    return [m for m in ALL_METHODS if m in allowed]


@fallback_router.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
async def unrouted(path: str, request: Request) -> Response:
    """No route serves this method on this path: say why, as a FHIR server would."""
    full_path = request.url.path
    if full_path.endswith("/") and full_path != "/":
        # What Starlette's redirect_slashes did before this route took every path: /Patient/ -> /Patient.
        trimmed = full_path.rstrip("/")
        if request.method in allowed_methods(request.app, trimmed):
            return RedirectResponse(str(request.url.replace(path=trimmed)), status_code=307)
    segments = path.split("/")
    type_name = segments[0]
    # The server's own paths start in lower case or with _ $ . (metadata, _history, $reindex, docs):
    # any other first segment is meant as a resource type.
    typed = bool(type_name) and not (type_name[0].islower() or type_name[0] in "_$.")
    if typed:
        request.app.state.fhir.resource_type(type_name)  # 404 for a type this server does not serve
    allowed = allowed_methods(request.app, full_path)
    if allowed:
        header = ", ".join([*allowed, "OPTIONS"] if "OPTIONS" not in allowed else allowed)
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={"Allow": header})
        raise FhirError(
            Category.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed on {full_path}",
            headers={"Allow": header},
        )
    if typed and len(segments) > 1 and segments[1] and segments[1][0] not in "_$":
        check_id(segments[1])
    raise FhirError(Category.NOT_FOUND, f"No FHIR endpoint at {request.method} {full_path}")
