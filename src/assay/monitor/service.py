"""Evaluate closed windows, raise alerts, take them in hand.

:func:`run` evaluates every closed window not yet evaluated with the rules
of the version's policy and tier, and raises alerts; it is idempotent (a
second run finds nothing new) and its cost per window does not depend on
the length of the history: only the windows to evaluate, their predecessor
and the last few evaluations of each rule are read. Rules that read labels
are evaluated again when more labels have arrived for a window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from assay.checks.base import JudgeOn, SkipCheck, Status, judge
from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied, PolicyError
from assay.monitor.attestations import attest_window
from assay.monitor.batches import reference_of
from assay.monitor.roles import ACKNOWLEDGERS, RESOLVERS, RUNNERS
from assay.monitor.rules import RuleContext, measure, metric_of, needs_labels
from assay.monitor.state import (
    WindowState,
    at_midnight,
    day_of,
    period_end,
    period_start,
    periods_between,
)
from assay.monitor.tables import (
    ALERT_STATES,
    MonitorAlert,
    MonitorEvaluation,
    MonitorReference,
    MonitorRow,
    MonitorWindow,
    alert_to_dict,
)
from assay.notify import notify
from assay.policy import Policy, load_policy
from assay.policy.monitoring import Monitoring, MonitorRule
from assay.registry import get_version, latest_certification, require_role
from assay.registry.roles import SCHEDULER_ACTOR
from assay.registry.tables import Model, ModelVersion, User, _iso
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

_PG_LOCK = 0x6173736D6F6E  # "assmon": one evaluation of a version at a time


@dataclass
class VersionRun:
    model: str
    version: str
    policy: str
    tier: str
    window: str
    windows_evaluated: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    purged_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "policy": self.policy,
                "tier": self.tier, "window": self.window,
                "windows_evaluated": list(self.windows_evaluated), "alerts": list(self.alerts),
                "purged_rows": self.purged_rows}


@dataclass
class RunResult:
    versions: list[VersionRun]

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [a for v in self.versions for a in v.alerts]

    def to_dict(self) -> dict[str, Any]:
        return {"versions": [v.to_dict() for v in self.versions], "alerts": self.alerts}


# --------------------------------------------------------------------------- policy


def plan_of(session: Session, mv: ModelVersion, *, policy: str | Policy | None = None,
            tier: str | None = None) -> tuple[Policy, str, Monitoring]:
    """The policy, tier and monitoring plan a version is monitored under.

    ``policy``/``tier`` when given; else those of the version's latest
    certification; else the model's risk tier with ``policy``.
    """
    name = f"{mv.model.name}@{mv.version}"
    cert = latest_certification(session, mv.id)
    if policy is None:
        if cert is None:
            raise InputError(f"{name} has no certification to take the policy from: pass "
                             "--policy (and --tier unless the model has a risk tier)")
        try:
            pol = _certified_policy(session, cert)
        except PolicyError as exc:
            raise InputError(f"{name} was certified under policy '{cert.policy_name}', which "
                             f"cannot be loaded here ({exc}); pass --policy") from None
    else:
        pol = load_policy(policy)
    tier = tier or (cert.tier if cert is not None else None) or mv.model.tier
    if not tier:
        raise InputError(f"{name} has neither a certification nor a risk tier: pass --tier")
    t = pol.tier(tier)
    if t.monitoring is None or not t.monitoring.rules:
        raise PolicyError(f"{pol.source}: tier '{tier}' has no monitoring rules (add a "
                          "'monitoring:' section with rules to the tier)")
    return pol, tier, t.monitoring


def _certified_policy(session: Session, cert: Any) -> Policy:
    """The policy file a certification was recorded under (shipped or registered, by its
    digest); a store that does not know the digest falls back to the shipped name."""
    from assay.registry.policies import known_policy

    try:
        return known_policy(session, {"name": cert.policy_name, "version": cert.policy_version,
                                      "sha256": cert.policy_digest})
    except (ConflictError, InputError, NotFoundError):
        return load_policy(cert.policy_name)


def certified_values(session: Session, mv: ModelVersion) -> dict[str, float]:
    """The overall value of each performance metric in the latest certification."""
    cert = latest_certification(session, mv.id)
    if cert is None:
        return {}
    from assay.config import Settings, load_settings
    from assay.evidence import open_artifact

    settings = session.info.get("settings")
    settings = settings if isinstance(settings, Settings) else load_settings()
    try:
        results = json.loads(open_artifact(settings, cert.results_digest))
    except Exception:  # the evidence store is elsewhere: no certified values
        return {}
    out: dict[str, float] = {}
    for check in results.get("checks", []) or []:
        cid = str(check.get("id", ""))
        if not cid.startswith("performance."):
            continue
        metric = cid.split(".", 1)[1]
        if metric == "metric":  # performance.metric names its metric in the details
            metric = str((check.get("details") or {}).get("metric") or "")
        values = [m.get("value") for m in check.get("measurements", [])
                  if m.get("label") == "overall" and m.get("value") is not None]
        value = values[0] if values else check.get("value")
        if isinstance(value, int | float):
            out[metric] = float(value)
    return out


# --------------------------------------------------------------------------- run


def _versions(session: Session, model: str | None, version: str | None) -> list[ModelVersion]:
    if version is not None:
        if model is None:
            raise InputError("a version needs its model")
        return [get_version(session, model, version)]
    stmt = (select(ModelVersion).join(MonitorReference,
                                      MonitorReference.model_version_id == ModelVersion.id)
            .order_by(ModelVersion.id))
    if model is not None:
        m = session.scalars(select(Model).where(Model.name == model)).first()
        if m is None:
            raise NotFoundError(f"unknown model '{model}' (see `assay model list`)")
        stmt = stmt.where(ModelVersion.model_id == m.id)
    return list(session.scalars(stmt))


def _lock(session: Session, version_id: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k, :v)"),
                        {"k": _PG_LOCK & 0x7FFFFFFF, "v": version_id})
    else:  # take SQLite's write lock before reading what was evaluated
        session.execute(update(MonitorReference)
                        .where(MonitorReference.model_version_id == version_id)
                        .values(source=MonitorReference.source))


def run(session: Session, actor: User, model: str | None = None, version: str | None = None, *,
        policy: str | Policy | None = None, tier: str | None = None,
        now: datetime | None = None) -> RunResult:
    """Evaluate every closed window not yet evaluated and raise alerts (idempotent)."""
    require_role(actor, *RUNNERS, action="run monitoring evaluations")
    return _run(session, actor, model, version, policy=policy, tier=tier, now=now)


#: The audit actor of the service's scheduled evaluations. It is no user: nobody can sign
#: in as it or hold a token for it, and no user may be created under its name.
SCHEDULER = SCHEDULER_ACTOR


def run_scheduled(session: Session, model: str, version: str, *,
                  now: datetime | None = None) -> RunResult:
    """The service's scheduled evaluation of one version, recorded as :data:`SCHEDULER`.

    Not reachable with anyone's credentials: only the service's own periodic
    job calls it (``ASSAY_MONITOR_INTERVAL``), with the version's own plan
    (the policy and tier of its latest certification, else its risk tier).
    """
    return _run(session, SCHEDULER, model, version, policy=None, tier=None, now=now)


def monitored_versions(session: Session) -> list[tuple[str, str]]:
    """(model, version) of every version that has monitoring data, in registration order."""
    return [(mv.model.name, mv.version) for mv in _versions(session, None, None)]


def _run(session: Session, actor: User | str, model: str | None, version: str | None, *,
         policy: str | Policy | None, tier: str | None, now: datetime | None) -> RunResult:
    now = as_utc(now) if now is not None else utcnow()
    out = []
    for mv in _versions(session, model, version):
        out.append(_run_version(session, actor, mv, policy=policy, tier=tier, now=now))
    return RunResult(out)


def _run_version(session: Session, actor: User | str, mv: ModelVersion, *,
                 policy: str | Policy | None, tier: str | None, now: datetime) -> VersionRun:
    pol, tier_name, plan = plan_of(session, mv, policy=policy, tier=tier)
    name = f"{mv.model.name}@{mv.version}"
    result = VersionRun(mv.model.name, mv.version, pol.name, tier_name, plan.window)
    if session.get(MonitorReference, mv.id) is None:
        result.alerts.extend(_kpi_guardrails(session, actor, mv, now))
        return result
    _lock(session, mv.id)
    period = plan.window
    pending, done = _pending(session, mv, plan, now)
    _, ref_features = reference_of(session, mv)
    from assay.metrics.profile import Profile

    reference = Profile(ref_features, rows=0)
    bins = {k: v.bins for k, v in ref_features.items()}
    cache: dict[date, WindowState | None] = {}

    def state(p: date) -> WindowState | None:
        """The merged days of the window starting on ``p`` (None without data)."""
        if p not in cache:
            merged: WindowState | None = None
            for blob in session.scalars(select(MonitorWindow.state).where(
                    MonitorWindow.model_version_id == mv.id,
                    MonitorWindow.start >= at_midnight(p),
                    MonitorWindow.start < at_midnight(period_end(p, period)))
                    .order_by(MonitorWindow.start)):
                st = WindowState.from_blob(blob, bins)
                merged = st if merged is None else merged.merge(st)
            cache[p] = merged
        return cache[p]

    first_day = session.scalar(select(func.min(MonitorWindow.start)).where(
        MonitorWindow.model_version_id == mv.id))
    first_p = period_start(day_of(first_day), period) if first_day is not None else None
    settings = pol.settings
    baseline = certified_values(session, mv)
    for p, labeled_p in pending:
        todo = [r for r in plan.rules
                if (p, r.key) not in done or (needs_labels(r) and done[(p, r.key)] != labeled_p)]
        if not todo:
            continue
        current = state(p)
        assert current is not None
        ctx = RuleContext(
            reference=reference, current=current,
            previous=state(period_start(p - timedelta(days=1), period)),
            first=state(first_p) if first_p is not None and first_p != p else None,
            min_group_size=settings.min_group_size,
            n_boot=min(settings.bootstrap.replicates, 1000),
            confidence=settings.bootstrap.confidence, seed=settings.bootstrap.seed,
            baseline=baseline)
        fails = 0
        window_rows: list[MonitorEvaluation] = []
        alert_ids: list[int] = []
        for rule in todo:
            evs = _evaluate(session, mv, pol, tier_name, period, p, rule, ctx, labeled_p)
            window_rows.extend(evs)
            for ev in evs:
                if ev.state != Status.FAIL:
                    continue
                fails += 1
                alert = _maybe_alert(session, actor, mv, rule, ev, period, p)
                if alert is not None:
                    result.alerts.append(alert_to_dict(alert, mv))
                    alert_ids.append(alert.id)
        result.windows_evaluated.append(p.isoformat())
        evidence = {"policy": "sha256:" + pol.sha256}
        signed = attest_window(session, mv, pol, tier_name, period, p, window_rows,
                               failed=fails, alerts=alert_ids, evaluated_at=now)
        if signed is not None:
            evidence["attestation"] = signed.envelope_digest
        append_event(session, actor=actor, action="monitor.evaluate",
                     subject_type="model_version", subject_id=name,
                     payload={"period": period, "window_start": p.isoformat(),
                              "policy": pol.name, "tier": tier_name,
                              "rules": [r.key for r in todo], "failed_measurements": fails},
                     evidence=evidence)
    result.alerts.extend(_kpi_guardrails(session, actor, mv, now))
    result.purged_rows = _purge(session, actor, mv, plan.retention_days, now)
    session.flush()
    return result


def _kpi_guardrails(session: Session, actor: User | str, mv: ModelVersion,
                    now: datetime) -> list[dict[str, Any]]:
    """The version's computed impact KPIs (monitoring, feedback) checked against their
    guardrails for the windows closed by ``now`` and not checked before: the alerts raised."""
    from assay.impact.kpis import guard_closed_windows

    return guard_closed_windows(session, actor, mv, now=now)


def _pending(session: Session, mv: ModelVersion, plan: Monitoring, now: datetime
             ) -> tuple[list[tuple[date, int]], dict[tuple[date, str], int]]:
    """The closed windows with a rule to evaluate, with their labelled rows, in order;
    and what was evaluated on them (rule -> labelled rows it saw).

    Daily windows are found by the database (a window is pending when one of the plan's
    rules has no evaluation on it, or a rule that reads labels none on its current
    number of labelled rows), so only pending windows are read, however long the
    history. Weekly and monthly windows are merges of days: one small row per day, and
    one per evaluated window and rule, are read to find them.
    """
    period = plan.window
    ev = MonitorEvaluation
    if period == "daily":
        missing = []
        for rule in plan.rules:
            cond = [ev.model_version_id == mv.id, ev.period == period,
                    ev.window_start == MonitorWindow.start, ev.rule == rule.key]
            if needs_labels(rule):
                cond.append(ev.basis == MonitorWindow.labeled)
            missing.append(~exists().where(*cond))
        rows = session.execute(
            select(MonitorWindow.start, MonitorWindow.labeled)
            .where(MonitorWindow.model_version_id == mv.id,
                   MonitorWindow.end <= now, or_(*missing))
            .order_by(MonitorWindow.start)).all()
        pending = [(day_of(start), int(lab)) for start, lab in rows]
        if not pending:
            return [], {}
        starts = [at_midnight(p) for p, _ in pending]
        query = select(ev.window_start, ev.rule, func.max(ev.basis)).where(
            ev.model_version_id == mv.id, ev.period == period, ev.window_start.in_(starts))
    else:
        groups: dict[date, int] = {}
        for start, lab in session.execute(select(MonitorWindow.start, MonitorWindow.labeled)
                                          .where(MonitorWindow.model_version_id == mv.id)
                                          .order_by(MonitorWindow.start)):
            p = period_start(day_of(start), period)
            groups[p] = groups.get(p, 0) + int(lab)
        pending = [(p, lab) for p, lab in sorted(groups.items())
                   if at_midnight(period_end(p, period)) <= now]
        query = select(ev.window_start, ev.rule, func.max(ev.basis)).where(
            ev.model_version_id == mv.id, ev.period == period)
    done: dict[tuple[date, str], int] = {}
    # one row per window and rule (not per measured feature or group)
    for ws, rule_key, basis in session.execute(query.group_by(ev.window_start, ev.rule)):
        k = (day_of(ws), rule_key)
        done[k] = max(done.get(k, -1), int(basis))
    return pending, done


def _evaluate(session: Session, mv: ModelVersion, pol: Policy, tier: str, period: str,
              p: date, rule: MonitorRule, ctx: RuleContext, basis: int
              ) -> list[MonitorEvaluation]:
    spec = rule.spec
    start, end = at_midnight(p), at_midnight(period_end(p, period))
    common = dict(model_version_id=mv.id, policy_name=pol.name, tier=tier, period=period,
                  window_start=start, window_end=end, rule=rule.key, rule_id=spec.id,
                  metric=metric_of(rule), threshold=spec.threshold.to_dict()
                  if spec.threshold else {}, basis=basis if needs_labels(rule) else 0,
                  created_at=utcnow())
    try:
        measurements = measure(rule, ctx)
    except SkipCheck as skip:
        measurements = []
        note = str(skip)
    else:
        note = "" if measurements else "nothing to measure"
    rows = []
    if not measurements:
        rows.append(MonitorEvaluation(label="", value=None, state=str(Status.SKIP), note=note,
                                      **common))
    for m in measurements:
        if m.judged:
            status = judge(m, spec.threshold, spec.judge_on or JudgeOn.POINT)
        else:
            status = Status.SKIP
        ci = m.ci
        rows.append(MonitorEvaluation(
            label=m.label, value=_finite(m.value), ci_low=_finite(ci[0]) if ci else None,
            ci_high=_finite(ci[1]) if ci else None, state=str(status), n=m.n,
            note=m.note or "", **common))
    session.add_all(rows)
    session.flush()
    return rows


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if x == x and x not in (float("inf"), float("-inf")) else None


def _maybe_alert(session: Session, actor: User | str, mv: ModelVersion, rule: MonitorRule,
                 ev: MonitorEvaluation, period: str, p: date) -> MonitorAlert | None:
    if rule.consecutive > 1:
        earlier = session.execute(
            select(MonitorEvaluation.window_start, MonitorEvaluation.state)
            .where(MonitorEvaluation.model_version_id == mv.id,
                   MonitorEvaluation.period == period, MonitorEvaluation.rule == rule.key,
                   MonitorEvaluation.label == ev.label,
                   MonitorEvaluation.window_start < at_midnight(p))
            .order_by(MonitorEvaluation.window_start.desc(), MonitorEvaluation.id.desc())
            .limit(rule.consecutive * 4)).all()
        latest: dict[date, str] = {}
        for ws, st in earlier:
            latest.setdefault(day_of(ws), st)
        expect = p
        for _ in range(rule.consecutive - 1):
            expect = period_start(expect - timedelta(days=1), period)
            if latest.get(expect) != str(Status.FAIL):
                return None
    last = session.scalars(select(MonitorAlert).where(
        MonitorAlert.model_version_id == mv.id, MonitorAlert.rule == rule.key,
        MonitorAlert.label == ev.label).order_by(MonitorAlert.id.desc()).limit(1)).first()
    if last is not None:
        if last.state != "resolved" or day_of(last.window_start) == p:
            return None  # the open alert covers it
        if periods_between(day_of(last.window_start), p, period) <= rule.cooldown:
            return None
    spec = rule.spec
    ci = f" (CI {ev.ci_low:.4g} to {ev.ci_high:.4g})" if ev.ci_low is not None else ""
    value = "n/a" if ev.value is None else f"{ev.value:.4g}"
    threshold = spec.threshold.describe() if spec.threshold else ""
    message = (f"{rule.key}: {ev.label or ev.metric} {ev.metric} {value}{ci} in the "
               f"{period} window from {p.isoformat()}, required {threshold}")
    alert = MonitorAlert(
        model_version_id=mv.id, evaluation_id=ev.id, rule=rule.key, rule_id=spec.id,
        metric=ev.metric, label=ev.label, period=period, window_start=ev.window_start,
        window_end=ev.window_end, value=ev.value, ci_low=ev.ci_low, ci_high=ev.ci_high,
        threshold=dict(ev.threshold or {}), severity=str(spec.severity), action=rule.action,
        state="open", message=message, created_at=utcnow())
    session.add(alert)
    session.flush()
    append_event(session, actor=actor, action="monitor.alert", subject_type="monitor_alert",
                 subject_id=alert.id, payload=alert_to_dict(alert, mv))
    # queued in this transaction: the alert and its notifications commit together
    notify(session, actor, "monitor.alert", f"{mv.model.name}@{mv.version}: {message}",
           alert_to_dict(alert, mv), roles=rule.notify.roles, channels=rule.notify.channels)
    return alert


def _purge(session: Session, actor: User | str, mv: ModelVersion, retention_days: int,
           now: datetime) -> int:
    cutoff = at_midnight(day_of(now) - timedelta(days=retention_days))
    n = session.execute(delete(MonitorRow).where(MonitorRow.model_version_id == mv.id,
                                                 MonitorRow.day < cutoff)).rowcount or 0
    if n:
        append_event(session, actor=actor, action="monitor.purge", subject_type="model_version",
                     subject_id=f"{mv.model.name}@{mv.version}",
                     payload={"rows": int(n), "before": cutoff.date().isoformat(),
                              "retention_days": retention_days})
    return int(n)


# --------------------------------------------------------------------------- reading


def status(session: Session, model: str, version: str) -> dict[str, Any]:
    """Per window and rule: the latest value with its interval, the threshold and the state."""
    mv = get_version(session, model, version)
    windows = [{"start": _iso(w.start), "end": _iso(w.end), "rows": w.rows,
                "labeled": w.labeled}
               for w in session.scalars(select(MonitorWindow).where(
                   MonitorWindow.model_version_id == mv.id).order_by(MonitorWindow.start))]
    # a rule evaluated again (more labels arrived) shows its latest evaluation only
    latest: dict[tuple, list[MonitorEvaluation]] = {}
    for ev in session.scalars(select(MonitorEvaluation).where(
            MonitorEvaluation.model_version_id == mv.id).order_by(MonitorEvaluation.id)):
        key = (ev.period, _iso(ev.window_start), ev.rule)
        kept = latest.setdefault(key, [])
        if kept and kept[0].basis != ev.basis:
            kept.clear()
        kept.append(ev)
    evals = [ev.to_dict() for ev in sorted((e for k in latest.values() for e in k), key=lambda e: (
        as_utc(e.window_start), e.rule, e.label))]
    alerts = [alert_to_dict(a, mv) for a in session.scalars(select(MonitorAlert).where(
        MonitorAlert.model_version_id == mv.id).order_by(MonitorAlert.id))]
    return {"model": model, "version": version, "windows": windows, "evaluations": evals,
            "alerts": alerts}


def list_alerts(session: Session, *, model: str | None = None, version: str | None = None,
                state: str | Iterable[str] | None = None) -> list[dict[str, Any]]:
    stmt = select(MonitorAlert, ModelVersion).join(
        ModelVersion, ModelVersion.id == MonitorAlert.model_version_id).order_by(MonitorAlert.id)
    if model is not None:
        if version is not None:
            stmt = stmt.where(ModelVersion.id == get_version(session, model, version).id)
        else:
            m = session.scalars(select(Model).where(Model.name == model)).first()
            if m is None:
                raise NotFoundError(f"unknown model '{model}' (see `assay model list`)")
            stmt = stmt.where(ModelVersion.model_id == m.id)
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        bad = [s for s in states if s not in ALERT_STATES]
        if bad:
            raise InputError(f"alert state '{bad[0]}': expected one of "
                             f"{', '.join(ALERT_STATES)}")
        stmt = stmt.where(MonitorAlert.state.in_(states))
    return [alert_to_dict(a, mv) for a, mv in session.execute(stmt)]


def get_alert(session: Session, alert_id: int) -> dict[str, Any]:
    """One alert, as :func:`list_alerts` shows it; NotFoundError if there is none."""
    a = session.get(MonitorAlert, int(alert_id))
    if a is None:
        raise NotFoundError(f"unknown alert #{alert_id} (see `assay alert list`)")
    return alert_to_dict(a, session.get(ModelVersion, a.model_version_id))


def _alert(session: Session, alert_id: int) -> MonitorAlert:
    a = session.get(MonitorAlert, int(alert_id), with_for_update=True)
    if a is None:
        raise NotFoundError(f"unknown alert #{alert_id} (see `assay alert list`)")
    return a


def acknowledge(session: Session, actor: User, alert_id: int, *, note: str = ""
                ) -> dict[str, Any]:
    """Take an open alert in hand."""
    require_role(actor, *ACKNOWLEDGERS, action="acknowledge alerts")
    a = _alert(session, alert_id)
    if a.state != "open":
        raise ConflictError(f"alert #{a.id} is {a.state}; only an open alert can be "
                            "acknowledged")
    a.state, a.acknowledged_by, a.acknowledged_at = "acknowledged", actor.id, utcnow()
    a.note = note or a.note
    mv = session.get(ModelVersion, a.model_version_id)
    append_event(session, actor=actor, action="alert.ack", subject_type="monitor_alert",
                 subject_id=a.id, payload={"rule": a.rule, "label": a.label, "note": note})
    return alert_to_dict(a, mv)


def resolve(session: Session, actor: User, alert_id: int, *, note: str = "") -> dict[str, Any]:
    """Close an alert. The version's developer may not resolve its alerts."""
    require_role(actor, *RESOLVERS, action="resolve alerts")
    a = _alert(session, alert_id)
    mv = session.get(ModelVersion, a.model_version_id)
    assert mv is not None
    if mv.created_by == actor.id:
        raise PermissionDenied(f"user '{actor.username}' registered {mv.model.name}@"
                               f"{mv.version} and may not resolve its alerts (separation of "
                               "duties)")
    if a.state == "resolved":
        raise ConflictError(f"alert #{a.id} is already resolved")
    a.state, a.resolved_by, a.resolved_at = "resolved", actor.id, utcnow()
    a.note = note or a.note
    append_event(session, actor=actor, action="alert.resolve", subject_type="monitor_alert",
                 subject_id=a.id, payload={"rule": a.rule, "label": a.label, "note": note})
    return alert_to_dict(a, mv)


def open_recertify_alerts(session: Session, version_id: int) -> list[MonitorAlert]:
    """Unresolved ``action: recertify`` alerts raised since the version's latest certification.

    For the deployment gate: while this is not empty, the version is back
    under change control (a new certification or a waiver reopens the gate).
    """
    stmt = select(MonitorAlert).where(MonitorAlert.model_version_id == version_id,
                                      MonitorAlert.action == "recertify",
                                      MonitorAlert.state != "resolved")
    cert = latest_certification(session, version_id)
    alerts = list(session.scalars(stmt.order_by(MonitorAlert.id)))
    if cert is not None:
        since = as_utc(cert.created_at)
        alerts = [a for a in alerts if as_utc(a.created_at) > since]
    return alerts


__all__ = ["SCHEDULER", "RunResult", "VersionRun", "acknowledge", "alert_to_dict", "get_alert",
           "list_alerts", "monitored_versions", "open_recertify_alerts", "plan_of", "resolve",
           "run", "run_scheduled", "status"]

