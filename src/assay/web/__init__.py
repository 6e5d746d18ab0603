"""The web UI: server-rendered pages (Jinja2) over the same domain functions.

Every asset (CSS, the small script, icons) is served by the app itself from
``assay/web/static``; pages work without any network access beyond the
server. Forms carry the session's CSRF token; templates autoescape
everything they show.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent


def install(app: FastAPI) -> None:
    """Mount the static files and the pages on ``app``."""
    from assay.web import apidocs, cards, impact, incidents, monitoring, pages
    from assay.web.render import render_error

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.html_error_renderer = render_error
    app.include_router(pages.router)
    app.include_router(monitoring.router)
    app.include_router(incidents.router)
    app.include_router(impact.router)
    app.include_router(apidocs.router)
    app.include_router(cards.router)
