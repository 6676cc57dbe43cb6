"""Every error leaves as a FHIR OperationOutcome; FastAPI's own 422 bodies never reach a client."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.fhir.outcome import Category, FhirError, outcome_bytes
from app.middleware import BodyTooLarge, body_too_large_error
from app.store.errors import transient_reason

_MEDIA = "application/fhir+json; charset=utf-8"
_HTTP_CATEGORIES = {
    400: Category.INVALID,
    401: Category.UNAUTHORIZED,
    403: Category.FORBIDDEN,
    404: Category.NOT_FOUND,
    405: Category.METHOD_NOT_ALLOWED,
    406: Category.NOT_ACCEPTABLE,
    409: Category.CONFLICT,
    410: Category.GONE,
    412: Category.PRECONDITION,
    413: Category.TOO_LARGE,
    415: Category.UNSUPPORTED_MEDIA,
    422: Category.UNPROCESSABLE,
    503: Category.BUSY,
}


def error_response(error: FhirError) -> Response:
    return Response(outcome_bytes(error.outcome()), error.status, error.headers or None, media_type=_MEDIA)


def install_error_handlers(app: FastAPI, max_body_bytes: int) -> None:
    @app.exception_handler(FhirError)
    async def on_fhir_error(_request: Request, exc: FhirError) -> Response:
        return error_response(exc)

    @app.exception_handler(BodyTooLarge)
    async def on_too_large(_request: Request, _exc: BodyTooLarge) -> Response:
        return error_response(body_too_large_error(max_body_bytes))

    @app.exception_handler(DBAPIError)
    async def on_database_error(_request: Request, exc: DBAPIError) -> Response:
        reason = transient_reason(exc)
        if reason is None:
            raise exc  # a defect: the access-log middleware logs its frames and answers 500
        return error_response(FhirError(Category.BUSY, reason, "transient"))

    @app.exception_handler(RequestValidationError)
    async def on_validation(_request: Request, exc: RequestValidationError) -> Response:
        details = "; ".join(str(e.get("msg", "")) for e in exc.errors()[:5])
        return error_response(FhirError(Category.INVALID, f"Invalid request: {details}", "invalid"))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> Response:
        # Unrouted paths and methods never get here: app.fhir.routing's fallback answers them.
        category = _HTTP_CATEGORIES.get(exc.status_code, Category.FAULT)
        error = FhirError(category, str(exc.detail), headers=dict(exc.headers or {}))
        response = error_response(error)
        response.status_code = exc.status_code
        return response
