"""The impact report: one offline HTML page (the validation report's style, inline SVG).

Sections: the theory of impact, the KPIs against baseline, target and guardrail over
time, optional sections (the frontier chart, scenarios, sensitivity), causal estimates
with their assumptions (the latest recorded estimate of each method, see
:func:`assay.impact.analyses.recorded_causal`, then any passed to :func:`render`),
the impact register and a count of stakeholder feedback.

**Hook for optional sections.** :data:`SECTION_PROVIDERS` maps a section id
(``frontier``, ``scenarios``, ``sensitivity`` ... in the order shown) to a function
``(session, model, version) -> dict | None``. A provider returns None when it has
nothing for the version, else a dict with ``title``, optional ``note`` (text),
``svg`` (an inline SVG chart the provider drew itself, e.g. with
:mod:`assay.report.charts`), ``columns`` and ``rows`` (a table: a list of lists). The
report renders each returned section in turn; text is escaped, the SVG is inserted as
it is. :func:`render` also takes ``sections=`` directly (the same dicts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from assay.impact.analyses import SECTIONS, recorded_causal
from assay.impact.assessment import current_assessment, list_feedback, list_register
from assay.impact.kpis import list_kpis

SectionProvider = Callable[[Session, str, str], "dict[str, Any] | None"]
#: Optional report sections by id, in order (see the module docstring).
#: Registered: the latest recorded value curve, frontier, scenarios and sensitivity
#: analyses (:mod:`assay.impact.analyses`).
SECTION_PROVIDERS: dict[str, SectionProvider] = dict(SECTIONS)


def gather(session: Session, model: str, version: str) -> dict[str, Any]:
    """Everything the impact record holds about ``model@version``."""
    feedback = list_feedback(session, model, version)
    by_category: dict[str, int] = {}
    for f in feedback:
        by_category[f["category"]] = by_category.get(f["category"], 0) + 1
    sections = []
    for sid, provider in SECTION_PROVIDERS.items():
        sec = provider(session, model, version)
        if sec:
            sections.append({"id": sid, **sec})
    return {"model": model, "version": version,
            "assessment": current_assessment(session, model, version),
            "kpis": list_kpis(session, model, version),
            "register": list_register(session, model, version),
            "feedback": feedback, "feedback_by_category": by_category,
            "sections": sections, "causal": recorded_causal(session, model, version)}


def _kpi_chart(k: Mapping[str, Any]) -> str | None:
    from assay.report import charts

    points = [(p["start"][:10] + (f" {p['group']}" if p["group"] else ""), p["value"])
              for p in k["points"]][-40:]
    if not points:
        return None
    return charts.trend(points, title=f"{k['name']}" + (f" ({k['unit']})" if k["unit"] else ""))


def render(record: Mapping[str, Any], *, causal: Sequence[Mapping[str, Any]] = (),
           sections: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The impact report of a :func:`gather` record (HTML text)."""
    from markupsafe import Markup

    from assay import __version__
    from assay.impact.causal import event_study_svg
    from assay.report.html import _environment

    kpis = [{**k, "chart": Markup(_kpi_chart(k) or "")} for k in record["kpis"]]
    from assay.impact.analyses import _rows

    est = [{**c, "chart": Markup(c.get("svg") or "")} for c in record.get("causal", [])]
    for c in causal:
        svg = event_study_svg(dict(c)) if "event_study" in c else ""
        est.append({**c, "rows": _rows(c.get("n")), "chart": Markup(svg)})
    extra = [{**s, "svg": Markup(s.get("svg") or "")}
             for s in (sections if sections is not None else record.get("sections", []))]
    tpl = _environment().get_template("impact.html.j2")
    return tpl.render(rec=record, kpis=kpis, causal=est, sections=extra,
                      assay_version=__version__)


def store_report(session: Session, actor: Any, model: str, version: str, html: str, *,
                 settings: Any = None) -> str:
    """Keep an impact report as evidence of ``model@version``: stored content-addressed
    in the evidence store and audited (``impact.report``, the digest as evidence).
    Needs an editor of the impact record. Returns the digest."""
    from assay.evidence import store_bytes
    from assay.impact.assessment import EDITORS
    from assay.registry import get_version, require_role
    from assay.store.audit import append_event
    from assay.workflow._registry import settings_of

    require_role(actor, *EDITORS, action="file an impact report as evidence")
    get_version(session, model, version)
    digest = store_bytes(settings_of(session, settings), html.encode("utf-8"))
    append_event(session, actor=actor, action="impact.report", subject_type="model_version",
                 subject_id=f"{model}@{version}", payload={"bytes": len(html.encode())},
                 evidence={"impact_report": digest})
    return digest
