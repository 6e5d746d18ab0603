"""The Impact tab of a model version: the theory of impact (shown, and edited as YAML by
those who may), KPIs with their values over time, the register and feedback.

It reads through :func:`assay.impact.report.gather` and saves through
:func:`assay.impact.save_assessment` (which holds the role check and the audit event);
a theory with an error is shown again with the error naming its line.
"""

from __future__ import annotations

from urllib.parse import quote

import yaml
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from assay.api.deps import acting
from assay.errors import AssayError, NotFoundError
from assay.web.pages import form_principal, see_other, signed_in
from assay.web.render import page

router = APIRouter(include_in_schema=False)


def _view(request: Request, name: str, version: str, *, draft: str | None = None,
          error: str = "", flash: str = "", status: int = 200) -> Response:
    from assay.api import views
    from assay.impact import EDITORS
    from assay.impact.report import _kpi_chart, gather

    principal = signed_in(request)
    with acting(request, principal) as (s, actor):
        s.info["settings"] = request.app.state.settings  # recorded analyses are evidence
        model = views.model_detail(s, name)
        versions = model["versions"]
        selected = version or (versions[-1]["version"] if versions else "")
        if selected and selected not in {v["version"] for v in versions}:
            raise NotFoundError(f"model '{name}' has no version '{selected}'")
        rec = gather(s, name, selected) if selected else None
        may_edit = bool(actor.active and actor.roles & set(EDITORS))
    kpis = [{**k, "chart": _kpi_chart(k)} for k in (rec or {}).get("kpis", [])]
    if draft is None and rec and rec["assessment"]:
        draft = yaml.safe_dump(rec["assessment"]["theory"], sort_keys=False,
                               allow_unicode=True)
    return page(request, "impact.html", http_status=status, model=model, versions=versions,
                selected=selected, rec=rec, kpis=kpis, tab="impact", may_edit=may_edit,
                draft=draft or "", error=error, flash=flash)


@router.get("/models/{name}/impact", response_class=HTMLResponse)
def impact_tab(request: Request, name: str = Path(..., max_length=200),
               version: str = Query("", max_length=100),
               flash: str = Query("", max_length=300)) -> Response:
    return _view(request, name, version, flash=flash)


@router.post("/models/{name}/impact/assessment", response_class=HTMLResponse)
def save_theory(request: Request, name: str = Path(..., max_length=200),
                version: str = Form(..., max_length=100),
                theory: str = Form(..., max_length=200_000),
                csrf_token: str = Form("")) -> Response:
    from assay.errors import PermissionDenied
    from assay.impact import save_assessment

    principal = form_principal(request, csrf_token)
    try:
        with acting(request, principal) as (s, actor):
            saved = save_assessment(s, actor, name, version, theory, source="theory")
    except PermissionDenied:
        raise
    except AssayError as exc:
        return _view(request, name, version, draft=theory, error=exc.message, status=400)
    message = quote(f"Revision {saved['revision']} saved.")
    return see_other(f"/models/{quote(name, safe='')}/impact?version={quote(version)}"
                     f"&flash={message}")
