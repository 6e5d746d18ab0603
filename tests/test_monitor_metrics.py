"""``GET /metrics``: the Prometheus exposition parsed back and compared with the store, and
the token that guards it. Real app, real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from _monitor_api import POLICY, day, frame
from assay import registry as reg
from assay.api.app import create_app
from assay.auth import service as auth
from assay.store import Store
from test_workflow import DOC, MODEL, USERS, WORKFLOW, Env, approved, register, write_policy

TOKEN = "prometheus-scrapes-with-this-secret"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def monitored(db: Store, tmp_path: Path) -> dict:
    """scorer@1 approved (gate open) and scorer@2 not submitted, both monitored for three
    days; day 1 of scorer@2 drifts."""
    from assay.evidence import digest_file, store_bytes
    from assay.monitor import ingest, run

    train = tmp_path / "train.parquet"
    frame(2000, 1)[["x", "c"]].to_parquet(train, index=False)
    data = {"training_data_source": str(train), "training_data_digest": digest_file(train)}
    policy = write_policy(tmp_path / "wf-test.yaml", WORKFLOW)
    with db.transaction() as s:
        admin = reg.add_user(s, None, "root")
        for name, roles in USERS.items():
            reg.add_user(s, admin, name, roles=roles)
        reg.add_user(s, admin, "nora", roles=[])
        alice = reg.get_user(s, "alice")
        reg.register_model(s, alice, MODEL, owner="bea", decision_type="automated",
                           criticality="high")
        reg.set_model_tier(s, reg.get_user(s, "rita"), MODEL, "high")
        reg.add_version(s, alice, MODEL, "1", artifact_digest="sha256:" + "a" * 64, **data)
        reg.add_version(s, alice, MODEL, "2", **data)
        register(s, policy)
        reg.register_policy(s, reg.get_user(s, "val"), POLICY.encode(),
                            source="monapi-test.yaml", settings=db.settings)
    store_bytes(db.settings, DOC)
    approved(Env(db, policy))
    for version in ("1", "2"):
        for i in range(3):
            batch = day(i, shift=2.5 if (version, i) == ("2", 1) else 0.0).drop(columns="y")
            with db.transaction() as s:
                ingest(s, reg.get_user(s, "dave"), MODEL, version, batch, name=f"{version}-{i}",
                       time_column="ts", id_column="row", score="p")
    from assay.registry.policies import policy_named

    with db.transaction() as s:
        run(s, reg.get_user(s, "val"), MODEL, policy=policy_named(s, "monapi-test"),
            tier="high")
    tokens = {}
    with db.transaction() as s:
        root = reg.get_user(s, "root")
        for name in ("aud", "nora", "dave"):
            tokens[name] = auth.create_token(s, root, name, "tests")[1]
    return tokens


def _client(db: Store, token: str | None = TOKEN) -> TestClient:
    return TestClient(create_app(dataclasses.replace(db.settings, metrics_token=token),
                                 store=db))


def _scrape(client: TestClient, token: str) -> dict[tuple, float]:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _key(name: str, **labels: str) -> tuple:
    return name, tuple(sorted(labels.items()))


def test_metrics_per_model_and_version_match_the_store(db: Store, monitored: dict) -> None:
    from assay.monitor import list_alerts, status
    from assay.workflow import gate

    client = _client(db)
    m = _scrape(client, TOKEN)
    v1, v2 = {"model": MODEL, "version": "1"}, {"model": MODEL, "version": "2"}
    with db.transaction() as s:
        assert gate(s, MODEL, "1").allowed and not gate(s, MODEL, "2").allowed
        st = status(s, MODEL, "2")
    assert m[_key("assay_deployment_gate_open", **v1)] == 1
    assert m[_key("assay_deployment_gate_open", **v2)] == 0
    for v in (v1, v2):
        assert m[_key("assay_monitor_windows_ingested", **v)] == 3
        assert m[_key("assay_monitor_rows_ingested", **v)] == 900
        assert m[_key("assay_monitor_labeled_rows", **v)] == 0
    # the latest value of each rule per feature: that of the last window in the status
    last = [e for e in st["evaluations"] if e["window"]["start"][:10] == "2026-03-04"]
    assert {e["rule"] for e in last} == {"drift.feature", "volume.rows"}
    for e in last:
        labels = dict(v2, rule=e["rule"], metric=e["metric"], feature_or_group=e["label"])
        assert m[_key("assay_monitor_rule_value", **labels)] == pytest.approx(e["value"])
        assert m[_key("assay_monitor_rule_state", **labels)] == 0  # pass
        start = m[_key("assay_monitor_rule_window_start_timestamp_seconds", **labels)]
        assert start == pytest.approx(1772582400)  # 2026-03-04T00:00:00Z
    volume = [k for k in m if k[0] == "assay_monitor_rule_value"
              and ("rule", "volume.rows") in k[1] and ("version", "2") in k[1]]
    assert [m[k] for k in volume] == [300], volume
    # alerts not resolved, by severity and state, zero where there are none
    open_ = list_alerts_of(db, "2")
    assert [(a["rule"], a["label"], a["severity"]) for a in open_] == [
        ("drift.feature", "x", "block")]
    assert m[_key("assay_monitor_open_alerts", **v2, severity="block", state="open")] == 1
    assert m[_key("assay_monitor_open_alerts", **v2, severity="warn", state="open")] == 0
    assert m[_key("assay_monitor_open_alerts", **v1, severity="block", state="open")] == 0
    assert m[_key("assay_monitor_last_evaluation_timestamp_seconds", **v2)] > 1.7e9
    assert m[_key("assay_monitor_last_batch_timestamp_seconds", **v2)] > 1.7e9

    with db.transaction() as s:  # acknowledging moves the alert between the states
        from assay.monitor import acknowledge

        acknowledge(s, reg.get_user(s, "rita"), open_[0]["id"])
        assert [a["state"] for a in list_alerts(s, model=MODEL)] == ["acknowledged"]
    m = _scrape(client, TOKEN)
    assert m[_key("assay_monitor_open_alerts", **v2, severity="block", state="open")] == 0
    assert m[_key("assay_monitor_open_alerts", **v2, severity="block",
                  state="acknowledged")] == 1


def list_alerts_of(db: Store, version: str) -> list[dict]:
    from assay.monitor import list_alerts

    with db.transaction() as s:
        return list_alerts(s, model=MODEL, version=version, state="open")


def test_metrics_need_the_metrics_token_or_a_readers_api_token(db: Store,
                                                                monitored: dict) -> None:
    client = _client(db)
    r = client.get("/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    for header in ("Bearer", "Bearer ", "Basic " + TOKEN, TOKEN, "Bearer " + TOKEN + "x",
                   "Bearer " + TOKEN[:-1], "Bearer assay_0000_not-a-token"):
        r = client.get("/metrics", headers={"Authorization": header})
        assert r.status_code == 401, (header, r.text)
        assert "assay_monitor" not in r.text
    assert _scrape(client, monitored["aud"])  # an auditor's API token reads metrics
    r = client.get("/metrics", headers={"Authorization": f"Bearer {monitored['nora']}"})
    assert r.status_code == 403  # a user without any role does not
    # a browser session is not a token
    with db.transaction() as s:
        raw, _row = auth.open_session(s, reg.get_user(s, "aud"))
    r = TestClient(client.app, cookies={"assay_session": raw}).get("/metrics")
    assert r.status_code == 401
    # no metrics token configured: only users' API tokens are accepted
    bare = _client(db, token=None)
    assert bare.get("/metrics").status_code == 401
    assert bare.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                    ).status_code == 401
    assert _scrape(bare, monitored["dave"])
    # a revoked token reads nothing
    with db.transaction() as s:
        key = monitored["dave"].split("_")[1]
        auth.revoke_token(s, reg.get_user(s, "root"), key)
    assert bare.get("/metrics", headers={"Authorization": f"Bearer {monitored['dave']}"}
                    ).status_code == 401


def test_an_empty_store_has_metrics_without_series(db: Store, people: dict) -> None:
    m = _scrape(_client(db), TOKEN)
    assert not [k for k in m if k[0].startswith("assay_monitor")]
