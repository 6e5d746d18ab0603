"""The impact numbers over HTTP (real app and store, SQLite and PostgreSQL): the same JSON
as the command line, who may compute and who may record, the version's stored model for
scoring, and bad input answered 4xx with one line and nothing stored."""

from __future__ import annotations

import io
import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from assay import registry
from assay.evidence import digest_bytes, store_file
from assay.impact import compute
from assay.impact.tables import ImpactAnalysis
from assay.store.audit import AuditEvent
from test_api_impact import Api, api  # noqa: F401
from test_impact_record import env  # noqa: F401

VALUE = "tp=0,fp=-5,tn=0,fn=-1"
Q = {"target": "credit", "positive_label": "1", "score": "score", "value": VALUE}


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 1500
    sex = rng.choice(["female", "male"], n)
    income = rng.normal(3 + (sex == "male"), 1, n)
    y = rng.binomial(1, 1 / (1 + np.exp(-(income - 3))))
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1).round(3)
    return pd.DataFrame({"credit": y, "score": score, "sex": sex, "income": income.round(3)})


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "scored.csv"
    _frame().to_csv(path, index=False)
    return path


def _post(api: Api, user: str | None, kind: str, path: Path, **params):  # noqa: F811
    return api.client.post(f"/api/impact/{kind}", params={**Q, **params},
                           content=path.read_bytes(),
                           headers={"Content-Type": "text/csv", **_auth(api, user)})


def _auth(api: Api, user: str | None) -> dict[str, str]:  # noqa: F811
    return {"Authorization": f"Bearer {api.tokens[user]}"} if user else {}


def test_value_and_frontier_answer_the_command_line_json(api: Api, csv: Path):  # noqa: F811
    r = _post(api, "aud", "value", csv, replicates=50, sensitive="sex")
    assert r.status_code == 200, r.text
    want = compute.value(csv, target="credit", positive_label="1", score="score", value=VALUE,
                         sensitive=["sex"], n_boot=50)
    assert r.json() == json.loads(json.dumps(want))
    with csv.open("rb") as fh:
        r = api.client.post("/api/impact/frontier", headers=_auth(api, "val"),
                            params={**Q, "sensitive": "sex", "levels": "0.8,1"},
                            files={"file": ("scored.csv", fh, "text/csv")})
    assert r.status_code == 200, r.text
    assert [lv["level"] for lv in r.json()["levels"]] == [0.8, 1.0]
    assert _post(api, None, "value", csv).status_code == 401
    assert api.count(ImpactAnalysis) == 0


def test_recording_needs_an_editor(api: Api, csv: Path):  # noqa: F811
    r = _post(api, "aud", "value", csv, replicates=0, record="scorer@1")
    assert r.status_code == 403 and api.count(ImpactAnalysis) == 0
    r = _post(api, "val", "value", csv, replicates=0, record="scorer@1")
    assert r.status_code == 403 and api.count(ImpactAnalysis) == 0
    r = _post(api, "bea", "value", csv, replicates=0, record="scorer@9")
    assert r.status_code == 404 and api.count(ImpactAnalysis) == 0
    r = _post(api, "bea", "value", csv, replicates=0, record="scorer@1")
    assert r.status_code == 200, r.text
    rec = r.json()["recorded"]
    assert rec["kind"] == "value" and rec["created_by"] == "bea"
    assert rec["inputs"] == {"data": digest_bytes(csv.read_bytes())}
    with api.store.transaction() as s:
        ev = s.query(AuditEvent).filter(AuditEvent.action == "impact.analysis").one()
        assert ev.actor == "bea" and ev.evidence["impact_value"] == rec["result_digest"]
    sections = {x["id"]: x for x in api("aud", "GET", "/api/models/scorer/versions/1/impact")
                .json()["sections"]}
    assert f"on data {rec['inputs']['data']}" in sections["value"]["note"]
    assert sections["value"]["svg"].startswith("<svg")
    assert "No frontier analysis is recorded" in sections["frontier"]["note"]
    page = api("aud", "GET", "/models/scorer/impact?version=1")
    assert page.status_code == 200, page.text
    assert 'id="numbers-value"' in page.text and f"on data {rec['inputs']['data']}" in page.text
    assert "<svg" in page.text.split('id="numbers-value"')[1].split('id="numbers-')[0]
    assert "No frontier analysis is recorded" in page.text


def test_scenarios_take_the_yaml_beside_the_data(api: Api, csv: Path):  # noqa: F811
    doc = "scenarios:\n  - name: stricter\n    threshold: 0.6\n"
    files = {"file": ("scored.csv", csv.read_bytes(), "text/csv"),
             "scenarios": (None, doc)}
    r = api.client.post("/api/impact/scenarios", headers=_auth(api, "rita"),
                        params={**Q, "replicates": 0, "record": "scorer@1"}, files=files)
    assert r.status_code == 200, r.text
    assert [s["name"] for s in r.json()["scenarios"]] == ["stricter"]
    assert r.json()["recorded"]["inputs"]["scenarios"] == digest_bytes(doc.encode())
    bad = {"file": files["file"], "scenarios": (None, "scenarios:\n  - name: x\n    thresold: 1\n")}
    r = api.client.post("/api/impact/scenarios", headers=_auth(api, "rita"),
                        params={**Q, "replicates": 0, "record": "scorer@1"}, files=bad)
    assert r.status_code == 400 and "scenarios:3" in r.json()["error"]["message"]
    r = api.client.post("/api/impact/scenarios", headers={**_auth(api, "rita"),
                                                          "Content-Type": "text/csv"},
                        params=Q, content=csv.read_bytes())
    assert r.status_code == 400 and "the field 'scenarios'" in r.json()["error"]["message"]
    assert api.count(ImpactAnalysis) == 1


@pytest.mark.parametrize("params,status,message", [
    ({"score": "scroe"}, 400, "scroe"),
    ({"value": "tp=1,fp=oops"}, 400, "fp"),
    ({"record": "no-version"}, 422, "record"),
    ({"sensitive": "sex", "group": "female"}, 400, "give both group and reference"),
    ({"sensitive": "sex", "group": "female", "reference": "male"}, 400, "needs model="),
])
def test_bad_input_is_one_line_and_stores_nothing(api: Api, csv: Path, params,  # noqa: F811
                                                  status, message):
    kind = "sensitivity" if "group" in params else "value"
    r = _post(api, "bea", kind, csv, replicates=0, **params)
    assert r.status_code == status, r.text
    detail = r.json()["error"]["message"]
    text = detail if isinstance(detail, str) else json.dumps(detail)
    assert message in text and "Traceback" not in text
    assert api.count(ImpactAnalysis) == 0


def test_sensitivity_scores_with_the_registered_model_only(api: Api, csv: Path,  # noqa: F811
                                                           tmp_path: Path):
    df = _frame()
    est = LogisticRegression().fit(df[["income"]], df["credit"])
    path = tmp_path / "m.joblib"
    joblib.dump(est, path)
    digest = store_file(api.store.settings, path)
    with api.store.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), "scorer", "2",
                             artifact_digest=digest)
    q = {"target": "credit", "positive_label": "1", "value": VALUE, "sensitive": "sex",
         "group": "female", "reference": "male", "replicates": 0}
    r = api.client.post("/api/impact/sensitivity", headers={**_auth(api, "aud"),
                                                            "Content-Type": "text/csv"},
                        params={**q, "model": "scorer@2"}, content=csv.read_bytes())
    assert r.status_code == 200, r.text
    assert [f["feature"] for f in r.json()["features"]["features"]] == ["income"]
    # version 1's artefact digest names nothing in the evidence store
    r = api.client.post("/api/impact/sensitivity", headers={**_auth(api, "aud"),
                                                            "Content-Type": "text/csv"},
                        params={**q, "model": "scorer@1"}, content=csv.read_bytes())
    assert r.status_code == 400 and "no model artefact" in r.json()["error"]["message"]
    # a model sent in the body is data, never loaded
    r = api.client.post("/api/impact/sensitivity", headers=_auth(api, "aud"),
                        params={**q, "model": "scorer@2"},
                        files={"file": ("m.joblib", io.BytesIO(path.read_bytes()),
                                        "application/octet-stream")})
    assert r.status_code == 415


def test_causal_estimates_over_http_equal_the_library_and_record_for_editors(
        api: Api, tmp_path: Path):  # noqa: F811
    from assay.impact import causal
    from test_impact_causal import panel, rd_data

    def post(user: str | None, kind: str, frame: pd.DataFrame, **params):
        return api.client.post(f"/api/impact/{kind}", params=params,
                               content=frame.to_csv(index=False).encode(),
                               headers={"Content-Type": "text/csv", **_auth(api, user)})

    df = panel()
    q = {"outcome": "y", "unit": "unit", "time": "t", "treated": "treated", "post": "post"}
    r = post("aud", "did", df, **q)
    assert r.status_code == 200, r.text
    want = causal.did(df, **q, source="request body")
    got = r.json()
    assert got["estimate"] == pytest.approx(want["estimate"], rel=1e-12)
    assert got["se"] == pytest.approx(want["se"], rel=1e-12)
    assert got["ci"] == pytest.approx(want["ci"], rel=1e-12)
    rd = rd_data(0)
    r = post("val", "rdd", rd, outcome="y", running="score", cutoff=0.7)
    assert r.status_code == 200, r.text
    assert r.json()["estimate"] == pytest.approx(
        causal.rdd(rd, outcome="y", running="score", cutoff=0.7)["estimate"], rel=1e-12)
    rng = np.random.default_rng(3)
    ab = pd.DataFrame({"arm": np.where(rng.random(400) < 0.5, "t", "c"),
                       "y": rng.normal(0, 1, 400)})
    r = post("val", "abtest", ab, outcome="y", arm="arm", control="c")
    assert r.status_code == 200 and "srm" in r.json()
    # bad input: one line, 400; recording needs an editor and is audited
    r = post("val", "did", df.assign(treated=df["treated"] * 2), **q)
    assert r.status_code == 400 and "\n" not in r.json()["error"]["message"]
    assert post("aud", "did", df, **q, record="scorer@1").status_code == 403
    assert post(None, "did", df, **q).status_code == 401
    assert api.count(ImpactAnalysis) == 0
    r = post("bea", "did", df, **q, record="scorer@1")
    assert r.status_code == 200, r.text
    assert r.json()["recorded"]["kind"] == "did" and api.count(ImpactAnalysis) == 1
    causal_rec = api("aud", "GET", "/api/models/scorer/versions/1/impact").json()["causal"]
    assert len(causal_rec) == 1 and causal_rec[0]["recorded"]["created_by"] == "bea"
