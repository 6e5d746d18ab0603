"""A seeded history of the model-risk program with controlled timestamps, for the program
metrics' tests (tests/test_program.py states the figures it yields, computed by hand).

Submissions, stages, sign-offs, alerts and certifications are written as rows with the
times the history needs (test set-up); risks go through the risk service with ``now=``
and the audit trail's clock set to the same instant.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from assay import registry
from assay.registry.tables import Certification, Model, ModelVersion
from assay.risk import service as risk
from assay.store import Store
from assay.workflow.tables import SignOff, StageState, Submission

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def t(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class Clock:
    """The audit trail's clock, set by the test (its events carry the real time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import assay.store.audit as audit

        self.now = NOW
        monkeypatch.setattr(audit, "utcnow", lambda: self.now)

    @contextmanager
    def at(self, when: datetime):
        saved, self.now = self.now, when
        try:
            yield
        finally:
            self.now = saved


def _submission(s, user_id: int, vid: int, tier: str, submitted: datetime,
                stages: list[tuple[str, str, datetime | None]], *, state: str,
                approved: datetime | None = None, closed: datetime | None = None,
                expires: datetime | None = None) -> Submission:
    sub = Submission(model_version_id=vid, policy_name="p", policy_version="1",
                     policy_digest="sha256:" + "0" * 64, policy_source="default", tier=tier,
                     state=state, current_stage=None, deployment_stage="deployment_approval",
                     submitted_by=user_id, submitted_at=submitted, updated_at=submitted,
                     approved_at=approved, closed_at=closed, expires_at=expires)
    s.add(sub)
    s.flush()
    for pos, (stage, status, done) in enumerate(stages):
        s.add(StageState(submission_id=sub.id, position=pos, stage=stage, title=stage,
                         status=status, roles=["validator"], approvers=1, evidence=[],
                         independent=False, completed_at=done))
    s.flush()
    return sub


def _reject(s, sub: Submission, user_id: int, stage: str, reason: str, when: datetime) -> None:
    s.add(SignOff(submission_id=sub.id, stage=stage, user_id=user_id, role="validator",
                  decision="reject", reason=reason, evidence={}, created_at=when))


def add_alert(s, vid: int, severity: str, raised: datetime, ack: datetime | None,
           resolved: datetime | None) -> None:
    from assay.monitor.tables import MonitorAlert, MonitorEvaluation

    ev = MonitorEvaluation(model_version_id=vid, policy_name="p", tier="high", period="day",
                           window_start=raised, window_end=raised, rule="r", rule_id="r",
                           state="fail", created_at=raised)
    s.add(ev)
    s.flush()
    s.add(MonitorAlert(model_version_id=vid, evaluation_id=ev.id, rule="r", rule_id="r",
                       period="day", window_start=raised, window_end=raised,
                       severity=severity, state="resolved" if resolved else
                       "acknowledged" if ack else "open", created_at=raised,
                       acknowledged_at=ack, resolved_at=resolved))


def _cert(s, vid: int, tier: str, status: str, when: datetime, user_id: int) -> None:
    s.add(Certification(model_version_id=vid, policy_name="p", policy_digest="sha256:x",
                        tier=tier, status=status, results_digest="sha256:y", created_by=user_id,
                        created_at=when))


def seed(db: Store, monkeypatch: pytest.MonkeyPatch, *, developer: str = "dana",
         validator: str = "victor", risk_officer: str = "rita") -> Store:
    """Write the history into ``db`` (whose users include the three named ones)."""
    clock = Clock(monkeypatch)
    with db.transaction() as s:
        dana = registry.get_user(s, developer)
        rita = registry.get_user(s, risk_officer)
        tiers = {"m1": "high", "m2": "high", "m3": "medium", "m4": "low", "m5": "medium",
                 "m6": "high", "m7": None}
        for name, tier in tiers.items():
            registry.register_model(s, dana, name, owner=developer, decision_type="automated",
                                    criticality="medium")
            if name != "m7":
                registry.add_version(s, dana, name, "1")
            if tier:
                registry.set_model_tier(s, rita, name, tier)
        registry.add_version(s, dana, "m5", "2")
        registry.add_version(s, dana, "m4", "0.9", parent_version=None)
    with db.transaction() as s:
        vid = {(m.name, v.version): v.id for v, m in s.execute(
            select(ModelVersion, Model).join(Model, Model.id == ModelVersion.model_id))}
        models = {m.name: m for m in s.scalars(select(Model))}
        for m in models.values():  # registered before the period
            m.created_at = t(10, 1)
        for v in s.scalars(select(ModelVersion)):
            v.created_at = t(10, 1)
        models["m1"].next_review_at = t(11, 20)          # 9 days overdue at NOW
        models["m2"].next_review_at = t(12, 31)
        models["m6"].next_review_at = t(11, 1)           # retired: not counted
        models["m6"].deployment_status = "retired"
        uid = registry.get_user(s, validator).id
        D = "deployment_approval"
        _submission(s, uid, vid["m1", "1"], "high", t(11, 3), [
            ("scope", "approved", t(11, 4)), ("validation", "approved", t(11, 6)),
            (D, "approved", t(11, 8))], state="approved", approved=t(11, 8),
            expires=t(12, 31, 23))
        _submission(s, uid, vid["m2", "1"], "high", t(11, 5), [
            ("scope", "approved", t(11, 6, 12)), ("validation", "skipped", None),
            (D, "approved", t(11, 12, 12))], state="approved", approved=t(11, 12, 12),
            expires=t(12, 31, 23))
        _submission(s, uid, vid["m3", "1"], "medium", t(11, 10), [
            ("scope", "approved", t(11, 11)), ("validation", "approved", t(11, 13)),
            (D, "approved", t(11, 20))], state="approved", approved=t(11, 20),
            expires=t(11, 25))                           # approval expired at NOW
        _submission(s, uid, vid["m4", "1"], "low", t(10, 20), [
            ("scope", "approved", t(10, 21)), ("validation", "approved", t(11, 3)),
            (D, "approved", t(11, 4))], state="approved", approved=t(11, 4),
            expires=t(12, 31, 23))
        s5 = _submission(s, uid, vid["m5", "1"], "medium", t(11, 16), [
            ("scope", "rejected", t(11, 18))], state="rejected", closed=t(11, 18))
        _reject(s, s5, uid, "scope", "Scope document missing", t(11, 18))
        s6 = _submission(s, uid, vid["m5", "2"], "medium", t(11, 23), [
            ("scope", "approved", t(11, 23, 6)), ("validation", "rejected", t(11, 24))],
            state="rejected", closed=t(11, 24))
        _reject(s, s6, uid, "validation", "AUC below threshold", t(11, 24))
        s7 = _submission(s, uid, vid["m6", "1"], "high", t(11, 24), [
            ("scope", "rejected", t(11, 25))], state="rejected", closed=t(11, 25))
        _reject(s, s7, uid, "scope", "Scope document missing", t(11, 25))
        s8 = _submission(s, uid, vid["m4", "0.9"], "low", t(10, 10), [
            ("scope", "rejected", t(10, 15))], state="rejected", closed=t(10, 15))
        _reject(s, s8, uid, "scope", "Before the period", t(10, 15))

        add_alert(s, vid["m1", "1"], "block", t(11, 10), t(11, 10, 2), t(11, 11))
        add_alert(s, vid["m1", "1"], "block", t(11, 12), t(11, 12, 6), None)
        add_alert(s, vid["m2", "1"], "block", t(11, 20), None, t(11, 20, 4))
        add_alert(s, vid["m2", "1"], "warn", t(11, 21), None, None)
        add_alert(s, vid["m2", "1"], "warn", t(10, 1), t(10, 1, 1), None)

        _cert(s, vid["m1", "1"], "high", "passed", t(11, 1), uid)
        _cert(s, vid["m2", "1"], "high", "passed", t(11, 1), uid)
        _cert(s, vid["m2", "1"], "high", "failed", t(11, 15), uid)  # newest: not covered
        _cert(s, vid["m3", "1"], "medium", "passed_with_warnings", t(11, 1), uid)
        _cert(s, vid["m4", "1"], "medium", "passed", t(11, 1), uid)  # not the model's tier
        _cert(s, vid["m5", "1"], "medium", "passed", t(11, 1), uid)  # not the newest version

    def act(when: datetime, fn, *args, **kw):
        with clock.at(when), db.transaction() as s:
            return fn(s, registry.get_user(s, risk_officer), *args, now=when, **kw)

    r4 = act(t(10, 1), risk.add_risk, "m4", title="old", category="privacy", likelihood=2,
             impact=2)
    act(t(10, 15), risk.update_risk, r4.id, status="closed", resolution="fixed")
    r1 = act(t(10, 20), risk.add_risk, "m1", title="gap", category="fairness_bias",
             likelihood=4, impact=4)
    r2 = act(t(11, 5, 9), risk.add_risk, "m2", title="drift", category="privacy",
             likelihood=3, impact=3)
    act(t(11, 10, 9), risk.update_risk, r1.id, likelihood=2)
    act(t(11, 12, 9), risk.update_risk, r2.id, status="accepted", resolution="low impact")
    act(t(11, 17, 9), risk.add_risk, "m3", title="big", category="privacy", likelihood=5,
        impact=5)
    act(t(11, 20, 9), risk.update_risk, r1.id, status="mitigating")
    act(t(11, 25, 9), risk.update_risk, r1.id, status="closed", resolution="reweighed")
    return db
