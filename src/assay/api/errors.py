"""One JSON error shape for every error the service returns.

Every error body is ``{"error": {"code": str, "message": str, "details": {}}}``:
errors the user can cause (:class:`assay.errors.AssayError`), request
validation errors, unknown routes and methods, and unexpected failures (500,
whose details never leak internals).
"""

from __future__ import annotations

import logging
import re
import tempfile
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay.auth.errors import AuthenticationError, PasswordChangeRequired, TooManyAttempts
from assay.errors import (
    AssayError,
    ConflictError,
    InputError,
    ModelLoadError,
    NotFoundError,
    PermissionDenied,
    PolicyError,
)

log = logging.getLogger("assay.api")

#: HTTP status of each kind of user-caused error (first match wins).
STATUS_OF: list[tuple[type[AssayError], int]] = [
    (AuthenticationError, 401),
    (TooManyAttempts, 429),
    (PasswordChangeRequired, 403),
    (PermissionDenied, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PolicyError, 422),
    (ModelLoadError, 422),
    (InputError, 400),
    (AssayError, 400),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


def status_for(exc: AssayError) -> int:
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 400


def error_response(status: int, code: str, message: str, details: dict | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def redact_paths(request: Request, text: str) -> str:
    """``text`` without the server's own file paths: the store's home (``ASSAY_HOME``,
    where the evidence lives) becomes ``$ASSAY_HOME``, and a temporary working
    directory is dropped, leaving the file's name. Error messages meant for an
    operator at the command line reach API answers and web pages through here."""
    settings = getattr(request.app.state, "settings", None)
    home = str(getattr(settings, "home", "") or "")
    if home and home != "/":
        text = text.replace(home.rstrip("/"), "$ASSAY_HOME")
    tmp = re.escape(tempfile.gettempdir().rstrip("/"))
    text = re.sub(tmp + r"/[^/\s'\"]+/", "", text)
    return re.sub(tmp + r"/", "", text)


def _redacted(request: Request, value: Any) -> Any:
    if isinstance(value, str):
        return redact_paths(request, value)
    if isinstance(value, dict):
        return {k: _redacted(request, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(request, v) for v in value]
    return value


def wants_html(request: Request) -> bool:
    """Pages of the web UI answer errors with HTML; everything else with JSON."""
    path = request.url.path
    if path.startswith(("/api", "/openapi", "/docs", "/redoc", "/static")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _render(request: Request, status: int, code: str, message: str, details: dict,
            headers: dict[str, str] | None = None) -> Response:
    renderer = getattr(request.app.state, "html_error_renderer", None)
    if renderer is not None and wants_html(request):
        return renderer(request, status, code, message)
    return error_response(status, code, message, details, headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AssayError)
    async def _assay_error(request: Request, exc: AssayError) -> Response:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
        return _render(request, status, exc.code, redact_paths(request, exc.message),
                       _redacted(request, _jsonable(exc.details)), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            problems.append({"field": loc, "problem": str(err.get("msg", "invalid"))})
        first = problems[0] if problems else {"field": "", "problem": "invalid request"}
        message = f"{first['field']}: {first['problem']}" if first["field"] else first["problem"]
        return _render(request, 422, "invalid_request", message, {"errors": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such resource: {request.url.path}"
        return _render(request, exc.status_code, code, message, {}, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error",
                              "the server failed to handle this request; see the server log")
