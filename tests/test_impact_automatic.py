"""Computed impact KPIs are checked against their guardrails by the monitoring run
itself: a breach in a newly closed window raises its alert with no manual step, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from _monitored import DAY0, monitored_version
from assay import impact, monitor
from assay import registry as reg
from assay.api.sample import populate
from assay.monitor.tables import MonitorEvaluation
from assay.store import Store
from test_impact_kpis_report import MODEL, PASSWORD, VERSION, _fast_hashes, as_user  # noqa: F401

RULE = "impact.kpi_guardrail:approval_rate"


@pytest.fixture
def monitored(db: Store, tmp_path: Path) -> Path:
    populate(db, password=PASSWORD, models=1, reports=False)
    monitored_version(db, tmp_path / "mon", days=9, drift_day=None)
    return tmp_path / "mon"


def _at(days: int) -> datetime:
    return datetime(DAY0.year, DAY0.month, DAY0.day, tzinfo=UTC) + timedelta(days=days)


def _run(db: Store, folder: Path, days: int) -> list[dict]:
    policy = folder / "monitor-web-policy.yaml"
    with db.transaction() as s:
        return monitor.run(s, reg.get_user(s, "vic"), MODEL, VERSION, policy=str(policy),
                           tier="high", now=_at(days)).alerts


def _impact_alerts(db: Store) -> list[dict]:
    with db.transaction() as s:
        return [a for a in monitor.list_alerts(s, model=MODEL) if a["rule"] == RULE]


def _checked(db: Store) -> list[str]:
    with db.transaction() as s:
        return sorted(ev.window_start.date().isoformat() for ev in s.query(MonitorEvaluation)
                      .filter(MonitorEvaluation.rule == RULE))


def test_monitor_run_raises_the_guardrail_alert_once(db: Store, monitored: Path):
    # nine days of data from a Monday: week 1 closes on day 7, week 2 on day 14
    as_user(db, "dana", impact.add_kpi, name="approval_rate", direction="increase",
            source="monitoring", metric="selection_rate", cadence="weekly", guardrail=0.99)
    assert _run(db, monitored, 5) == [] and _checked(db) == []  # no KPI window closed yet
    raised = [a for a in _run(db, monitored, 8) if a["rule"] == RULE]
    assert len(raised) == 1 and raised[0]["window"]["start"].startswith(DAY0.isoformat())
    assert _checked(db) == [DAY0.isoformat()]
    assert "below its guardrail 0.99" in raised[0]["message"]
    # re-running finds nothing new; the next week, breached while the alert is open,
    # is recorded once but takes no second alert
    assert [a for a in _run(db, monitored, 8) if a["rule"] == RULE] == []
    assert [a for a in _run(db, monitored, 15) if a["rule"] == RULE] == []
    assert [a for a in _run(db, monitored, 15) if a["rule"] == RULE] == []
    assert _checked(db) == [DAY0.isoformat(), (DAY0 + timedelta(days=7)).isoformat()]
    assert len(_impact_alerts(db)) == 1


def test_a_kpi_within_its_guardrail_raises_nothing(db: Store, monitored: Path):
    as_user(db, "dana", impact.add_kpi, name="approval_rate", direction="increase",
            source="monitoring", metric="selection_rate", cadence="weekly", guardrail=0.0)
    _run(db, monitored, 15)
    assert _impact_alerts(db) == [] and _checked(db) == []
