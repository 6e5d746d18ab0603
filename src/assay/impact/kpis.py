"""Impact KPIs: definitions, observations, computed series and guardrails.

A KPI of a model version has a name, unit, direction (``increase``: higher is
better; ``decrease``: lower is better), baseline, target, guardrail threshold,
owner, cadence (``daily``, ``weekly``, ``monthly``: the window of computed values)
and a source:

* ``observations``: typed values recorded with :func:`observe` (time, value, group,
  where they came from);
* ``monitoring``: a metric computed from the monitoring windows of the version, e.g.
  ``metric: selection_rate, by: sex``: the day windows' mergeable statistics are
  merged per cadence window and the metric computed overall or per group (the same
  statistics and formulas as the monitoring rules);
* ``feedback``: the number of stakeholder feedback records per window (of one
  category when ``metric`` names it; per group when ``by: group``).

A value on the wrong side of the guardrail (below it for ``increase``, above it for
``decrease``) raises a monitoring alert, rule ``impact.kpi_guardrail:<name>``, through
:func:`assay.monitor.external.raise_alert`: it shows on the Alerts page and goes out to
the notification channels; one alert per KPI and group until it is resolved.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import InputError, NotFoundError
from assay.impact.assessment import EDITORS, _choice, _text, parse_time
from assay.impact.tables import (
    CADENCES,
    DIRECTIONS,
    KPI_SOURCES,
    ImpactFeedback,
    ImpactKpi,
    ImpactObservation,
)
from assay.registry import get_version, require_role
from assay.registry.roles import RISK_OFFICER
from assay.registry.tables import ModelVersion, User, _iso
from assay.store.audit import append_event
from assay.store.db import utcnow

GUARDRAIL_RULE = "impact.kpi_guardrail"
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")


def kpi_to_dict(k: ImpactKpi) -> dict[str, Any]:
    return {"id": k.id, "name": k.name, "unit": k.unit, "direction": k.direction,
            "baseline": k.baseline, "target": k.target, "guardrail": k.guardrail,
            "owner": k.owner, "cadence": k.cadence, "source": k.source, "metric": k.metric,
            "by": k.by, "description": k.description, "created_at": _iso(k.created_at)}


def _number(name: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{{{name}}}: expected a number, got {value!r}",
                         fields=[name]) from None
    if not math.isfinite(x):
        raise InputError(f"{{{name}}}: expected a finite number, got {value!r}", fields=[name])
    return x


def add_kpi(session: Session, actor: User, model: str, version: str, *, name: str,
            direction: str, cadence: str = "monthly", source: str = "observations",
            unit: str = "", baseline: float | None = None, target: float | None = None,
            guardrail: float | None = None, owner: str = "", metric: str = "",
            by: str = "", description: str = "") -> dict[str, Any]:
    """Define a KPI of ``model@version`` (see the module docstring)."""
    require_role(actor, *EDITORS, action="define impact KPIs")
    mv = get_version(session, model, version)
    name = (name or "").strip()
    if not _NAME.match(name):
        raise InputError(f"{{name}}: expected lower-case letters, digits, '_', '.' or '-' "
                         f"starting with a letter (at most 100), got {name!r}", fields=["name"])
    source = _choice("source", source, KPI_SOURCES)
    metric = _text("metric", metric, limit=100)
    by = _text("by", by, limit=100)
    if source == "monitoring":
        if not metric:
            raise InputError("{metric}: a KPI computed from monitoring names its metric "
                             "(e.g. selection_rate)", fields=["metric"])
        from assay.metrics._formulas import resolve_metric

        resolve_metric(metric, has_score=True)
    if source == "feedback" and by not in ("", "group"):
        raise InputError(f"{{by}}: feedback is counted overall or by 'group', got {by!r}",
                         fields=["by"])
    if source == "observations" and (metric or by):
        raise InputError("{metric}: only KPIs computed from monitoring or feedback take a "
                         "metric or 'by'", fields=["metric"])
    if session.scalars(select(ImpactKpi.id).where(ImpactKpi.model_version_id == mv.id,
                                                  ImpactKpi.name == name)).first():
        from assay.errors import ConflictError

        raise ConflictError(f"{model}@{version} already has a KPI '{name}'")
    k = ImpactKpi(model_version_id=mv.id, name=name, unit=_text("unit", unit, limit=40),
                  direction=_choice("direction", direction, DIRECTIONS),
                  baseline=_number("baseline", baseline), target=_number("target", target),
                  guardrail=_number("guardrail", guardrail),
                  owner=_text("owner", owner, limit=100),
                  cadence=_choice("cadence", cadence, CADENCES), source=source,
                  metric=metric, by=by, description=_text("description", description),
                  created_by=actor.id, created_at=utcnow())
    session.add(k)
    session.flush()
    out = kpi_to_dict(k)
    append_event(session, actor=actor, action="impact.kpi.add", subject_type="impact_kpi",
                 subject_id=k.id, payload={"model": model, "version": version, **out})
    return out


def _kpi(session: Session, mv: ModelVersion, name: str) -> ImpactKpi:
    k = session.scalars(select(ImpactKpi).where(ImpactKpi.model_version_id == mv.id,
                                                ImpactKpi.name == name)).first()
    if k is None:
        raise NotFoundError(f"{mv.model.name}@{mv.version} has no KPI '{name}' "
                            "(see `assay impact kpi list`)")
    return k


def breaches(kpi: ImpactKpi | dict[str, Any], value: float | None) -> bool:
    """Whether ``value`` is on the wrong side of the KPI's guardrail."""
    get = kpi.get if isinstance(kpi, dict) else (lambda a: getattr(kpi, a))
    g = get("guardrail")
    if g is None or value is None or not math.isfinite(value):
        return False
    return value < g if get("direction") == "increase" else value > g


def _window(at: datetime, cadence: str) -> tuple[datetime, datetime]:
    from assay.monitor.state import at_midnight, day_of, period_end, period_start

    start = period_start(day_of(at), cadence)
    return at_midnight(start), at_midnight(period_end(start, cadence))


def _guard(session: Session, actor: User | str, mv: ModelVersion, k: ImpactKpi,
           value: float, group: str, start: datetime, end: datetime) -> int | None:
    if not breaches(k, value):
        return None
    from assay.monitor.external import raise_alert

    side = "below" if k.direction == "increase" else "above"
    who = f" for {group}" if group else ""
    unit = f" {k.unit}" if k.unit else ""
    message = (f"{GUARDRAIL_RULE}:{k.name}: KPI '{k.name}'{who} is {value:.4g}{unit}, "
               f"{side} its guardrail {k.guardrail:.4g} ({k.cadence} window from "
               f"{start.date().isoformat()})")
    threshold = {"min" if k.direction == "increase" else "max": float(k.guardrail)}
    alert = raise_alert(session, actor, mv, rule=f"{GUARDRAIL_RULE}:{k.name}",
                        rule_id=GUARDRAIL_RULE, metric=k.name, label=group,
                        period=k.cadence, window_start=start, window_end=end, value=value,
                        threshold=threshold, severity="high", message=message,
                        source="impact", roles=[RISK_OFFICER])
    return None if alert is None else alert.id


def observe(session: Session, actor: User, model: str, version: str, kpi: str,
            value: float | str, *, at: datetime | str | None = None, group: str = "",
            source: str = "", note: str = "") -> dict[str, Any]:
    """Record a typed value of a KPI (source ``observations``); a value beyond the
    guardrail raises a monitoring alert (``alert`` in the result holds its id)."""
    require_role(actor, *EDITORS, action="record KPI observations")
    mv = get_version(session, model, version)
    k = _kpi(session, mv, kpi)
    if k.source != "observations":
        raise InputError(f"KPI '{kpi}' is computed from {k.source}: it takes no typed "
                         "observations")
    x = _number("value", value)
    if x is None:
        raise InputError("{value}: expected a number", fields=["value"])
    when = parse_time(at, "at")
    o = ImpactObservation(kpi_id=k.id, at=when, value=x, group=_text("group", group, limit=200),
                          source=_text("source", source, limit=300), note=_text("note", note),
                          recorded_by=actor.id, recorded_at=utcnow())
    session.add(o)
    session.flush()
    out = {"id": o.id, "kpi": k.name, "at": _iso(o.at), "value": o.value, "group": o.group,
           "source": o.source, "note": o.note}
    append_event(session, actor=actor, action="impact.kpi.observe",
                 subject_type="impact_kpi", subject_id=k.id,
                 payload={"model": model, "version": version, **out})
    start, end = _window(when, k.cadence)
    out["alert"] = _guard(session, actor, mv, k, x, o.group, start, end)
    return out


# --------------------------------------------------------------------------- series


def _feedback_series(session: Session, mv: ModelVersion, k: ImpactKpi) -> list[dict]:
    stmt = select(ImpactFeedback.received_at, ImpactFeedback.group).where(
        ImpactFeedback.model_version_id == mv.id)
    if k.metric:
        stmt = stmt.where(ImpactFeedback.category == k.metric)
    counts: dict[tuple[datetime, datetime, str], int] = defaultdict(int)
    for received, group in session.execute(stmt):
        start, end = _window(received, k.cadence)
        counts[(start, end, (group or "unknown") if k.by == "group" else "")] += 1
    return [{"start": _iso(s), "end": _iso(e), "group": g, "value": float(n), "n": n}
            for (s, e, g), n in sorted(counts.items())]


def _monitoring_series(session: Session, mv: ModelVersion, k: ImpactKpi) -> list[dict]:
    from assay.monitor.batches import reference_of
    from assay.monitor.state import WindowState, at_midnight, day_of, period_end, period_start
    from assay.monitor.tables import MonitorWindow

    windows = list(session.scalars(select(MonitorWindow).where(
        MonitorWindow.model_version_id == mv.id).order_by(MonitorWindow.start)))
    if not windows:
        return []
    _, features = reference_of(session, mv)
    bins = {name: f.bins for name, f in features.items()}
    merged: dict[date, WindowState] = {}
    for w in windows:
        start = period_start(day_of(w.start), k.cadence)
        st = WindowState.from_blob(w.state, bins)
        merged[start] = st if start not in merged else merged[start].merge(st)
    from assay.metrics._formulas import resolve_metric

    out: list[dict] = []
    for start, st in sorted(merged.items()):
        stats = st.outputs if k.metric in ("selection_rate",) else st.labeled
        if stats is None or stats.n == 0:
            continue
        s, e = _iso(at_midnight(start)), _iso(at_midnight(period_end(start, k.cadence)))
        resolve_metric(k.metric, has_score=stats.has_score)
        if not k.by:
            out.append({"start": s, "end": e, "group": "",
                        "value": _finite(stats.compute(k.metric)), "n": int(stats.n)})
            continue
        if k.by not in stats.names:
            raise InputError(f"KPI '{k.name}': the monitoring windows have no group column "
                             f"'{k.by}' (they have: {', '.join(stats.names) or 'none'})")
        _, n, labels = stats.parts(k.by)
        values = stats.compute(k.metric, by=k.by)
        for i, lab in enumerate(labels):
            if n[i] > 0:
                out.append({"start": s, "end": e, "group": "/".join(map(str, lab)),
                            "value": _finite(values[i]), "n": int(n[i])})
    return out


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def series(session: Session, model: str, version: str, kpi: str) -> dict[str, Any]:
    """A KPI's values over time: ``points`` (start, end, group, value, n) oldest first,
    with its baseline, target and guardrail, and whether each point breaches it."""
    mv = get_version(session, model, version)
    k = _kpi(session, mv, kpi)
    if k.source == "observations":
        points = [{"start": _iso(o.at), "end": None, "group": o.group, "value": o.value,
                   "n": None, "source": o.source}
                  for o in session.scalars(select(ImpactObservation)
                                           .where(ImpactObservation.kpi_id == k.id)
                                           .order_by(ImpactObservation.at,
                                                     ImpactObservation.id))]
    elif k.source == "feedback":
        points = _feedback_series(session, mv, k)
    else:
        points = _monitoring_series(session, mv, k)
    for p in points:
        p["breach"] = breaches(k, p["value"])
    return {**kpi_to_dict(k), "points": points}


def list_kpis(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """The KPIs of ``model@version`` with their latest value per group."""
    mv = get_version(session, model, version)
    out = []
    for k in session.scalars(select(ImpactKpi).where(ImpactKpi.model_version_id == mv.id)
                             .order_by(ImpactKpi.id)):
        s = series(session, model, version, k.name)
        latest: dict[str, dict] = {}
        for p in s["points"]:
            latest[p["group"]] = p
        out.append({**kpi_to_dict(k), "latest": list(latest.values()),
                    "points": s["points"]})
    return out


def evaluate(session: Session, actor: User | str, model: str, version: str
             ) -> list[dict[str, Any]]:
    """Check the latest window of every computed KPI (monitoring, feedback) against its
    guardrail and raise alerts; returns the breaches (with the alert id, None when an
    open alert already covers it)."""
    if isinstance(actor, User):
        require_role(actor, *EDITORS, action="evaluate impact KPIs")
    mv = get_version(session, model, version)
    found = []
    for k in session.scalars(select(ImpactKpi).where(ImpactKpi.model_version_id == mv.id,
                                                     ImpactKpi.source != "observations",
                                                     ImpactKpi.guardrail.is_not(None))
                             .order_by(ImpactKpi.id)):
        points = series(session, model, version, k.name)["points"]
        if not points:
            continue
        last_start = points[-1]["start"]
        for p in points:
            if p["start"] != last_start or not p["breach"]:
                continue
            start = parse_time(p["start"], "start")
            end = parse_time(p["end"], "end")
            found.append({"kpi": k.name, "group": p["group"], "value": p["value"],
                          "window": {"start": p["start"], "end": p["end"]},
                          "alert": _guard(session, actor, mv, k, p["value"], p["group"],
                                          start, end)})
    return found


def guard_closed_windows(session: Session, actor: User | str, mv: ModelVersion, *,
                         now: datetime | None = None) -> list[dict[str, Any]]:
    """Check every computed KPI (monitoring, feedback) of ``mv`` with a guardrail in the
    windows closed by ``now`` that were not checked before, and raise the alerts.

    Called by :func:`assay.monitor.run` (and the service's scheduled run) after it has
    evaluated the version's windows, so a breach needs no manual step. Idempotent: a
    breached window is recorded as a monitoring evaluation of rule
    ``impact.kpi_guardrail:<name>``, so it is not checked again, and an open alert of the
    KPI and group takes no second one. A KPI that cannot be computed (e.g. its ``by``
    column is not in the windows) is skipped here; ``assay impact kpi evaluate`` says why.
    Returns the new alerts (as :func:`assay.monitor.list_alerts` shows them).
    """
    from assay.errors import AssayError
    from assay.monitor.tables import MonitorAlert, MonitorEvaluation, alert_to_dict
    from assay.store.db import as_utc

    now = as_utc(now) if now is not None else utcnow()
    raised: list[dict[str, Any]] = []
    for k in list(session.scalars(select(ImpactKpi).where(
            ImpactKpi.model_version_id == mv.id, ImpactKpi.source != "observations",
            ImpactKpi.guardrail.is_not(None)).order_by(ImpactKpi.id))):
        rule = f"{GUARDRAIL_RULE}:{k.name}"
        seen = {(as_utc(ws), label) for ws, label in session.execute(
            select(MonitorEvaluation.window_start, MonitorEvaluation.label).where(
                MonitorEvaluation.model_version_id == mv.id, MonitorEvaluation.rule == rule))}
        try:
            points = series(session, mv.model.name, mv.version, k.name)["points"]
        except AssayError:
            continue
        for p in points:
            if not p["breach"] or not p.get("end"):
                continue
            start, end = parse_time(p["start"], "start"), parse_time(p["end"], "end")
            if end > now or (start, p["group"]) in seen:
                continue
            alert_id = _guard(session, actor, mv, k, p["value"], p["group"], start, end)
            if alert_id is not None:
                raised.append(alert_to_dict(session.get(MonitorAlert, alert_id), mv))
    return raised
