"""Program metrics: how the model-risk program performs, computed from the store.

Nothing here is typed in: every figure is derived from the records the other domain
packages keep (docs/program.md defines each one precisely):

* time from submission to approval, median and p90, overall, per tier and per stage
  (``wf_submissions``, ``wf_stages``);
* approval rate, and rejections by reason and by stage (``wf_submissions``,
  ``wf_signoffs``);
* time to acknowledge and to resolve alerts and incidents, by severity
  (:mod:`assay.operate.responses`: monitoring alerts by their rule's severity, incidents by
  their policy severity, SEV1 ...);
* overdue reviews: periodic review dates passed and approvals expired
  (:func:`assay.registry.inventory`, the rule of ``assay inventory``);
* mitigation burn-down: the open risk score at the start of each week, reconstructed
  from the risk register and its audit events;
* certification coverage by tier: the share of the inventory whose current version
  holds a passing certification at the model's tier.

Quantiles are numpy's default (linear interpolation between closest ranks, Hyndman and
Fan's type 7). Durations are measured from the domain tables' own timestamps; only the
burn-down, which needs the history of each risk, reads the audit trail.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assay.errors import InputError
from assay.registry.roles import ADMIN, AUDITOR, COMPLIANCE, RISK_OFFICER
from assay.store.db import as_utc, utcnow

#: Roles that may read the program report and export it (the portfolio view: it is built
#: from the audit trail, so the roles that read the whole trail).
PROGRAM_READERS: tuple[str, ...] = (AUDITOR, COMPLIANCE, RISK_OFFICER, ADMIN)
#: Length of the default period, in days (ending today).
DEFAULT_DAYS = 90
TIERS = ("high", "medium", "low")
#: Statuses of a certification that count as passing (the deployment gate's rule).
PASSING = ("passed", "passed_with_warnings")
#: Register statuses whose score counts as open (the risk module's rule).
OPEN_RISK = ("open", "mitigating")
DAY = timedelta(days=1)
HOUR = 3600.0


# --------------------------------------------------------------------------- period

@dataclass(frozen=True)
class Period:
    """The days ``since`` to ``until`` (both included), as UTC instants ``[start, end)``."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime(self.since.year, self.since.month, self.since.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.until.year, self.until.month, self.until.day, tzinfo=UTC) + DAY

    def weeks(self) -> list[tuple[datetime, datetime]]:
        """Seven-day buckets from ``since``; the last one ends with the period."""
        out, t = [], self.start
        while t < self.end:
            out.append((t, min(t + 7 * DAY, self.end)))
            t += 7 * DAY
        return out


def parse_day(value: str | date | None, name: str) -> date | None:
    """A date from ``YYYY-MM-DD`` text (or a ``date``); None stays None."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value  # type: ignore[return-value]
    text = str(value).strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{{{name}}}: expected a date as YYYY-MM-DD, got {text[:40]!r}",
                         fields=[name]) from None


def period(since: str | date | None = None, until: str | date | None = None, *,
           now: datetime | None = None) -> Period:
    """Check and complete a report period: ``until`` defaults to today (UTC), ``since``
    to :data:`DEFAULT_DAYS` days before it; neither may be in the future and ``since``
    may not be after ``until``."""
    today = as_utc(now or utcnow()).date()
    start, stop = parse_day(since, "since"), parse_day(until, "until")
    for name, day in (("since", start), ("until", stop)):
        if day is not None and day > today:
            raise InputError(f"{{{name}}}: {day.isoformat()} is in the future (today is "
                             f"{today.isoformat()} UTC); metrics cover what has happened",
                             fields=[name])
    stop = stop or today
    start = start or max(stop - timedelta(days=DEFAULT_DAYS - 1), date(1970, 1, 1))
    if start > stop:
        raise InputError(f"{{since}} {start.isoformat()} is after {{until}} "
                         f"{stop.isoformat()}: the period must start on or before its last day",
                         fields=["since", "until"])
    return Period(start, stop)


# --------------------------------------------------------------------------- statistics

def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile with linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    import numpy as np

    return float(np.quantile(np.asarray(values, dtype=float), q))


@dataclass
class Durations:
    """How many, and the median and 90th percentile of their durations."""

    count: int
    median: float | None
    p90: float | None
    unit: str

    @classmethod
    def of(cls, values: Sequence[float], unit: str) -> Durations:
        return cls(len(values), _round(quantile(values, 0.5)),
                   _round(quantile(values, 0.9)), unit)


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _days(a: datetime, b: datetime) -> float:
    return (as_utc(b) - as_utc(a)).total_seconds() / 86400.0


def _hours(a: datetime, b: datetime) -> float:
    return (as_utc(b) - as_utc(a)).total_seconds() / HOUR


# --------------------------------------------------------------------------- the report

@dataclass
class ProgramReport:
    """Every program metric over one period; :meth:`to_dict` is the JSON form."""

    since: date
    until: date
    as_of: datetime
    time_to_approve: dict[str, Any]
    approvals: dict[str, Any]
    responses: dict[str, Any]
    overdue_reviews: dict[str, Any]
    burn_down: list[dict[str, Any]]
    coverage: dict[str, Any]
    definitions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"], out["until"] = self.since.isoformat(), self.until.isoformat()
        out["as_of"] = _iso(self.as_of)
        return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


def require_reader(actor: Any) -> None:
    """PermissionDenied unless ``actor`` may read the program report."""
    from assay.registry import require_role

    require_role(actor, *PROGRAM_READERS, action="read the program report")


def program_report(session: Session, *, since: str | date | None = None,
                   until: str | date | None = None, now: datetime | None = None,
                   actor: Any | None = None) -> ProgramReport:
    """The program metrics over ``since`` to ``until`` (days, both included).

    With ``actor``, the actor must hold one of :data:`PROGRAM_READERS`. Reads only.
    """
    now = as_utc(now or utcnow())
    p = period(since, until, now=now)
    if actor is not None:
        require_reader(actor)
    as_of = min(now, p.end)
    return ProgramReport(
        since=p.since, until=p.until, as_of=as_of,
        time_to_approve=time_to_approve(session, p),
        approvals=approval_rate(session, p),
        responses=response_times(session, p),
        overdue_reviews=overdue_reviews(session, as_of),
        burn_down=burn_down(session, p, as_of),
        coverage=coverage(session, as_of),
        definitions=dict(DEFINITIONS),
    )


DEFINITIONS = {
    "time_to_approve": "days from submission to the approval of the deployment stage, for "
                       "submissions approved in the period; per stage: days from the end "
                       "of the previous (not skipped) stage, or the submission, to the "
                       "stage's approval",
    "quantiles": "median and p90 with linear interpolation (numpy's default, type 7)",
    "approval_rate": "approved / (approved + rejected) among submissions decided in the "
                     "period",
    "responses": "monitoring alerts raised, and incidents the organisation became aware "
                 "of, in the period (alerts by block/warn, incidents by their policy "
                 "severity); acknowledge = hours to the acknowledgement (or to the "
                 "resolution if never acknowledged); resolve = hours to the resolution",
    "overdue_reviews": "models (not retired) whose periodic review date has passed, and "
                       "models whose latest version's approval has expired, as of as_of",
    "burn_down": "sum of likelihood x impact over register entries open or mitigating at "
                 "each instant (start of each week, and the end of the period)",
    "coverage": "share of models (not retired) whose newest version holds, as its newest "
                "certification at the model's tier, a passed or passed_with_warnings one",
}


# --------------------------------------------------------------------------- approvals

def time_to_approve(session: Session, p: Period) -> dict[str, Any]:
    """Submission to approval (days): overall, per tier, per stage, and per week."""
    from assay.workflow.tables import StageState, Submission

    subs = session.execute(
        select(Submission.id, Submission.tier, Submission.submitted_at, Submission.approved_at)
        .where(Submission.approved_at.is_not(None), Submission.approved_at >= p.start,
               Submission.approved_at < p.end).order_by(Submission.id)).all()
    overall = [_days(s.submitted_at, s.approved_at) for s in subs]
    by_tier: dict[str, list[float]] = defaultdict(list)
    for s in subs:
        by_tier[s.tier].append(_days(s.submitted_at, s.approved_at))
    weeks = []
    for a, b in p.weeks():
        vals = [_days(s.submitted_at, s.approved_at) for s in subs
                if a <= as_utc(s.approved_at) < b]
        weeks.append({"week": a.date().isoformat(), **asdict(Durations.of(vals, "days"))})

    # Stages: completed (approved) in the period, timed from the previous stage's end.
    stage_rows = session.execute(
        select(StageState.submission_id, StageState.position, StageState.stage,
               StageState.status, StageState.completed_at, Submission.submitted_at)
        .join(Submission, Submission.id == StageState.submission_id)
        .where(StageState.submission_id.in_(
            select(StageState.submission_id).where(
                StageState.status == "approved", StageState.completed_at >= p.start,
                StageState.completed_at < p.end)))
        .order_by(StageState.submission_id, StageState.position)).all()
    by_stage: dict[str, list[float]] = defaultdict(list)
    order: dict[str, int] = {}
    previous_end: dict[int, datetime] = {}
    for r in stage_rows:
        begin = previous_end.get(r.submission_id, r.submitted_at)
        if r.status == "skipped" or r.completed_at is None:
            continue
        previous_end[r.submission_id] = r.completed_at
        if r.status == "approved" and p.start <= as_utc(r.completed_at) < p.end:
            by_stage[r.stage].append(_days(begin, r.completed_at))
            order[r.stage] = min(order.get(r.stage, r.position), r.position)
    return {
        "overall": asdict(Durations.of(overall, "days")),
        "by_tier": {t: asdict(Durations.of(by_tier.get(t, []), "days"))
                    for t in _ordered(by_tier, TIERS)},
        "by_stage": {s: asdict(Durations.of(by_stage[s], "days"))
                     for s in sorted(by_stage, key=lambda s: (order[s], s))},
        "by_week": weeks,
    }


def _ordered(keys: Iterable[str], first: Sequence[str]) -> list[str]:
    keys = set(keys) | set(first)
    return [k for k in first if k in keys] + sorted(k for k in keys if k not in first)


def approval_rate(session: Session, p: Period) -> dict[str, Any]:
    """Approved and rejected submissions decided in the period, the rate, the weekly
    trend, and rejections by reason and by stage (SQL aggregates)."""
    from assay.workflow.tables import SignOff, Submission

    approved_at = session.execute(
        select(Submission.approved_at).where(Submission.approved_at >= p.start,
                                             Submission.approved_at < p.end)).scalars().all()
    rejected_at = session.execute(
        select(Submission.closed_at).where(Submission.state == "rejected",
                                           Submission.closed_at >= p.start,
                                           Submission.closed_at < p.end)).scalars().all()
    approved, rejected = len(approved_at), len(rejected_at)
    weeks = []
    for a, b in p.weeks():
        ok = sum(1 for t in approved_at if a <= as_utc(t) < b)
        no = sum(1 for t in rejected_at if a <= as_utc(t) < b)
        weeks.append({"week": a.date().isoformat(), "approved": ok, "rejected": no,
                      "rate": _rate(ok, no)})
    in_period = (SignOff.decision == "reject", SignOff.created_at >= p.start,
                 SignOff.created_at < p.end)
    reasons = session.execute(
        select(SignOff.reason, func.count()).where(*in_period)
        .group_by(SignOff.reason).order_by(func.count().desc(), SignOff.reason)).all()
    stages = session.execute(
        select(SignOff.stage, func.count()).where(*in_period)
        .group_by(SignOff.stage).order_by(func.count().desc(), SignOff.stage)).all()
    return {
        "approved": approved, "rejected": rejected, "rate": _rate(approved, rejected),
        "by_week": weeks,
        "rejections_by_reason": [{"reason": r or "", "count": int(n)} for r, n in reasons],
        "rejections_by_stage": [{"stage": s, "count": int(n)} for s, n in stages],
    }


def _rate(ok: int, no: int) -> float | None:
    return None if ok + no == 0 else round(ok / (ok + no), 4)


# --------------------------------------------------------------------------- responses

def response_times(session: Session, p: Period) -> dict[str, Any]:
    """Alerts and incidents raised in the period by severity: how many, how many
    still open, and hours to acknowledge and to resolve."""
    from assay.operate.responses import responses

    found = responses(session, p.start, p.end)
    by_sev: dict[str, list[Any]] = defaultdict(list)
    for r in found:
        by_sev[r.severity].append(r)
    out: dict[str, Any] = {}
    for sev in sorted(by_sev, key=lambda s: ({"block": 0, "warn": 1}.get(s, 2), s)):
        rows = by_sev[sev]
        out[sev] = {
            "raised": len(rows),
            "unacknowledged": sum(1 for r in rows if r.taken_at is None),
            "unresolved": sum(1 for r in rows if r.resolved_at is None),
            "acknowledge": asdict(Durations.of(
                [_hours(r.raised_at, r.taken_at) for r in rows if r.taken_at], "hours")),
            "resolve": asdict(Durations.of(
                [_hours(r.raised_at, r.resolved_at) for r in rows if r.resolved_at], "hours")),
        }
    return {"sources": sorted({r.source for r in found}), "by_severity": out}


# --------------------------------------------------------------------------- reviews

def overdue_reviews(session: Session, as_of: datetime) -> dict[str, Any]:
    """Models whose periodic review date has passed and models whose latest version's
    approval has expired, as of ``as_of`` (the inventory's own rules)."""
    from assay.registry import inventory

    items = []
    for row in inventory(session, now=as_of):
        if row.deployment_status == "retired":
            continue
        if row.overdue:
            items.append({"model": row.name, "tier": row.tier, "kind": "periodic_review",
                          "due": _iso(row.next_review_at), "days_overdue": row.days_overdue})
        if row.approval == "expired":
            items.append({"model": row.name, "tier": row.tier, "kind": "approval_expired",
                          "version": row.latest_version, "due": None, "days_overdue": None})
    items.sort(key=lambda i: (-(i["days_overdue"] or 0), i["model"], i["kind"]))
    return {"count": len(items), "items": items}


# --------------------------------------------------------------------------- burn-down

def burn_down(session: Session, p: Period, as_of: datetime) -> list[dict[str, Any]]:
    """The open risk score at the start of each week of the period and at its end.

    Each register entry's history is replayed: its state when it was registered (from
    its ``risk.register`` event, at the entry's ``created_at``), then every
    ``risk.update`` event's changes of status, likelihood and impact at the event's time.
    An entry without events is taken as it is now, open from ``created_at`` and, when
    closed or accepted now, closed from ``updated_at``.
    """
    from assay.risk.tables import Risk
    from assay.store.audit import AuditEvent

    risks = session.execute(
        select(Risk.id, Risk.status, Risk.likelihood, Risk.impact, Risk.created_at,
               Risk.updated_at).where(Risk.created_at < p.end)).all()
    events: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = defaultdict(list)
    for created, action, subject, payload in session.execute(
            select(AuditEvent.created_at, AuditEvent.action, AuditEvent.subject_id,
                   AuditEvent.payload)
            .where(AuditEvent.subject_type == "risk",
                   AuditEvent.action.in_(("risk.register", "risk.update")))
            .order_by(AuditEvent.seq)):
        events[subject].append((_parse_time(created), action, payload or {}))
    # (time, risk id, score while open or None when not open), in order per risk
    steps: list[tuple[datetime, int, int | None]] = []
    for r in risks:
        history = events.get(str(r.id), [])
        start = as_utc(r.created_at)
        reg = next((e for e in history if e[1] == "risk.register"), None)
        if reg is None:
            score = r.likelihood * r.impact
            steps.append((start, r.id, score))
            if r.status not in OPEN_RISK:
                steps.append((as_utc(r.updated_at), r.id, None))
            continue
        state = {"status": "open", "likelihood": int(reg[2].get("likelihood", r.likelihood)),
                 "impact": int(reg[2].get("impact", r.impact))}
        steps.append((start, r.id, state["likelihood"] * state["impact"]))
        for when, action, payload in history:
            if action != "risk.update":
                continue
            for key in ("status", "likelihood", "impact"):
                change = (payload.get("changes") or {}).get(key)
                if isinstance(change, dict) and "to" in change:
                    state[key] = change["to"]
            open_now = state["status"] in OPEN_RISK
            steps.append((max(when, start), r.id,
                          int(state["likelihood"]) * int(state["impact"]) if open_now
                          else None))
    steps.sort(key=lambda s: s[0])
    points = [a for a, _ in p.weeks()]
    end = min(p.end, max(as_of, p.start))
    if not points or points[-1] != end:
        points.append(end)
    out = []
    current: dict[int, int | None] = {}
    i = 0
    for t in points:
        while i < len(steps) and steps[i][0] <= t:
            current[steps[i][1]] = steps[i][2]
            i += 1
        open_scores = [s for s in current.values() if s is not None]
        out.append({"at": _iso(t), "open_score": sum(open_scores),
                    "open_entries": len(open_scores)})
    return out


def _parse_time(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


# --------------------------------------------------------------------------- coverage

def coverage(session: Session, as_of: datetime) -> dict[str, Any]:
    """Per tier: models (not retired, registered by ``as_of``), how many have a current
    version whose newest certification at the model's tier (by ``as_of``) passed, and
    the share."""
    from assay.registry.tables import Certification, Model, ModelVersion

    newest = (select(ModelVersion.model_id, func.max(ModelVersion.id).label("vid"))
              .where(ModelVersion.created_at <= as_of)
              .group_by(ModelVersion.model_id).subquery())
    models = session.execute(
        select(Model.id, Model.tier, newest.c.vid)
        .outerjoin(newest, newest.c.model_id == Model.id)
        .where(Model.deployment_status != "retired", Model.created_at <= as_of)).all()
    tier_of = {vid: tier for _, tier, vid in models if vid is not None}
    latest: dict[int, str] = {}
    if tier_of:
        for vid, tier, status in session.execute(
                select(Certification.model_version_id, Certification.tier,
                       Certification.status)
                .where(Certification.model_version_id.in_(
                    select(newest.c.vid)), Certification.created_at <= as_of)
                .order_by(Certification.created_at, Certification.id)):
            if tier == tier_of.get(vid):
                latest[vid] = status  # oldest first: the newest wins
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, tier, vid in models:
        key = tier or "unassessed"
        counts[key][0] += 1
        if vid is not None and latest.get(vid) in PASSING:
            counts[key][1] += 1
    by_tier = {t: {"models": counts[t][0], "covered": counts[t][1],
                   "share": _share(counts[t][1], counts[t][0])}
               for t in _ordered(counts, TIERS)}
    total = sum(c[0] for c in counts.values())
    covered = sum(c[1] for c in counts.values())
    return {"models": total, "covered": covered, "share": _share(covered, total),
            "by_tier": by_tier}


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


# --------------------------------------------------------------------------- export

EXPORT_FORMATS = ("json", "csv", "html")


def record_export(session: Session, actor: Any, report: ProgramReport, fmt: str, *,
                  digest: str | None = None) -> None:
    """Append the ``program.export`` audit event for an exported report."""
    from assay.store.audit import append_event

    require_reader(actor)
    append_event(session, actor=actor, action="program.export", subject_type="program",
                 subject_id=f"{report.since.isoformat()}..{report.until.isoformat()}",
                 payload={"format": fmt, "since": report.since.isoformat(),
                          "until": report.until.isoformat(), "as_of": _iso(report.as_of)},
                 evidence={"export": digest} if digest else None)
