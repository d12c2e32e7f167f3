"""Errors as RFC 9457 problem details (``application/problem+json``), for every failure:
a CRM integrator gets one shape to handle, with a ``type`` to branch on and a ``detail``
that says what to do. Validation errors list the fields at fault, never the values sent
(a search body holds personal data)."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://joinedup.example/problems/"

TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 406: "Not acceptable", 415: "Unsupported media type",
          422: "Invalid request", 429: "Too many requests", 500: "Internal error"}


class Problem(Exception):
    """Raise to answer with a problem-details document."""

    def __init__(self, status: int, kind: str, detail: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(request: Request, status: int, kind: str, detail: str,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": TITLES.get(status, "Error"), "status": status,
            "detail": detail, "instance": request.url.path, **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _slug(status: int) -> str:
    return TITLES.get(status, "error").lower().replace(" ", "-")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.kind, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        return problem_response(request, exc.status_code, _slug(exc.status_code), detail,
                                getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"location": [str(p) for p in e.get("loc", ())], "message": e.get("msg", ""),
                   "kind": e.get("type", "")} for e in exc.errors()]
        fields = ", ".join(".".join(e["location"]) for e in errors) or "the request"
        return problem_response(request, 422, "invalid-request", f"check {fields}: see 'errors'", errors=errors)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("api request failed: %s on %s (%s)", request.method, request.url.path, type(exc).__name__)
        return problem_response(request, 500, "internal-error",
                                "the request failed inside the API; the error is logged without personal data")
