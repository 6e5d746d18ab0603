"""The Incidents pages: the list with overdue marks and one incident with its deadlines,
playbook steps and post-mortem, and forms to acknowledge, mitigate, resolve and close.

They read through :func:`assay.operate.list_incidents` and
:func:`assay.operate.show_incident` and act through the domain functions, which hold
the role checks, the order of the states and the policy's rules for closing (a
post-mortem, a second person). Forms carry the session's CSRF token.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from assay.api.deps import acting
from assay.errors import AssayError
from assay.web.pages import form_principal, see_other, signed_in
from assay.web.render import page

router = APIRouter(include_in_schema=False)

ID = Path(..., ge=1, le=2**31 - 1)
#: What each form does: the domain function's name in assay.operate and what the flash says.
ACTIONS = {"ack": ("acknowledge_incident", "acknowledged"),
           "mitigate": ("mitigate_incident", "marked mitigated"),
           "resolve": ("resolve_incident", "resolved"),
           "close": ("close_incident", "closed")}


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(request: Request, state: str = Query("", max_length=20),
                   model: str = Query("", max_length=200),
                   overdue: str = Query("", max_length=5)) -> Response:
    from assay.operate import list_incidents
    from assay.operate.incident_tables import INCIDENT_STATES

    principal = signed_in(request)
    with acting(request, principal) as (s, _actor):
        items = list_incidents(s, state=state or None, model=model or None,
                               overdue=bool(overdue))
    return page(request, "incidents.html", items=items, states=INCIDENT_STATES,
                f={"state": state, "model": model, "overdue": bool(overdue)})


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: int = ID,
                  flash: str = Query("", max_length=500),
                  kind: str = Query("ok", max_length=10)) -> Response:
    from assay.operate import show_incident
    from assay.operate.incidents import HANDLERS, RESOLVERS

    principal = signed_in(request)
    with acting(request, principal) as (s, _actor):
        inc = show_incident(s, incident_id)
    roles = set(principal.roles)
    may = {"ack": inc["state"] == "open" and bool(roles & set(HANDLERS)),
           "mitigate": inc["state"] == "acknowledged" and bool(roles & set(HANDLERS)),
           "resolve": inc["state"] == "mitigated" and bool(roles & set(RESOLVERS)),
           "close": inc["state"] == "resolved" and bool(roles & set(inc["closers"]))}
    return page(request, "incident.html", inc=inc, may=may, flash=flash,
                flash_kind="error" if kind == "error" else "ok")


@router.post("/incidents/{incident_id}/{action}")
def incident_form(request: Request, incident_id: int = ID,
                  action: str = Path(..., pattern="^(ack|mitigate|resolve|close)$"),
                  note: str = Form("", max_length=5000), csrf_token: str = Form("")
                  ) -> Response:
    import assay.operate as op

    principal = form_principal(request, csrf_token)
    name, done = ACTIONS[action]
    here = f"/incidents/{incident_id}"
    try:
        with acting(request, principal) as (s, actor):
            inc = getattr(op, name)(s, actor, incident_id, note=note.strip())
            message = (f"Incident #{incident_id}: close requested; a second person must "
                       "confirm it." if action == "close" and inc.state != "closed"
                       else f"Incident #{incident_id} {done}.")
    except AssayError as exc:  # refused: nothing was written; say why on the page
        if getattr(exc, "code", "") == "not_found":
            raise
        return see_other(f"{here}?" + urlencode({"flash": str(exc)[:480], "kind": "error"}))
    return see_other(f"{here}?flash={quote(message)}")
