"""The impact record's routes over the real app and store (SQLite and PostgreSQL): who may
read and who may write, attempts to get around the roles (no token, a reader's token, a
validator writing, a body naming another actor), and refused requests writing nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from assay import registry
from assay.api.app import create_app
from assay.auth import service as auth
from assay.impact.tables import ImpactAssessment, ImpactFeedback, ImpactKpi
from assay.store.audit import AuditEvent
from test_impact_record import THEORY, env  # noqa: F401
from test_workflow import USERS, Env

V = "/api/models/scorer/versions/1/impact"


class Api:
    def __init__(self, e: Env) -> None:
        self.store = e.store
        self.client = TestClient(create_app(e.store.settings, store=e.store))
        with e.store.transaction() as s:
            root = registry.get_user(s, "root")
            self.tokens = {name: auth.create_token(s, root, name, "tests")[1] for name in USERS}

    def __call__(self, user: str | None, method: str, path: str, **kw):
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return self.client.request(method, path, headers=headers, **kw)

    def count(self, table) -> int:
        with self.store.transaction() as s:
            return s.scalar(select(func.count()).select_from(table))


@pytest.fixture
def api(env: Env) -> Api:  # noqa: F811
    return Api(env)


def test_editors_write_the_record_and_everyone_signed_in_reads_it(api: Api) -> None:
    r = api("bea", "PUT", f"{V}/assessment", json={"yaml": THEORY})
    assert r.status_code == 201, r.text
    assert r.json()["revision"] == 1
    r = api("dave", "POST", f"{V}/kpis", json={"name": "approval_rate", "direction": "increase",
                                                 "guardrail": 0.5, "cadence": "weekly"})
    assert r.status_code == 201, r.text
    r = api("rita", "POST", f"{V}/kpis/approval_rate/observations",
            json={"value": 0.4, "at": "2026-11-02T00:00:00Z", "group": "F"})
    assert r.status_code == 201 and r.json()["alert"] is not None
    r = api("rita", "POST", f"{V}/register", json={"title": "denials", "kind": "negative",
                                                    "likelihood": 2, "severity": 5})
    entry = r.json()["id"]
    r = api("bea", "POST", f"{V}/register/{entry}/links", json={"kpis": ["approval_rate"]})
    assert r.status_code == 200 and r.json()["links"]["kpis"] == ["approval_rate"]
    r = api("bea", "POST", f"{V}/feedback", json={"channel": "complaint", "category": "denied",
                                                   "register_id": entry})
    assert r.status_code == 201
    r = api("rita", "POST", f"{V}/kpis", json={"name": "complaints", "direction": "decrease",
                                                "source": "feedback", "guardrail": 0})
    assert r.status_code == 201, r.text
    r = api("rita", "POST", f"{V}/kpis/evaluate")
    assert r.status_code == 200, r.text
    assert [(b["kpi"], b["value"]) for b in r.json()] == [("complaints", 1.0)]
    assert r.json()[0]["alert"] is not None
    rec = api("aud", "GET", V).json()
    assert rec["assessment"]["created_by"] == "bea"
    assert rec["register"][0]["feedback"] == 1
    assert api("val", "GET", f"{V}/assessment").json()["current"]["revision"] == 1
    alerts = api("aud", "GET", "/api/alerts").json()
    items = alerts["items"] if isinstance(alerts, dict) else alerts
    assert any(a["rule"] == "impact.kpi_guardrail:approval_rate" for a in items)


@pytest.mark.parametrize("user", ["val", "aud", "carl"])
def test_readers_cannot_write_and_nothing_is_written(api: Api, user: str) -> None:
    before = api.count(AuditEvent)
    assert api(user, "PUT", f"{V}/assessment", json={"yaml": THEORY}).status_code == 403
    assert api(user, "POST", f"{V}/kpis", json={"name": "k", "direction": "increase"}
               ).status_code == 403
    assert api(user, "POST", f"{V}/feedback", json={"channel": "web", "category": "x"}
               ).status_code == 403
    assert api(user, "POST", f"{V}/kpis/evaluate").status_code == 403
    assert api(user, "POST", f"{V}/register", json={"title": "t", "kind": "positive",
                                                     "likelihood": 1, "severity": 1}
               ).status_code == 403
    assert api.count(ImpactAssessment) == api.count(ImpactKpi) == 0
    assert api.count(ImpactFeedback) == 0 and api.count(AuditEvent) == before


def test_no_token_no_record_and_no_smuggled_actor(api: Api) -> None:
    assert api(None, "GET", V).status_code == 401
    assert api(None, "PUT", f"{V}/assessment", json={"yaml": THEORY}).status_code == 401
    # the actor is the token's user: a body field naming someone else is refused
    r = api("val", "POST", f"{V}/feedback", json={"channel": "web", "category": "x",
                                                  "actor": "bea"})
    assert r.status_code in (400, 422)
    assert api.count(ImpactFeedback) == 0


def test_bad_theory_is_refused_naming_the_line(api: Api) -> None:
    r = api("bea", "PUT", f"{V}/assessment", json={"yaml": THEORY.replace("pathway:", "x:")})
    assert r.status_code == 422, r.text  # invalid like a policy: bad_policy
    assert r.json()["error"]["message"].startswith("api:1:1: pathway: required field")
    r = api("bea", "PUT", f"{V}/assessment", json={"theory": {"pathway": ["a"]}})
    assert r.status_code == 400 and "intended_outcomes" in r.json()["error"]["message"]
    assert api.count(ImpactAssessment) == 0
