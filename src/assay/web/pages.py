"""The pages of the web UI.

Each page authenticates with the session cookie (a 401 becomes a redirect to
the sign-in page), reads or acts through the domain functions inside one
transaction with the signed-in user as the actor, and renders a template.
Every POST form is checked against the session's CSRF token.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assay.api.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    acting,
    authenticate,
    client_of,
    csrf_matches,
    reading,
    require_settled_password,
    store_of,
)
from assay.auth import secrets as sec
from assay.auth import service as auth
from assay.auth.errors import AuthenticationError, TooManyAttempts
from assay.errors import InputError, NotFoundError, PermissionDenied
from assay.web.render import page, secure_cookies

router = APIRouter(include_in_schema=False)


def signed_in(request: Request) -> Principal:
    principal = authenticate(request)
    require_settled_password(request, principal)
    return principal


def form_principal(request: Request, csrf_token: str) -> Principal:
    """The principal of a form post, after checking the form's CSRF token."""
    principal = authenticate(request)
    require_settled_password(request, principal)
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
    except TooManyAttempts as exc:
        response = _login_again(request, exc.message, username, target, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
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
    response = page(request, "login.html", http_status=status, login_csrf=token, next=target,
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


def _my_tokens(s, actor) -> list[dict]:
    return [{"key_id": t.key_id, "name": t.name, "state": auth.token_state(t),
             "expires_at": t.expires_at, "last_used_at": t.last_used_at}
            for t in auth.list_tokens(s, actor)]


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, flash: str = Query("", max_length=300)) -> Response:
    principal = signed_in(request)
    with acting(request, principal) as (s, actor):
        tokens = _my_tokens(s, actor)
    return page(request, "account.html", tokens=tokens, flash=flash)


@router.post("/account/tokens", response_class=HTMLResponse)
def create_token_form(request: Request, name: str = Form(..., max_length=200),
                      days: int = Form(90, ge=1, le=730),
                      csrf_token: str = Form("")) -> Response:
    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        _row, token = auth.create_token(s, actor, actor.username, name, expires_in_days=days)
        tokens = _my_tokens(s, actor)
    return page(request, "account.html", tokens=tokens, new_token=token, http_status=201)


@router.post("/account/tokens/{key_id}/revoke")
def revoke_token_form(request: Request, key_id: str = Path(..., max_length=24),
                      csrf_token: str = Form("")) -> Response:
    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        auth.revoke_token(s, actor, key_id)
    return see_other("/account?flash=" + quote(f"Token {key_id} revoked."))


@router.post("/account/password")
def change_password(request: Request, current: str = Form(..., max_length=1000),
                    new: str = Form(..., max_length=1000),
                    csrf_token: str = Form("")) -> Response:
    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        auth.change_own_password(s, actor, current, new)  # ends every other session
        auth.close_sessions_of(s, actor)  # and this one: a fresh session id follows
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


MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


def _store_document(request: Request, document: UploadFile | None) -> dict[str, str] | None:
    """Keep an attached file as content-addressed evidence: ``{file name: digest}``."""
    from assay.evidence import store_bytes

    if document is None or not document.filename:
        return None
    data = document.file.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"document {document.filename}: larger than "
                         f"{MAX_DOCUMENT_BYTES // 2**20} MiB")
    if not data:
        return None
    name = document.filename.replace("\\", "/").rsplit("/", 1)[-1][:300]
    return {name: store_bytes(request.app.state.settings, data)}


def _revision(value: str) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


@router.post("/workflow/approve")
def approve_form(request: Request, model: str = Form(..., max_length=200),
                 version: str = Form(..., max_length=100), stage: str = Form(..., max_length=100),
                 revision: str = Form("", max_length=20),
                 conditions: str = Form("", max_length=5000),
                 back: str = Form("/queue", max_length=500),
                 document: UploadFile | None = File(None),
                 csrf_token: str = Form("")) -> Response:
    from assay.workflow import service as wf

    principal = form_principal(request, csrf_token)
    conds = [c.strip() for c in conditions.splitlines() if c.strip()]
    docs = _store_document(request, document)
    with acting(request, principal) as (s, actor):
        wf.approve(s, actor, model, version, stage=stage, conditions=conds, documents=docs,
                   expected_revision=_revision(revision), settings=request.app.state.settings)
    return _back(back, f"Approved stage {stage} of {model} {version}.")


@router.post("/workflow/submit")
def submit_form(request: Request, model: str = Form(..., max_length=200),
                version: str = Form(..., max_length=100), csrf_token: str = Form("")
                ) -> Response:
    from assay.workflow import service as wf

    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        sub = wf.submit(s, actor, model, version)
        stage = sub.current_stage
    back = f"/models/{quote(model, safe='')}?version={quote(version, safe='')}"
    return _back(back, f"Submitted {model} {version} for approval; first stage: {stage}.")


@router.post("/workflow/waive")
def waive_form(request: Request, model: str = Form(..., max_length=200),
               version: str = Form(..., max_length=100),
               justification: str = Form("", max_length=5000),
               check_id: str = Form("", max_length=200), expires: str = Form("", max_length=10),
               csrf_token: str = Form("")) -> Response:
    from datetime import UTC, date, datetime, time

    from assay.workflow import service as wf

    principal = form_principal(request, csrf_token)
    try:
        until = datetime.combine(date.fromisoformat(expires), time(23, 59, 59), tzinfo=UTC)
    except ValueError:
        raise InputError(f"valid until: expected a date YYYY-MM-DD, got {expires!r}") from None
    with acting(request, principal) as (s, actor):
        wf.waive(s, actor, model, version, justification=justification, expires=until,
                 check_id=check_id or None)
    back = f"/models/{quote(model, safe='')}?version={quote(version, safe='')}"
    return _back(back, "Waiver granted.")


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
                 document: UploadFile | None = File(None),
                 csrf_token: str = Form("")) -> Response:
    from assay.workflow import service as wf

    principal = form_principal(request, csrf_token)
    docs = _store_document(request, document)
    with acting(request, principal) as (s, actor):
        wf.comment(s, actor, model, version, body, stage=stage or None, documents=docs)
    return _back(back, "Comment added.")


# -- inventory, model, risk, audit --------------------------------------------

@router.get("/", response_class=HTMLResponse)
def inventory_page(request: Request, q: str = Query("", max_length=200),
                   tier: str = Query("", max_length=20), status: str = Query("", max_length=40),
                   overdue: str = Query("", max_length=5)) -> Response:
    from assay.api import views
    from assay.registry.tables import DEPLOYMENT_STATUSES

    signed_in(request)
    with reading(request) as s:
        rows = views.inventory(s, q=q or None, tier=tier or None, status=status or None,
                               overdue=bool(overdue))
        total = views.count_models(s)
    return page(request, "inventory.html", rows=rows, total=total, q=q, tier=tier,
                status=status, overdue=bool(overdue), statuses=DEPLOYMENT_STATUSES)


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str = Path(..., max_length=200),
               version: str = Query("", max_length=100), flash: str = Query("", max_length=300),
               kind: str = Query("ok", max_length=10),
               tpage: int | None = Query(None, ge=1, le=10**6)) -> Response:
    from assay.api import views
    from assay.operate import serving_summary
    from assay.workflow import service as wf

    principal = signed_in(request)
    settings = request.app.state.settings
    with acting(request, principal) as (s, actor):
        model = views.model_detail(s, name)
        versions = model["versions"]
        selected = version or (versions[-1]["version"] if versions else "")
        if selected and selected not in {v["version"] for v in versions}:
            raise NotFoundError(f"model '{name}' has no version '{selected}'")
        cert = views.certification_view(settings, s, name, selected) if selected else None
        risk = views.risk_view(s, name)
        releases = serving_summary(s, name)
        wf_status = wf.status(s, name, settings=settings).to_dict()
        vs = next((v for v in wf_status["versions"] if v["version"] == selected), None)
        action = None
        if vs and vs.get("state") == "in_review":
            info = wf.review(s, name, selected, actor=actor, settings=settings)
            if info.stage is not None and any(e["user"] == actor.username
                                              for e in info.eligible):
                action = {"model": name, "version": selected, "stage": info.stage.stage,
                          "stage_title": info.stage.title or info.stage.stage,
                          "revision": info.revision, "key": "m"}
    can_waive = cert is not None and cert.get("status") == "blocked" and \
        bool(principal.roles & {"risk_officer", "compliance"})
    can_submit = bool(selected) and "data_scientist" in principal.roles and \
        (vs is None or vs.get("state") not in ("in_review", "approved"))
    if cert is not None:
        cert["report_url"] = (f"/models/{quote(name, safe='')}/versions/"
                              f"{quote(selected, safe='')}/report/{cert['id']}")
    timeline = views.timeline_page(vs["timeline"] if vs else [], tpage)
    return page(request, "model.html", model=model, versions=versions, selected=selected,
                cert=cert, risk=risk, wf=vs, gate=vs["gate"] if vs else None, action=action,
                releases=releases,
                timeline=timeline,
                can_submit=can_submit, can_waive=can_waive,
                back=f"/models/{quote(name, safe='')}?version={quote(selected, safe='')}",
                flash=flash, flash_kind="error" if kind == "error" else "ok")


@router.get("/models/{name}/versions/{version}/report/{cert_id}", response_class=HTMLResponse)
def report_page(request: Request, name: str = Path(..., max_length=200),
                version: str = Path(..., max_length=100),
                cert_id: int = Path(..., ge=1, le=2**31 - 1)) -> Response:
    from assay.api.routes_certifications import report_html

    principal = signed_in(request)
    return report_html(request, name, version, cert_id, principal)


@router.get("/models/{name}/versions/{version}/documents/{document_id}")
def document_download(request: Request, name: str = Path(..., max_length=200),
                      version: str = Path(..., max_length=100),
                      document_id: int = Path(..., ge=1, le=2**31 - 1)) -> Response:
    from assay.api.downloads import attachment
    from assay.workflow.documents import document_bytes

    signed_in(request)
    with reading(request) as s:
        file_name, data = document_bytes(s, name, version, document_id,
                                         settings=request.app.state.settings)
    return attachment(data, file_name)


@router.get("/risk", response_class=HTMLResponse)
def risk_page(request: Request, model: str = Query("", max_length=200)) -> Response:
    from assay.risk import service as risk

    signed_in(request)
    with reading(request) as s:
        rows = [risk.risk_dict(s, r) for r in risk.list_risks(s, model_name=model or None)]
        items = [i.to_dict() for i in risk.backlog(s, model_name=model or None)]
    cells: dict[tuple[int, int], list[str]] = {}
    for r in rows:
        if r["status"] in risk.OPEN_STATUSES:
            cells.setdefault((r["likelihood"], r["impact"]), []).append(r["title"])
    columns = ["id", "model", "version", "kind", "title", "category", "severity", "likelihood",
               "impact", "owner", "status"]
    return page(request, "risk.html", register=rows, backlog=items, cells=cells,
                columns=columns)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, actor: str = Query("", max_length=100),
               action: str = Query("", max_length=100),
               subject: str = Query("", max_length=300),
               before: int | None = Query(None, ge=1, le=2**62),
               verified: str = Query("", max_length=5)) -> Response:
    from assay.api.deps import require_roles
    from assay.api.routes_audit import query_events
    from assay.registry.roles import AUDIT_READERS

    require_roles(signed_in(request), *AUDIT_READERS)
    limit = 100
    with reading(request) as s:
        events = query_events(s, actor=actor or None, action=action or None, subject_type=None,
                              subject_id=subject or None, before=before, limit=limit)
        result = None
        if verified:
            from assay.store.audit import verify_chain

            result = verify_chain(s).to_dict()
    for e in events:
        e["payload_text"] = json.dumps(e["payload"], indent=2, sort_keys=True,
                                       ensure_ascii=False)
    more = None
    if len(events) == limit:
        more = "/audit?" + urlencode({k: v for k, v in (
            ("actor", actor), ("action", action), ("subject", subject),
            ("before", events[-1]["seq"])) if v})
    return page(request, "audit.html", events=events, verify=result, more=more,
                f={"actor": actor, "action": action, "subject": subject})


@router.post("/audit/verify")
def audit_verify(request: Request, csrf_token: str = Form("")) -> Response:
    from assay.api.deps import require_roles
    from assay.registry.roles import AUDIT_READERS

    require_roles(form_principal(request, csrf_token), *AUDIT_READERS)
    return see_other("/audit?verified=1#verify-result")


# -- program dashboard --------------------------------------------------------

@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, since: str = Query("", max_length=40),
                   until: str = Query("", max_length=40)) -> Response:
    from markupsafe import Markup

    from assay.api.deps import require_roles
    from assay.operate import PROGRAM_READERS, period, program_report
    from assay.operate.render import render_fragment

    require_roles(signed_in(request), *PROGRAM_READERS)
    form = {"since": since, "until": until}
    try:
        p = period(since or None, until or None)
    except InputError as exc:
        return page(request, "dashboard.html", report=None, f=form, http_status=422,
                    error=exc.render({"since": "First day", "until": "Last day"}), max_day=_today())
    with reading(request) as s:
        report = program_report(s, since=p.since, until=p.until).to_dict()
    link = "/api/program.csv?" + urlencode({"since": report["since"], "until": report["until"]})
    return page(request, "dashboard.html", report=report, f={"since": report["since"],
                "until": report["until"]}, body=Markup(render_fragment(report)),
                csv_link=link, max_day=_today())


def _today() -> str:
    from assay.store.db import utcnow

    return utcnow().date().isoformat()


# -- administration -----------------------------------------------------------

@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    from assay.api.deps import require_roles
    from assay.registry import list_users
    from assay.registry.roles import ADMIN, ROLES

    principal = signed_in(request)
    require_roles(principal, ADMIN)
    with reading(request) as s:
        users = [{"username": u.username, "display_name": u.display_name,
                  "roles": sorted(u.roles), "active": u.active} for u in list_users(s)]
    return page(request, "admin_users.html", users=users, roles=ROLES)


@router.post("/admin/users", response_class=HTMLResponse)
def add_user_form(request: Request, username: str = Form(..., max_length=100),
                  display_name: str = Form("", max_length=200),
                  roles: list[str] = Form(default_factory=list, max_length=10),
                  csrf_token: str = Form("")) -> Response:
    from assay.api.deps import require_roles
    from assay.registry import add_user, list_users
    from assay.registry.roles import ADMIN, ROLES

    principal = form_principal(request, csrf_token)
    require_roles(principal, ADMIN)
    with acting(request, principal) as (s, actor):
        user = add_user(s, actor, username, display_name=display_name, roles=roles)
        password = auth.set_password(s, actor, user.username, None, one_time=True)
        created = {"username": user.username, "password": password}
        users = [{"username": u.username, "display_name": u.display_name,
                  "roles": sorted(u.roles), "active": u.active} for u in list_users(s)]
    return page(request, "admin_users.html", users=users, roles=ROLES, created=created,
                http_status=201)
