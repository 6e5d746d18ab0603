"""Request dependencies: the store, the authenticated principal, CSRF.

Two ways in:

- ``Authorization: Bearer assay_<id>_<secret>`` (API tokens, for CI and
  other systems). No CSRF check: browsers never attach it by themselves.
- the ``assay_session`` cookie of a browser session. Every state-changing
  request made with it must carry the session's CSRF token, in the
  ``X-CSRF-Token`` header (scripts) or the ``csrf_token`` form field (forms).

The principal is who the credentials say, never a name in the request body;
routes pass it to the domain functions as the acting user.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from assay.auth import service as auth
from assay.auth.errors import AuthenticationError, PasswordChangeRequired
from assay.errors import AssayError, PermissionDenied
from assay.registry import get_user

SESSION_COOKIE = "assay_session"
LOGIN_CSRF_COOKIE = "assay_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Policies are named, never given as server paths, over the API.
POLICY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    username: str
    display_name: str
    roles: frozenset[str]
    via: str  # "token" or "session"
    csrf_token: str | None = None
    must_change_password: bool = False

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


NUL = "\x00"


def _nul_problem(where: str) -> RequestValidationError:
    return RequestValidationError([{
        "type": "nul_character", "loc": tuple(where.split(".")),
        "msg": "contains a NUL character (\\x00); text may not contain it", "input": None}])


def _first_nul(value: object, where: str) -> str | None:
    """Where the first NUL character is in a parsed JSON document, if any."""
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}"
            if NUL in str(key):
                return inner
            found = _first_nul(item, inner)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_nul(item, f"{where}.{i}")
            if found:
                return found
    return None


async def refuse_nul_characters(request: Request) -> None:
    """No text that reaches the store may hold a NUL character (PostgreSQL cannot keep
    one; nothing else needs one): a path or query parameter, a JSON body or a form field
    containing one is refused with 422, the same on every route and on both stores.

    Runs as an application-wide dependency, after FastAPI has read the body (JSON and
    form bodies are cached on the request, so nothing is read twice)."""
    if NUL in request.url.path:
        raise _nul_problem("path")
    for key, value in request.path_params.items():
        if NUL in str(value):
            raise _nul_problem(f"path.{key}")
    for key, value in request.query_params.multi_items():
        if NUL in key or NUL in value:
            raise _nul_problem(f"query.{key.replace(NUL, '?')}")
    ctype = request.headers.get("content-type", "").lower()
    if request.method in SAFE_METHODS or not ctype:
        return
    if "json" in ctype:
        import json

        try:
            doc = json.loads(await request.body())
        except ValueError:
            return  # not JSON after all: the route's own validation answers
        found = _first_nul(doc, "body")
        if found:
            raise _nul_problem(found.replace(NUL, "?"))
    elif ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        for key, value in form.multi_items():
            text = value if isinstance(value, str) else (getattr(value, "filename", "") or "")
            if NUL in key or NUL in text:
                raise _nul_problem(f"body.{key.replace(NUL, '?')}")


def store_of(request: Request):
    return request.app.state.store


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _principal(user, via: str, csrf: str | None, must_change: bool) -> Principal:
    return Principal(user_id=user.id, username=user.username,
                     display_name=getattr(user, "display_name", None) or user.username,
                     roles=frozenset(user.roles), via=via, csrf_token=csrf,
                     must_change_password=must_change)


def authenticate(request: Request) -> Principal:
    """The principal of this request, or :class:`AuthenticationError` (401)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization")
    store = store_of(request)
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError("Authorization header: expected 'Bearer <token>'")
        with store.transaction() as s:
            user = auth.user_for_token(s, value.strip())
            principal = _principal(user, "token", None, False)
    else:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            raise AuthenticationError(
                "no credentials: send 'Authorization: Bearer <token>' or sign in")
        with store.transaction() as s:
            user, row = auth.session_user(s, raw)
            principal = _principal(user, "session", row.csrf_token,
                                   auth.password_must_change(s, user))
    request.state.principal = principal
    return principal


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given and hmac.compare_digest(expected, given))


#: What a session signed in with a one-time password may still reach.
PASSWORD_CHANGE_PATHS = ("/account", "/logout", "/api/me")


def require_settled_password(request: Request, principal: Principal) -> None:
    """A session opened with a one-time password may only change it (or sign out)."""
    if principal.via == "session" and principal.must_change_password and \
            not request.url.path.startswith(PASSWORD_CHANGE_PATHS):
        raise PasswordChangeRequired("you signed in with a one-time password: choose your "
                                     "own password first (/account)")


def current_principal(request: Request) -> Principal:
    """Dependency for API routes: authenticate; enforce CSRF for cookie sessions."""
    principal = authenticate(request)
    require_settled_password(request, principal)
    if principal.via == "session" and request.method not in SAFE_METHODS and \
            not csrf_matches(principal.csrf_token, request.headers.get(CSRF_HEADER)):
        raise PermissionDenied("CSRF token missing or wrong: send the session's token in the "
                               "X-CSRF-Token header")
    return principal


def require_roles(principal: Principal, *roles: str) -> None:
    if not principal.has(*roles):
        raise PermissionDenied(f"user '{principal.username}' may not do this "
                               f"(needs one of the roles: {', '.join(roles)})")


@contextmanager
def acting(request: Request, principal: Principal) -> Iterator[tuple[Session, object]]:
    """One transaction with the principal loaded as the acting user."""
    with store_of(request).transaction() as s:
        try:
            actor = get_user(s, principal.username)
        except AssayError:
            raise AuthenticationError("credentials: the user no longer exists or is "
                                      "deactivated; sign in again") from None
        if actor.id != principal.user_id:  # the name was reused after a deletion
            raise AuthenticationError("credentials: the user changed; sign in again")
        yield s, actor


@contextmanager
def reading(request: Request) -> Iterator[Session]:
    """One read transaction."""
    with store_of(request).transaction() as s:
        yield s
