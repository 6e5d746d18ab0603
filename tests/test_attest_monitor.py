"""Each monitoring window that ``monitor.run`` evaluates is signed by assay's service key
(``monitoring-window/v1``), stored and named by its audit event (SQLite, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import select

from _monitored import monitored_version
from assay.api.sample import populate
from assay.evidence import attest, open_artifact
from assay.evidence import keys as K
from assay.evidence.tables import TrustedKey
from assay.store import Store
from assay.store.audit import AuditEvent

ARTEFACT = "sha256:" + "e5" * 32


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


def test_each_evaluated_window_is_signed(db: Store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(K.SIGNING_KEY_ENV, raising=False)
    populate(db, password="monitor attest password", models=1, reports=False)
    info = monitored_version(db, tmp_path / "mon", days=4, drift_day=2,
                             artifact_digest=ARTEFACT)
    subject = "credit-scoring@2.0"
    with db.transaction() as s:
        atts = K.attestations_of(s, subject, kind="monitoring_window")
        events = [e for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "monitor.evaluate", AuditEvent.subject_id == subject)
            .order_by(AuditEvent.seq))]
        service = {r.keyid: attest.load_public_key(r.public_key.encode())
                   for r in s.scalars(select(TrustedKey).where(TrustedKey.purpose == "service"))}
    assert len(events) >= 3 and len(atts) == len(events)
    assert [e.evidence["attestation"] for e in events] == [a.envelope_digest for a in atts]
    by_day = {}
    for a in atts:
        ok = attest.verify_envelope(open_artifact(db.settings, a.envelope_digest), service)
        assert ok.predicate_type == attest.MONITORING_WINDOW
        assert ok.subject_digests() == [ARTEFACT.removeprefix("sha256:")]
        by_day[ok.predicate["windowStart"]] = ok.predicate
    drifted = by_day[info["days"][2].isoformat()]
    assert drifted["policy"]["name"] == "monitor-web" and drifted["period"] == "daily"
    assert drifted["failedMeasurements"] > 0 and drifted["alerts"]
    rules = {r["rule"] for r in drifted["rules"]}
    assert "drift.feature" in rules
    income = [m for r in drifted["rules"] if r["rule"] == "drift.feature"
              for m in r["measurements"] if m["label"] == "income"]
    assert income and income[0]["state"] == "fail"
    quiet = by_day[info["days"][1].isoformat()]
    assert quiet["failedMeasurements"] == 0
