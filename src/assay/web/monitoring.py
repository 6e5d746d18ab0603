"""The monitoring pages: a version's Monitoring tab and the Alerts page.

They read through :mod:`assay.monitor.views` and act through
:func:`assay.monitor.acknowledge` and :func:`assay.monitor.resolve` (which
hold the role checks and separation of duties); the charts are the report's
inline SVG (:func:`assay.report.charts.timeseries`).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from assay.api.deps import acting
from assay.errors import NotFoundError
from assay.web.pages import _safe_next, form_principal, see_other, signed_in
from assay.web.render import page

router = APIRouter(include_in_schema=False)

#: Features or groups of a rule drawn before "show all".
WORST = 3
#: Alerts on one page of the Alerts page.
ALERTS_PER_PAGE = 50


def _day(iso: str | None) -> date:
    return date.fromisoformat(str(iso)[:10])


def _chart(rule: dict[str, Any], lab: dict[str, Any]) -> str | None:
    from assay.report.charts import TimePoint, timeseries

    points = [TimePoint(_day(p["start"]), p["value"],
                        p["ci"][0] if p["ci"] else None, p["ci"][1] if p["ci"] else None,
                        p["state"]) for p in lab["points"]]
    title = f"{rule['rule']}: {lab['label']}" if lab["label"] else rule["rule"]
    return timeseries(points, title=title, ylabel=rule["metric"], threshold=rule["threshold"])


@router.get("/models/{name}/monitoring", response_class=HTMLResponse)
def monitoring_tab(request: Request, name: str = Path(..., max_length=200),
                   version: str = Query("", max_length=100),
                   show_all: str = Query("", max_length=200, alias="all"),
                   period: str = Query("", max_length=10)) -> Response:
    from assay.api import views
    from assay.monitor.views import alert_page, series

    principal = signed_in(request)
    with acting(request, principal) as (s, _actor):
        model = views.model_detail(s, name)
        versions = model["versions"]
        selected = version or (versions[-1]["version"] if versions else "")
        if selected and selected not in {v["version"] for v in versions}:
            raise NotFoundError(f"model '{name}' has no version '{selected}'")
        data = series(s, name, selected, period=period or None) if selected else None
        alerts = alert_page(s, model=name, version=selected, per_page=20) if selected else None
    rules = []
    for rule in (data or {}).get("rules", []):
        labels = rule["labels"]
        shown = labels if show_all == rule["rule"] or len(labels) <= WORST + 1 else \
            labels[:WORST]
        rules.append({**rule, "shown": [{**lab, "chart": _chart(rule, lab)} for lab in shown],
                      "hidden": len(labels) - len(shown)})
    base = f"/models/{quote(name, safe='')}/monitoring?" + urlencode(
        {"version": selected, **({"period": period} if period else {})})
    return page(request, "monitoring.html", model=model, versions=versions, selected=selected,
                data=data, rules=rules, alerts=alerts, base=base, tab="monitoring",
                show_all=show_all, worst=WORST)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, model: str = Query("", max_length=200),
                version: str = Query("", max_length=100),
                state: str = Query("", max_length=20),
                page_no: int = Query(1, ge=1, le=10**6, alias="page"),
                flash: str = Query("", max_length=300),
                kind: str = Query("ok", max_length=10)) -> Response:
    from assay.monitor.tables import ALERT_STATES
    from assay.monitor.views import alert_page

    principal = signed_in(request)
    with acting(request, principal) as (s, actor):
        result = alert_page(s, model=model or None, version=(version or None) if model else None,
                            state=state or None, page=page_no, per_page=ALERTS_PER_PAGE,
                            actor=actor)
    filters = {k: v for k, v in (("model", model), ("version", version if model else ""),
                                 ("state", state)) if v}
    here = "/alerts" + ("?" + urlencode({**filters, "page": result["page"]}))
    pager = "/alerts?" + urlencode({**filters, "page": ""})
    return page(request, "alerts.html", result=result,
                states=ALERT_STATES, f={"model": model, "version": version, "state": state},
                here=here, pager=pager, flash=flash,
                flash_kind="error" if kind == "error" else "ok")


def _back(back: str, message: str) -> Response:
    target = _safe_next(back)
    if not target.startswith("/alerts"):
        target = "/alerts"
    sep = "&" if "?" in target else "?"
    return see_other(f"{target}{sep}flash={quote(message)}")


@router.post("/alerts/{alert_id}/ack")
def acknowledge_form(request: Request, alert_id: int = Path(..., ge=1, le=2**31 - 1),
                     note: str = Form("", max_length=5000),
                     back: str = Form("/alerts", max_length=500),
                     csrf_token: str = Form("")) -> Response:
    from assay.monitor import acknowledge

    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        acknowledge(s, actor, alert_id, note=note.strip())
    return _back(back, f"Alert #{alert_id} acknowledged.")


@router.post("/alerts/{alert_id}/resolve")
def resolve_form(request: Request, alert_id: int = Path(..., ge=1, le=2**31 - 1),
                 note: str = Form("", max_length=5000),
                 back: str = Form("/alerts", max_length=500),
                 csrf_token: str = Form("")) -> Response:
    from assay.monitor import resolve

    principal = form_principal(request, csrf_token)
    with acting(request, principal) as (s, actor):
        resolve(s, actor, alert_id, note=note.strip())
    return _back(back, f"Alert #{alert_id} resolved.")
