"""Monitoring through the REST API: batches in Parquet, CSV and JSON, labels, status, runs,
alerts; bad input as 4xx with nothing stored; role, separation-of-duties and CSRF checks.
Real app, real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from _monitor_api import DAY0, day, parquet_bytes, setup_version
from assay import registry as reg
from assay.api.app import create_app
from assay.auth import service as auth
from assay.monitor.tables import MonitorBatch, MonitorRow, MonitorWindow
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain

BATCHES = "/api/models/pd/versions/1/monitoring/batches"
LABELS = "/api/models/pd/versions/1/monitoring/labels"
OPTS = {"time_column": "ts", "id_column": "row", "score": "p"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}
CSV = {"Content-Type": "text/csv"}


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def api(db: Store, people: dict, tmp_path: Path):
    setup_version(db, tmp_path)
    tokens = {}
    with db.transaction() as s:
        admin = reg.get_user(s, "ada")
        reg.add_user(s, admin, "nora", display_name="Nora No-role", roles=[])
        for name in (*people.values(), "nora"):
            tokens[name] = auth.create_token(s, admin, name, "tests")[1]
    client = TestClient(create_app(db.settings, store=db))
    return client, tokens


def h(tokens: dict, who: str, extra: dict | None = None) -> dict:
    return {"Authorization": f"Bearer {tokens[who]}", **(extra or {})}


def _counts(db: Store) -> tuple[int, int, int, int]:
    with db.transaction() as s:
        return (s.scalar(select(func.count()).select_from(MonitorBatch)),
                s.scalar(select(func.count()).select_from(MonitorWindow)),
                s.scalar(select(func.count()).select_from(MonitorRow)),
                s.scalar(select(func.count()).select_from(AuditEvent)))


def test_batches_in_three_formats_labels_run_status_and_alerts(api, db: Store) -> None:
    client, tokens = api
    d0, d1, d2 = day(0), day(1, shift=2.5), day(2)
    # Parquet, CSV and JSON rows ({"rows": [...]} and a bare list)
    r = client.post(BATCHES, params=OPTS, content=parquet_bytes(d0.drop(columns="y")),
                    headers=h(tokens, "dana", PARQUET))
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 300 and r.json()["windows"] == {DAY0.isoformat(): 300}
    assert r.json()["kept_rows"] == 300 and r.json()["source"] == "request body (Parquet)"
    buf = io.StringIO()
    d1.drop(columns="y").to_csv(buf, index=False)
    r = client.post(BATCHES, params={**OPTS, "source": "day1.csv"}, content=buf.getvalue(),
                    headers=h(tokens, "bo", CSV))
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "day1.csv" and r.json()["rows"] == 300
    rows = json.loads(d2.drop(columns="y").to_json(orient="records"))
    r = client.post(BATCHES, params=OPTS, json={"rows": rows[:150]},
                    headers=h(tokens, "victor"))
    assert r.status_code == 201, r.text
    r = client.post(BATCHES, params=OPTS, json=rows[150:], headers=h(tokens, "victor"))
    assert r.status_code == 201, r.text
    assert r.json()["windows"] == {"2026-03-04": 150}

    # late labels for day 0 as JSON rows, one unknown id and one repeated
    labels = [{"row": rid, "y": int(y)} for rid, y in zip(d0["row"], d0["y"], strict=True)]
    labels += [{"row": "nope", "y": 1}, labels[0]]
    r = client.post(LABELS, params={"id_column": "row", "target": "y"}, json=labels,
                    headers=h(tokens, "dana"))
    assert r.status_code == 201, r.text
    assert (r.json()["joined"], r.json()["unknown"], r.json()["duplicates"]) == (300, 1, 1)

    r = client.post("/api/monitoring/run", json={"model": "pd", "version": "1",
                                                 "policy": "monapi-test", "tier": "high"},
                    headers=h(tokens, "victor"))
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["versions"][0]["windows_evaluated"] == ["2026-03-02", "2026-03-03",
                                                       "2026-03-04"]
    drift = [(a["rule"], a["label"], a["window"]["start"][:10]) for a in run["alerts"]]
    assert drift == [("drift.feature", "x", "2026-03-03")]
    again = client.post("/api/monitoring/run", json={"policy": "monapi-test", "tier": "high"},
                        headers=h(tokens, "victor")).json()
    assert again["alerts"] == [] and again["versions"][0]["windows_evaluated"] == []

    # status: per window and rule, as the domain gives it; readable by the auditor
    st = client.get("/api/models/pd/versions/1/monitoring", headers=h(tokens, "audrey"))
    assert st.status_code == 200
    body = st.json()
    assert [(w["start"][:10], w["rows"], w["labeled"]) for w in body["windows"]] == [
        ("2026-03-02", 300, 300), ("2026-03-03", 300, 0), ("2026-03-04", 300, 0)]
    x = [e for e in body["evaluations"] if e["rule"] == "drift.feature" and e["label"] == "x"]
    assert [e["state"] for e in x] == ["pass", "fail", "pass"]
    assert x[1]["value"] > 0.1 and x[1]["threshold"] == {"max": 0.1}

    alerts = client.get("/api/alerts", params={"model": "pd", "state": "open"},
                        headers=h(tokens, "audrey")).json()
    assert len(alerts) == 1
    aid = alerts[0]["id"]
    assert client.get(f"/api/alerts/{aid}", headers=h(tokens, "audrey")).json() == alerts[0]
    r = client.post(f"/api/alerts/{aid}/ack", json={"note": "looking"},
                    headers=h(tokens, "rita"))
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["note"] == "looking"
    assert client.post(f"/api/alerts/{aid}/ack", headers=h(tokens, "rita")).status_code == 409
    # the developer who registered the version may not resolve its alert
    r = client.post(f"/api/alerts/{aid}/resolve", json={"note": "mine"},
                    headers=h(tokens, "dana"))
    assert r.status_code == 403
    r = client.post(f"/api/alerts/{aid}/resolve", json={"note": "feed fixed"},
                    headers=h(tokens, "victor"))
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    assert client.get("/api/alerts", params={"state": "open"},
                      headers=h(tokens, "audrey")).json() == []

    with db.transaction() as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        assert verify_chain(s).ok
    by_action: dict[str, list[str]] = {}
    for e in events:
        by_action.setdefault(e.action, []).append(e.actor)
    assert by_action["monitor.ingest"] == ["dana", "bo", "victor", "victor"]
    assert by_action["monitor.labels"] == ["dana"]
    assert by_action["monitor.evaluate"] == ["victor"] * 3
    assert by_action["monitor.alert"] == ["victor"]
    assert by_action["alert.ack"] == ["rita"] and by_action["alert.resolve"] == ["victor"]


def test_a_multipart_upload_is_a_batch_too(api) -> None:
    client, tokens = api
    buf = io.StringIO()
    day(0).drop(columns="y").to_csv(buf, index=False)
    r = client.post(BATCHES, params=OPTS, headers=h(tokens, "dana"),
                    files={"file": ("monday.csv", buf.getvalue().encode(), "text/csv")})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "monday.csv" and r.json()["rows"] == 300
    r = client.post(BATCHES, params=OPTS, headers=h(tokens, "dana"),
                    files={"file": ("tuesday.parquet", parquet_bytes(day(1).drop(columns="y")),
                                    "application/octet-stream")})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_bad_batches_get_a_4xx_that_names_the_problem_and_nothing_is_stored(api, db) -> None:
    client, tokens = api
    good = day(0).drop(columns="y")
    ok = client.post(BATCHES, params=OPTS, content=parquet_bytes(good),
                     headers=h(tokens, "dana", PARQUET))
    assert ok.status_code == 201
    before = _counts(db)
    bad_scores = day(1).drop(columns="y")
    bad_scores.loc[7, "p"] = 1.5
    wrong_type = day(1).drop(columns="y")
    wrong_type["x"] = "high"
    csv_missing = io.StringIO()
    day(1).drop(columns=["y", "c"]).to_csv(csv_missing, index=False)
    cases = [
        # (body, headers, params, status, words the message must hold)
        (parquet_bytes(good), PARQUET, OPTS, 409, ["already ingested as batch"]),
        (parquet_bytes(bad_scores), PARQUET, OPTS, 400,
         ["column 'p'", "expected probabilities in [0, 1]", "1.5", "data row 8"]),
        (parquet_bytes(wrong_type), PARQUET, OPTS, 400, ["column 'x'", "expected numeric"]),
        (csv_missing.getvalue().encode(), CSV, OPTS, 400,
         ["request body (CSV)", "monitored feature column(s) c are missing"]),
        (parquet_bytes(good), PARQUET, {**OPTS, "time_column": "when"}, 400,
         ["time column 'when' is not in the data"]),
        (parquet_bytes(good), PARQUET, {"time_column": "ts"}, 400,
         ["prediction column, a score column or both"]),
        (b"PAR1 not really parquet", PARQUET, OPTS, 400, ["request body (Parquet)"]),
        (b"x,c\n1,a\n", {"Content-Type": "application/octet-stream"}, OPTS, 415,
         ["expected a Parquet file"]),
        (b"<rows/>", {"Content-Type": "application/xml"}, OPTS, 415,
         ["application/xml is not accepted", "text/csv"]),
        (b"", CSV, OPTS, 400, ["request body: empty"]),
        (b'{"rows": 3}', {"Content-Type": "application/json"}, OPTS, 400,
         ["expected a list of row objects"]),
        (b'[{"x": 1, "c": "a"}, 7]', {"Content-Type": "application/json"}, OPTS, 400,
         ["row 2: expected an object"]),
        (b'[{"x": 1}, {"x": "one"}]', {"Content-Type": "application/json"}, OPTS, 400,
         ["column 'x': expected one type of value", "integer and text", "row 2"]),
        (b'[{"x": 99999999999999999999999}]', {"Content-Type": "application/json"}, OPTS,
         400, ["column 'x': a whole number does not fit in 64 bits"]),
        (b'[{"x": [1]}]', {"Content-Type": "application/json"}, OPTS, 400,
         ["row 1, column 'x'", "got list"]),
        (b'[{"x": 1', {"Content-Type": "application/json"}, OPTS, 400, ["not valid JSON"]),
        (b"[]", {"Content-Type": "application/json"}, OPTS, 400, ["no rows"]),
    ]
    for body, headers, params, status, words in cases:
        r = client.post(BATCHES, params=params, content=body, headers=h(tokens, "dana", headers))
        assert r.status_code == status, (words, r.status_code, r.text)
        message = r.json()["error"]["message"]
        for w in words:
            assert w in message, (w, message)
        assert "Traceback" not in r.text and "/tmp" not in message
    r = client.post(BATCHES, params=OPTS, headers=h(tokens, "dana"),
                    files={"file": ("notes.docx", b"\x00\x01", "application/msword")})
    assert r.status_code == 415 and "notes.docx" in r.json()["error"]["message"]
    r = client.post(LABELS, params={"id_column": "row", "target": "y"},
                    json=[{"row": "d0-1", "label": 1}], headers=h(tokens, "dana"))
    assert r.status_code == 400 and "target column 'y' is not in the data" in r.text
    r = client.post("/api/monitoring/run", json={"policy": "no-such-policy", "tier": "high"},
                    headers=h(tokens, "victor"))
    assert r.status_code == 404 and "no-such-policy" in r.json()["error"]["message"]
    r = client.post("/api/monitoring/run", json={"version": "1"}, headers=h(tokens, "victor"))
    assert r.status_code == 400 and "needs its model" in r.text
    r = client.get("/api/alerts", params={"state": "closed"}, headers=h(tokens, "audrey"))
    assert r.status_code == 422
    assert client.get("/api/alerts/999", headers=h(tokens, "audrey")).status_code == 404
    assert _counts(db) == before


def test_batches_larger_than_the_upload_limit_are_refused(api, monkeypatch) -> None:
    import assay.api.routes_monitor as rm

    client, tokens = api
    monkeypatch.setattr(rm, "MAX_BATCH_BYTES", 1000)
    body = parquet_bytes(day(0).drop(columns="y"))
    assert len(body) > 1000
    r = client.post(BATCHES, params=OPTS, content=body, headers=h(tokens, "dana", PARQUET))
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]


def test_roles_credentials_and_csrf_are_enforced(api, db: Store) -> None:
    client, tokens = api
    body = parquet_bytes(day(0).drop(columns="y"))
    # no credentials: 401 on every monitoring route
    for method, path in (("POST", BATCHES), ("POST", LABELS),
                         ("GET", "/api/models/pd/versions/1/monitoring"),
                         ("POST", "/api/monitoring/run"), ("GET", "/api/alerts"),
                         ("GET", "/api/alerts/1"), ("POST", "/api/alerts/1/ack"),
                         ("POST", "/api/alerts/1/resolve")):
        r = client.request(method, path, params=OPTS)
        assert r.status_code == 401, (method, path, r.text)
    # the read-only auditor and a user without roles send nothing, run nothing
    for who in ("audrey", "nora"):
        r = client.post(BATCHES, params=OPTS, content=body, headers=h(tokens, who, PARQUET))
        assert r.status_code == 403, r.text
        r = client.post(LABELS, params={"id_column": "row", "target": "y"},
                        json=[{"row": "a", "y": 1}], headers=h(tokens, who))
        assert r.status_code == 403
        r = client.post("/api/monitoring/run", json={}, headers=h(tokens, who))
        assert r.status_code == 403
    # compliance may acknowledge but not send batches or run
    r = client.post(BATCHES, params=OPTS, content=body, headers=h(tokens, "cora", PARQUET))
    assert r.status_code == 403
    assert _counts(db)[0] == 0

    # make an alert, then try to get around the alert roles
    client.post(BATCHES, params=OPTS, content=body, headers=h(tokens, "dana", PARQUET))
    client.post(BATCHES, params=OPTS, content=parquet_bytes(day(1, shift=3).drop(columns="y")),
                headers=h(tokens, "dana", PARQUET))
    run = client.post("/api/monitoring/run", json={"policy": "monapi-test", "tier": "high"},
                      headers=h(tokens, "dana"))
    assert run.status_code == 200, run.text
    aid = run.json()["alerts"][0]["id"]
    for who in ("audrey", "nora", "sean"):
        assert client.post(f"/api/alerts/{aid}/ack", headers=h(tokens, who)).status_code == 403
    for who in ("audrey", "bo", "dana"):  # bo may not resolve; dana registered the version
        r = client.post(f"/api/alerts/{aid}/resolve", headers=h(tokens, who))
        assert r.status_code == 403, (who, r.text)

    # a browser session: reads without CSRF, changes only with the session's token
    with db.transaction() as s:
        raw, row = auth.open_session(s, reg.get_user(s, "rita"))
        csrf = row.csrf_token
    browser = TestClient(client.app, cookies={"assay_session": raw})
    assert browser.get("/api/alerts").status_code == 200
    r = browser.post(f"/api/alerts/{aid}/ack", json={})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = browser.post(BATCHES, params=OPTS, content=parquet_bytes(day(2).drop(columns="y")),
                     headers=PARQUET)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = browser.post(f"/api/alerts/{aid}/ack", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    with db.transaction() as s:
        acts = [(e.action, e.actor) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action.like("alert.%")))]
    assert acts == [("alert.ack", "rita")]
