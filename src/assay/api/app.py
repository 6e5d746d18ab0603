"""The FastAPI application: ``create_app(settings)``.

Routes only parse input, call the domain functions inside one transaction
with the authenticated user as the actor, and render the result (JSON under
``/api``, HTML pages elsewhere). OpenAPI at ``/openapi.json``, docs at
``/docs``.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay import __version__
from assay.api.deps import refuse_nul_characters
from assay.api.errors import ErrorResponse, install_error_handlers
from assay.config import Settings, load_settings

#: API routers, each a module with a ``router`` (an ``APIRouter``).
API_ROUTERS = [
    "assay.api.routes_auth",
    "assay.api.routes_models",
    "assay.api.routes_risk",
    "assay.api.routes_certifications",
    "assay.api.routes_workflow",
    "assay.api.routes_audit",
    "assay.api.routes_program",
    "assay.api.routes_notify",
    "assay.api.routes_monitor",
    "assay.api.routes_incidents",
    "assay.api.routes_metrics",
    "assay.api.routes_releases",
    "assay.api.routes_cards",
    "assay.api.routes_impact",
    "assay.api.routes_impact_numbers",
    "assay.api.routes_mitigation",
    "assay.api.routes_attest",
    "assay.api.routes_compliance",
    "assay.api.routes_redteam",
]

_ERRORS = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in (
        (400, "Bad input"),
        (401, "No or bad credentials"),
        (403, "Role not allowed, or CSRF token missing"),
        (404, "Unknown resource"),
        (409, "Conflict: stale version, separation of duties, stage out of order"),
        (422, "Request does not match the schema"),
    )
}

_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders:
    """Security and caching headers on every response.

    A plain ASGI middleware (it only edits the response start message), so a
    request pays no extra task or body stream for it. A header a route set
    itself (e.g. a report's stricter CSP) is kept.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        api = scope.get("path", "").startswith("/api")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h.setdefault("X-Content-Type-Options", "nosniff")
                h.setdefault("X-Frame-Options", "DENY")
                h.setdefault("Referrer-Policy", "same-origin")
                h.setdefault("Content-Security-Policy", _CSP)
                if https:
                    h.setdefault("Strict-Transport-Security", "max-age=31536000")
                if api or "text/html" in h.get("content-type", ""):
                    h.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None, *, store=None,
               secure_cookies: bool | None = None,
               session_lifetime: timedelta = timedelta(hours=8)) -> FastAPI:
    """The assay web service over the store of ``settings``.

    ``secure_cookies``: mark cookies ``Secure``; ``None`` (default) does so
    for every request that is not to a loopback address, so a deployment
    behind TLS always gets secure cookies while ``assay serve`` on a laptop
    still works over plain HTTP.
    """
    from assay.store import open_store

    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The periodic jobs (scheduled monitoring runs ...) live as long as the app."""
        from assay.api.scheduler import Scheduler, service_jobs

        scheduler = Scheduler(app.state.store, service_jobs(app.state.settings))
        app.state.scheduler = scheduler
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="assay",
        version=__version__,
        description="Certify, govern and monitor machine-learning models with evidence. "
                    "Authenticate with `Authorization: Bearer <token>` (see `assay token "
                    "create`). Every error has the body `{\"error\": {\"code\", \"message\", "
                    "\"details\"}}`.",
        responses=_ERRORS,
        docs_url=None,  # /docs is served by assay.web: no script, nothing from a CDN
        redoc_url=None,
        dependencies=[Depends(refuse_nul_characters)],
    )
    app.state.settings = settings
    app.state.store = store if store is not None else open_store(settings)
    app.state.secure_cookies = secure_cookies
    app.state.session_lifetime = session_lifetime
    install_error_handlers(app)

    app.add_middleware(SecurityHeaders)

    @app.get("/api/health", tags=["service"], summary="Liveness and version")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for name in API_ROUTERS:
        app.include_router(importlib.import_module(name).router)

    from assay.web import install as install_web

    install_web(app)
    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory assay.api.app:app_from_env`` (settings from
    ``ASSAY_HOME`` / ``ASSAY_DATABASE_URL``; ``ASSAY_SECURE_COOKIES`` = 1 or 0 forces
    the cookies' Secure flag; used for multi-worker deployments)."""
    import os

    flag = os.environ.get("ASSAY_SECURE_COOKIES", "").strip().lower()
    secure = {"1": True, "true": True, "yes": True, "0": False, "false": False,
              "no": False}.get(flag)
    return create_app(load_settings(), secure_cookies=secure)
