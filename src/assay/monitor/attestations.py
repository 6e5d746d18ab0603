"""The signed statement of a monitoring window's evaluation (``monitoring-window/v1``).

Each window that ``monitor.run`` evaluates for a version is signed by assay's
service key, stored in the evidence store and linked to the version; the
``monitor.evaluate`` audit event names the envelope's digest. A version without
an artefact digest has no subject: its evaluations are recorded unsigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from assay.evidence import attest
from assay.evidence.keys import sign_and_store
from assay.evidence.tables import Attestation
from assay.registry.policies import settings_of


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt is not None else None


def attest_window(session: Session, mv: Any, pol: Any, tier: str, period: str, start: date,
                  evaluations: Sequence[Any], *, failed: int, alerts: Sequence[int],
                  evaluated_at: datetime) -> Attestation | None:
    """Sign and store the evaluation of one window (``evaluations``: its rows)."""
    if not getattr(mv, "artifact_digest", None):
        return None
    name = f"{mv.model.name}@{mv.version}"
    rules: dict[str, dict[str, Any]] = {}
    for ev in evaluations:
        rule = rules.setdefault(ev.rule, {"rule": ev.rule, "id": ev.rule_id,
                                          "metric": ev.metric, "threshold": ev.threshold,
                                          "labeledRows": ev.basis, "measurements": []})
        rule["measurements"].append({
            "label": ev.label, "value": ev.value,
            "ci": [ev.ci_low, ev.ci_high] if ev.ci_low is not None else None,
            "n": ev.n, "state": ev.state, "note": ev.note})
    first = evaluations[0] if evaluations else None
    predicate = {
        "model": mv.model.name, "version": mv.version,
        "policy": {"name": pol.name, "version": str(pol.version), "tier": tier,
                   "sha256": pol.sha256},
        "period": period, "windowStart": start.isoformat(),
        "windowEnd": _iso(first.window_end) if first is not None else None,
        "rules": list(rules.values()), "failedMeasurements": failed,
        "alerts": list(alerts), "evaluatedAt": _iso(evaluated_at),
    }
    stmt = attest.statement([(name, mv.artifact_digest)], attest.MONITORING_WINDOW, predicate)
    return sign_and_store(session, settings_of(session), stmt, kind="monitoring_window",
                          subject_type="model_version", subject_id=name,
                          ref=f"window:{period}:{start.isoformat()}")
