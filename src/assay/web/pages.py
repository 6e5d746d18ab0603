"""The pages of the web UI.

Each page authenticates with the session cookie (a 401 becomes a redirect to
the sign-in page), reads or acts through the domain functions inside one
transaction with the signed-in user as the actor, and renders a template.
Every POST form is checked against the session's CSRF token.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assay.api.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    acting,
    authenticate,
    client_of,
    csrf_matches,
    store_of,
)
from assay.auth import secrets as sec
from assay.auth import service as auth
from assay.auth.errors import AuthenticationError
from assay.errors import AssayError, PermissionDenied
from assay.web.render import page, secure_cookies

router = APIRouter(include_in_schema=False)


def signed_in(request: Request) -> Principal:
    return authenticate(request)


def form_principal(request: Request, csrf_token: str) -> Principal:
    """The principal of a form post, after checking the form's CSRF token."""
    principal = authenticate(request)
    if principal.via != "session" or not csrf_matches(principal.csrf_token, csrf_token):
        raise PermissionDenied("the form's CSRF token is missing or stale: reload the page "
                               "and try again")
    return principal


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# -- signing in and out ------------------------------------------------------

@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    token = sec.new_csrf_token()
    response = page(request, "login.html", login_csrf=token, next=_safe_next(next))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookies(request), path="/login", max_age=3600)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: str = Form("", max_length=200),
          password: str = Form("", max_length=1000), csrf_token: str = Form(""),
          next: str = Form("/")) -> Response:
    target = _safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf_matches(expected, csrf_token):
        return _login_again(request, "The sign-in form expired; please try again.", username,
                            target, 400)
    store = store_of(request)
    try:
        with store.transaction() as s:
            user = auth.authenticate_password(s, username, password, client=client_of(request))
            if user is not None:
                raw, _row = auth.open_session(s, user, client=client_of(request),
                                              lifetime=request.app.state.session_lifetime)
                must_change = auth.password_must_change(s, user)
    except AssayError as exc:  # throttled
        return _login_again(request, exc.message, username, target, 429)
    if user is None:
        return _login_again(request, "Wrong user name or password.", username, target, 401)
    response = see_other("/account" if must_change else target)
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax",
                        secure=secure_cookies(request), path="/",
                        max_age=int(request.app.state.session_lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _login_again(request: Request, error: str, username: str, target: str,
                 status: int) -> Response:
    token = sec.new_csrf_token()
    response = page(request, "login.html", status=status, login_csrf=token, next=target,
                    error=error, username=username)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookies(request), path="/login", max_age=3600)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    try:
        form_principal(request, csrf_token)
    except AuthenticationError:
        pass
    else:
        with store_of(request).transaction() as s:
            auth.close_session(s, request.cookies.get(SESSION_COOKIE, ""))
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, flash: str = "") -> Response:
    principal = signed_in(request)
    with acting(request, principal) as (s, actor):
        tokens = [{"key_id": t.key_id, "name": t.name, "state": auth.token_state(t),
                   "expires_at": t.expires_at, "last_used_at": t.last_used_at}
                  for t in auth.list_tokens(s, actor)]
    return page(request, "account.html", tokens=tokens, flash=flash)


@router.post("/account/password")
def change_password(request: Request, current: str = Form(..., max_length=1000),
                    new: str = Form(..., max_length=1000),
                    csrf_token: str = Form("")) -> Response:
    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        auth.change_own_password(s, actor, current, new)
        auth.close_sessions_of(s, actor)
        raw, _row = auth.open_session(s, actor, client=client_of(request),
                                      lifetime=request.app.state.session_lifetime)
    response = see_other("/account?flash=" + quote("Password changed."))
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax",
                        secure=secure_cookies(request), path="/",
                        max_age=int(request.app.state.session_lifetime.total_seconds()))
    return response


# -- my queue and workflow actions --------------------------------------------

@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, flash: str = "", kind: str = "ok") -> Response:
    from assay.api.queue import my_queue

    principal = signed_in(request)
    with acting(request, principal) as (s, actor):
        items = my_queue(s, actor, settings=request.app.state.settings)
    for i, item in enumerate(items):
        item["action"] = {"model": item["model"], "version": item["version"],
                          "stage": item["stage"], "stage_title": item["stage_title"],
                          "revision": item["revision"], "key": f"q{i}"}
    return page(request, "queue.html", items=items, flash=flash,
                flash_kind="error" if kind == "error" else "ok")


def _back(back: str, message: str, kind: str = "ok") -> RedirectResponse:
    target = _safe_next(back)
    sep = "&" if "?" in target else "?"
    anchor = "#workflow" if target.startswith("/models/") else ""
    return see_other(f"{target}{sep}flash={quote(message)}&kind={kind}{anchor}")


def _revision(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


@router.post("/workflow/approve")
def approve_form(request: Request, model: str = Form(..., max_length=200),
                 version: str = Form(..., max_length=100), stage: str = Form(..., max_length=100),
                 revision: str = Form("", max_length=20),
                 conditions: str = Form("", max_length=5000),
                 back: str = Form("/queue", max_length=500),
                 csrf_token: str = Form("")) -> Response:
    from assay.workflow import service as wf

    principal = form_principal(request, csrf_token)
    conds = [c.strip() for c in conditions.splitlines() if c.strip()]
    with acting(request, principal) as (s, actor):
        wf.approve(s, actor, model, version, stage=stage, conditions=conds,
                   expected_revision=_revision(revision), settings=request.app.state.settings)
    return _back(back, f"Approved stage {stage} of {model} {version}.")


@router.post("/workflow/reject")
def reject_form(request: Request, model: str = Form(..., max_length=200),
                version: str = Form(..., max_length=100), stage: str = Form(..., max_length=100),
                revision: str = Form("", max_length=20), reason: str = Form("", max_length=5000),
                back: str = Form("/queue", max_length=500), csrf_token: str = Form("")) -> Response:
    from assay.workflow import service as wf

    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        wf.reject(s, actor, model, version, stage=stage, reason=reason,
                  expected_revision=_revision(revision))
    return _back(back, f"Rejected stage {stage} of {model} {version}.")


@router.post("/workflow/comment")
def comment_form(request: Request, model: str = Form(..., max_length=200),
                 version: str = Form(..., max_length=100), stage: str = Form("", max_length=100),
                 body: str = Form("", max_length=5000),
                 back: str = Form("/queue", max_length=500),
                 csrf_token: str = Form("")) -> Response:
    from assay.workflow import service as wf

    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        wf.comment(s, actor, model, version, body, stage=stage or None)
    return _back(back, "Comment added.")
