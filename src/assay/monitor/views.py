"""What the faces read of monitoring: each rule's values over time, and alerts a page at a time.

:func:`series` gives, per rule and per feature or group, the value of every
evaluated window with its interval, threshold and state (the latest
evaluation of each window, as :func:`assay.monitor.status` shows it), ready
to be drawn. It reads only the columns it needs, so a year of daily windows
of a dozen rules takes a few tens of milliseconds.

:func:`alert_page` lists alerts newest first, a page at a time, with who
acknowledged and resolved each one, when, and the note each of them wrote
(taken from the audit trail, which keeps both notes), and whether a given
user may acknowledge or resolve it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assay.errors import InputError, NotFoundError
from assay.monitor.roles import ACKNOWLEDGERS, RESOLVERS
from assay.monitor.service import alert_to_dict
from assay.monitor.tables import ALERT_STATES, MonitorAlert, MonitorEvaluation, MonitorWindow
from assay.registry import get_version
from assay.registry.tables import Model, ModelVersion, User, _iso
from assay.store.audit import AuditEvent

#: Alerts per page unless asked otherwise, and the most one page may hold.
PER_PAGE = 50
MAX_PER_PAGE = 500

_STATE_RANK = {"fail": 0, "error": 1, "warn": 2, "pass": 3, "skip": 4}


def _excess(value: float | None, threshold: dict[str, Any]) -> float:
    """How far ``value`` lies beyond ``threshold`` (negative inside it, -inf unknown)."""
    if value is None or not threshold:
        return -math.inf
    out = -math.inf
    hi, lo = threshold.get("max"), threshold.get("min")
    if isinstance(hi, int | float):
        out = max(out, value - hi)
    if isinstance(lo, int | float):
        out = max(out, lo - value)
    return out


def series(session: Session, model: str, version: str, *,
           period: str | None = None) -> dict[str, Any]:
    """Each rule's value per window over time, per feature or group, worst first.

    Returns ``windows`` (days ingested, first and last day, rows, labelled
    rows), ``last_evaluation`` (when a window was last evaluated),
    ``periods`` evaluated and the ``period`` shown (``period`` when given,
    else that of the latest evaluation), and ``rules`` in the order they
    were evaluated; each rule has its id, metric, latest threshold and
    ``skipped`` windows it could not measure (with the reason) and
    ``labels`` (features or groups) ordered worst first: most failed
    windows, then most warnings, then furthest beyond the threshold. Each
    label has ``points``: window start and end, value, interval, threshold,
    state, rows and note, oldest first. A window evaluated again (more labels
    arrived) shows its latest evaluation only, as in :func:`status`.
    """
    mv = get_version(session, model, version)
    days, first, last, rows, labeled = session.execute(
        select(func.count(MonitorWindow.id), func.min(MonitorWindow.start),
               func.max(MonitorWindow.start), func.coalesce(func.sum(MonitorWindow.rows), 0),
               func.coalesce(func.sum(MonitorWindow.labeled), 0))
        .where(MonitorWindow.model_version_id == mv.id)).one()
    E = MonitorEvaluation
    periods = list(session.scalars(select(E.period).where(E.model_version_id == mv.id)
                                   .group_by(E.period).order_by(func.max(E.id).desc())))
    if period is not None and period not in periods and periods:
        raise InputError(f"{model}@{version} has no {period} evaluations (evaluated: "
                         f"{', '.join(sorted(periods))})")
    shown = period or (periods[0] if periods else None)
    last_eval = session.scalar(select(func.max(E.created_at)).where(E.model_version_id == mv.id))
    out_rules: list[dict[str, Any]] = []
    if shown is not None:
        latest: dict[tuple[Any, str], list[tuple]] = {}
        order: dict[str, int] = {}
        days_iso: dict[Any, str | None] = {}  # a year of windows has 365 distinct days

        def iso(value: Any) -> str | None:
            if value not in days_iso:
                days_iso[value] = _iso(value)
            return days_iso[value]

        for row in session.execute(
                select(E.window_start, E.window_end, E.rule, E.rule_id, E.metric, E.label,
                       E.value, E.ci_low, E.ci_high, E.threshold, E.state, E.n, E.basis,
                       E.note)
                .where(E.model_version_id == mv.id, E.period == shown).order_by(E.id)):
            key = (iso(row.window_start), row.rule)
            kept = latest.setdefault(key, [])
            if kept and kept[0].basis != row.basis:
                kept.clear()
            kept.append(row)
            order.setdefault(row.rule, len(order))
        rules: dict[str, dict[str, Any]] = {}
        for (start, rule_key), evs in sorted(latest.items(), key=lambda kv: kv[0][0]):
            for ev in evs:
                r = rules.setdefault(rule_key, {"rule": rule_key, "rule_id": ev.rule_id,
                                                "metric": ev.metric, "threshold": {},
                                                "labels": {}, "skipped": []})
                r["threshold"] = dict(ev.threshold or {})
                if ev.label == "" and ev.value is None:  # the rule could not be measured
                    r["skipped"].append({"start": start, "end": iso(ev.window_end),
                                         "state": ev.state, "note": ev.note})
                    continue
                lab = r["labels"].setdefault(ev.label, {"label": ev.label, "points": []})
                lab["points"].append({
                    "start": start, "end": iso(ev.window_end), "value": ev.value,
                    "ci": None if ev.ci_low is None else [ev.ci_low, ev.ci_high],
                    "threshold": dict(ev.threshold or {}), "state": ev.state, "n": ev.n,
                    "note": ev.note})
        for rule_key in sorted(rules, key=order.__getitem__):
            r = rules[rule_key]
            labels = []
            for lab in r["labels"].values():
                pts = lab["points"]
                states = [p["state"] for p in pts]
                lab["fails"] = states.count("fail")
                lab["warns"] = states.count("warn")
                lab["last_state"] = states[-1]
                lab["last_value"] = pts[-1]["value"]
                lab["worst_excess"] = max((_excess(p["value"], p["threshold"]) for p in pts),
                                          default=-math.inf)
                labels.append(lab)
            labels.sort(key=lambda lab: (-lab["fails"], -lab["warns"], -lab["worst_excess"],
                                         _STATE_RANK.get(lab["last_state"], 9), lab["label"]))
            for lab in labels:  # -inf is not JSON; None says "nothing to compare"
                if lab["worst_excess"] == -math.inf:
                    lab["worst_excess"] = None
            r["labels"] = labels
            r["fails"] = sum(lab["fails"] for lab in labels)
            r["warns"] = sum(lab["warns"] for lab in labels)
            out_rules.append(r)
    return {
        "model": model, "version": version,
        "windows": {"days": int(days), "first": _iso(first), "last": _iso(last),
                    "rows": int(rows), "labeled": int(labeled)},
        "last_evaluation": _iso(last_eval), "periods": periods, "period": shown,
        "rules": out_rules,
    }


# --------------------------------------------------------------------------- alerts


def _states(state: str | Iterable[str] | None) -> list[str] | None:
    if state is None:
        return None
    states = [state] if isinstance(state, str) else list(state)
    bad = [s for s in states if s not in ALERT_STATES]
    if bad:
        raise InputError(f"alert state '{bad[0]}': expected one of {', '.join(ALERT_STATES)}")
    return states


def may_acknowledge(actor: User, alert: dict[str, Any]) -> bool:
    """Whether ``actor`` may acknowledge ``alert`` now (its role, and the alert is open)."""
    return actor.active and bool(actor.roles & set(ACKNOWLEDGERS)) and alert["state"] == "open"


def may_resolve(actor: User, alert: dict[str, Any], developer_id: int | None) -> bool:
    """Whether ``actor`` may resolve ``alert`` now: a resolver's role, not the developer
    of the version (separation of duties), and the alert not resolved yet."""
    return (actor.active and bool(actor.roles & set(RESOLVERS))
            and actor.id != developer_id and alert["state"] != "resolved")


def alert_page(session: Session, *, model: str | None = None, version: str | None = None,
               state: str | Iterable[str] | None = None, page: int = 1,
               per_page: int = PER_PAGE, actor: User | None = None) -> dict[str, Any]:
    """One page of alerts, newest first, with who took each in hand and their notes.

    Returns ``items``, ``total``, ``page``, ``pages`` and ``per_page``. Each
    item is :func:`alert_to_dict` plus ``acknowledged_by``, ``resolved_by``
    (user names), ``ack_note`` and ``resolve_note`` (from the audit trail)
    and, when ``actor`` is given, ``can_acknowledge`` and ``can_resolve``.
    A page past the last gives the last page.
    """
    if page < 1:
        raise InputError(f"page: expected a number from 1, got {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InputError(f"alerts per page: expected 1 to {MAX_PER_PAGE}, got {per_page}")
    states = _states(state)
    where = []
    if model is not None:
        if version is not None:
            where.append(MonitorAlert.model_version_id == get_version(session, model,
                                                                      version).id)
        else:
            m = session.scalars(select(Model).where(Model.name == model)).first()
            if m is None:
                raise NotFoundError(f"unknown model '{model}' (see `assay model list`)")
            where.append(ModelVersion.model_id == m.id)
    if states is not None:
        where.append(MonitorAlert.state.in_(states))
    joined = select(MonitorAlert.id).join(
        ModelVersion, ModelVersion.id == MonitorAlert.model_version_id).where(*where)
    total = session.scalar(select(func.count()).select_from(joined.subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(page, pages)
    stmt = (select(MonitorAlert, ModelVersion)
            .join(ModelVersion, ModelVersion.id == MonitorAlert.model_version_id)
            .where(*where).order_by(MonitorAlert.id.desc())
            .offset((page - 1) * per_page).limit(per_page))
    found = list(session.execute(stmt))
    user_ids = {i for a, _ in found for i in (a.acknowledged_by, a.resolved_by) if i}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
                 .all()) if user_ids else {}
    notes: dict[tuple[str, str], str] = {}
    if found:
        for subject, action, payload in session.execute(
                select(AuditEvent.subject_id, AuditEvent.action, AuditEvent.payload)
                .where(AuditEvent.subject_type == "monitor_alert",
                       AuditEvent.action.in_(("alert.ack", "alert.resolve")),
                       AuditEvent.subject_id.in_([str(a.id) for a, _ in found]))
                .order_by(AuditEvent.seq)):
            notes[(subject, action)] = str((payload or {}).get("note") or "")
    items = []
    for a, mv in found:
        item = alert_to_dict(a, mv)
        item["acknowledged_by"] = names.get(a.acknowledged_by)
        item["resolved_by"] = names.get(a.resolved_by)
        item["ack_note"] = notes.get((str(a.id), "alert.ack"), "")
        item["resolve_note"] = notes.get((str(a.id), "alert.resolve"), "")
        if actor is not None:
            item["can_acknowledge"] = may_acknowledge(actor, item)
            item["can_resolve"] = may_resolve(actor, item, mv.created_by)
        items.append(item)
    return {"items": items, "total": int(total), "page": page, "pages": pages,
            "per_page": per_page}


__all__ = ["MAX_PER_PAGE", "PER_PAGE", "alert_page", "may_acknowledge", "may_resolve",
           "series"]
