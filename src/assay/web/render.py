"""Rendering pages: the Jinja2 environment, cookies and error pages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from assay import __version__
from assay.registry.roles import may_read_audit

HERE = Path(__file__).parent  # assay/web: templates/ and static/

#: Direction-changing characters (embeddings, overrides, isolates: U+202A-U+202E and
#: U+2066-U+2069). In user text they reverse what follows ("txt.exe" shows as
#: "exe.txt"); pages drop them from every value they show. The stored text keeps them
#: (the API and the audit trail return it as it was given).
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def _finalize(value: Any) -> Any:
    if isinstance(value, str) and not value.isascii():
        cleaned = value.translate(_BIDI)
        return type(value)(cleaned) if isinstance(value, Markup) else cleaned
    return value


env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    finalize=_finalize,
)

def _program_readers() -> tuple[str, ...]:
    from assay.operate import PROGRAM_READERS

    return PROGRAM_READERS


LOOPBACK = {"127.0.0.1", "::1", "localhost", "testserver"}


def _when(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _day(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value)


def _label(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _num(value: Any) -> str:
    """A measured value: four significant digits, a true minus sign, a dash when absent."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return "—"
    return f"{value:.4g}".replace("-", "\u2212")


def _interval(ci: Any) -> str:
    if not ci or len(ci) != 2:
        return "—"
    return f"{_num(ci[0])} to {_num(ci[1])}"


def _threshold(threshold: Any) -> str:
    """A rule's threshold as the policy reads (``<= 0.1``, ``between 0.2 and 0.8``)."""
    if not isinstance(threshold, dict) or not threshold:
        return "—"
    lo, hi = threshold.get("min"), threshold.get("max")
    if lo is not None and hi is not None:
        return f"between {lo:g} and {hi:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}" if hi is not None else "—"


env.filters["when"] = _when
env.filters["num"] = _num
env.filters["interval"] = _interval
env.filters["threshold"] = _threshold
env.filters["day"] = _day
env.filters["label"] = _label
env.filters["urlpart"] = lambda v: quote(str(v), safe="")
env.globals["version"] = __version__
env.globals["may_read_audit"] = lambda me: me is not None and may_read_audit(me.roles)
env.globals["may_read_program"] = lambda me: me is not None and bool(
    set(me.roles) & set(_program_readers()))


def secure_cookies(request: Request) -> bool:
    forced = request.app.state.secure_cookies
    if forced is not None:
        return bool(forced)
    host = (request.url.hostname or "").strip("[]")
    return request.url.scheme == "https" or host not in LOOPBACK


def page(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    html = env.get_template(template).render(
        request=request, me=principal, path=request.url.path,
        csrf=principal.csrf_token if principal is not None else "", **context)
    return HTMLResponse(html, status_code=http_status)


def render_error(request: Request, status: int, code: str, message: str) -> Response:
    if status == 401:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        if request.cookies.get("assay_session"):
            response.delete_cookie("assay_session", path="/")
        return response
    if code == "password_change_required":
        return RedirectResponse("/account", status_code=303)
    return page(request, "error.html", http_status=status, status_code=status, code=code,
                message=message)
