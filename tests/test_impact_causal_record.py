"""Causal estimates (A/B, DiD, RDD) recorded as evidence of a model version with
``--record MODEL VERSION`` (editors only, audited, content-addressed), and the latest of
each method shown in the impact report, the API's impact record and the web Impact tab
with its assumptions, estimate, interval, n, when and on which data (SQLite and
PostgreSQL through the ``db`` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay import registry as reg
from assay.evidence import digest_file, open_artifact
from assay.impact.analyses import latest_analysis, record_analysis
from assay.impact.causal import abtest, did
from assay.impact.tables import ImpactAnalysis
from assay.store import Store
from assay.store.audit import AuditEvent
from test_api_impact import Api, api  # noqa: F401
from test_impact_analyses import MODEL, VERSION, _fast_hashes, _report  # noqa: F401
from test_impact_analyses import data as scored  # noqa: F401
from test_impact_causal import cli, panel, rd_data
from test_impact_record import env  # noqa: F401


def _ab_frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 2000
    arm = np.where(rng.random(n) < 0.5, "treatment", "control")
    return pd.DataFrame({"arm": arm, "y": 0.4 * (arm == "treatment") + rng.normal(0, 1, n)})


@pytest.fixture
def files(scored: Path, tmp_path: Path) -> dict[str, Path]:  # noqa: F811
    out = {"did": tmp_path / "panel.csv", "rdd": tmp_path / "rd.csv",
           "abtest": tmp_path / "ab.csv"}
    panel().to_csv(out["did"], index=False)
    rd_data(0).to_csv(out["rdd"], index=False)
    _ab_frame().to_csv(out["abtest"], index=False)
    return out


def _args(kind: str, path: Path) -> list[str]:
    extra = {"did": ["--outcome", "y", "--unit", "unit", "--time", "t", "--treated",
                     "treated", "--post", "post"],
             "rdd": ["--outcome", "y", "--running", "score", "--cutoff", "0.7"],
             "abtest": ["--outcome", "y", "--arm", "arm", "--control", "control"]}[kind]
    return [kind, "--data", str(path), *extra]


def test_recorded_causal_estimates_show_in_the_impact_report(db: Store, files, tmp_path,
                                                             monkeypatch, capsys):
    page = _report(monkeypatch, capsys, tmp_path)
    assert "No causal estimate recorded" in page
    results = {}
    for kind in ("abtest", "did", "rdd"):
        code, out, err = cli(monkeypatch, capsys, *_args(kind, files[kind]), "--format",
                             "json", "--record", MODEL, VERSION, "--as", "dana")
        assert code == 0, (kind, err)
        results[kind] = json.loads(out)
        assert f"recorded as {kind} analysis" in err
    page = _report(monkeypatch, capsys, tmp_path)
    assert "No causal estimate recorded" not in page
    causal = page.split('id="causal"')[1].split('id="register"')[0]
    for kind, r in results.items():
        assert r["method"] in causal
        assert f"on data {digest_file(files[kind])}" in causal
        for a in r["assumptions"]:
            assert a.replace("'", "&#39;").replace('"', "&#34;") in causal
        assert f"<strong>{r['estimate']:.4g}</strong>" in causal
    assert causal.count("<svg") == 1  # the event study of the DiD
    ab = results["abtest"]["n"]
    assert f"{ab['treatment'] + ab['control']} (" in causal
    with db.transaction() as s:
        events = s.query(AuditEvent).filter(AuditEvent.action == "impact.analysis").all()
        assert sorted(e.payload["kind"] for e in events) == ["abtest", "did", "rdd"]
        assert all(e.actor == "dana" for e in events)
        cfg = db.settings
        d = latest_analysis(s, MODEL, VERSION, "did", settings=cfg)
        assert d["result"] == results["did"] and d["svg"].startswith("<svg")
        assert d["parameters"]["unit"] == "unit"
        ev = next(e for e in events if e.payload["kind"] == "did")
        assert ev.evidence["impact_did"] == d["result_digest"]
        assert ev.evidence["impact_did_chart"] == d["chart_digest"]
        assert json.loads(open_artifact(cfg, d["result_digest"])) == results["did"]
        assert latest_analysis(s, MODEL, VERSION, "rdd", settings=cfg)["svg"] is None


def test_report_keeps_did_data_given_at_render_time(db: Store, files, tmp_path,
                                                    monkeypatch, capsys):
    out = tmp_path / "impact.html"
    code, _, err = cli(monkeypatch, capsys, "report", MODEL, VERSION, "--out", str(out),
                       "--did-data", str(files["did"]), "--did", "y,unit,t,treated,post")
    assert code == 0, err
    causal = out.read_text().split('id="causal"')[1].split('id="register"')[0]
    assert "difference-in-differences" in causal and "<svg" in causal
    assert "Recorded " not in causal


@pytest.mark.parametrize("kind", ["abtest", "did", "rdd"])
def test_recording_an_estimate_needs_an_editor(db: Store, files, kind, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, *_args(kind, files[kind]),
                         "--record", MODEL, VERSION, "--as", "vic")
    assert code == 2 and "may not record impact analyses" in err and out == ""
    assert "\n" not in err.strip()
    code, _, err = cli(monkeypatch, capsys, *_args(kind, files[kind]),
                       "--record", MODEL, "9.9", "--as", "dana")
    assert code == 2 and "has no version '9.9'" in err
    with db.transaction() as s:
        assert s.query(ImpactAnalysis).count() == 0
        assert s.query(AuditEvent).filter(AuditEvent.action == "impact.analysis").count() == 0


def test_api_and_web_show_the_recorded_estimates(api: Api):  # noqa: F811
    r = api("aud", "GET", "/api/models/scorer/versions/1/impact")
    assert r.status_code == 200 and r.json()["causal"] == []
    page = api("aud", "GET", "/models/scorer/impact?version=1")
    assert "No causal estimate recorded" in page.text
    est = {"abtest": abtest(_ab_frame(), outcome="y", arm="arm", control="control"),
           "did": did(panel(), outcome="y", unit="unit", time="t", treated="treated",
                      post="post")}
    with api.store.transaction() as s:
        for kind, r in est.items():
            record_analysis(s, reg.get_user(s, "bea"), "scorer", "1", kind, r,
                            inputs={"data": "sha256:" + "ab" * 32},
                            settings=api.store.settings)
    causal = {c["kind"]: c for c in
              api("aud", "GET", "/api/models/scorer/versions/1/impact").json()["causal"]}
    assert set(causal) == {"abtest", "did"}
    assert causal["did"]["estimate"] == pytest.approx(est["did"]["estimate"])
    assert causal["did"]["assumptions"] == est["did"]["assumptions"]
    assert causal["did"]["svg"].startswith("<svg") and causal["abtest"]["svg"] == ""
    assert causal["abtest"]["recorded"]["created_by"] == "bea"
    assert causal["abtest"]["recorded"]["data"] == "sha256:" + "ab" * 32
    page = api("aud", "GET", "/models/scorer/impact?version=1").text
    assert "No causal estimate recorded" not in page
    sec = page.split('id="causal-did"')[1]
    assert est["did"]["method"] in sec and "<svg" in sec
    assert f"{est['did']['estimate']:.4g}" in sec
    assert 'id="causal-abtest"' in page and "on data sha256:" + "ab" * 32 in page


# --------------------------------------------------------------------------- incidents


def test_register_links_incidents_of_the_version_by_id(db: Store, scored, tmp_path,  # noqa: F811
                                                       monkeypatch, capsys):
    from assay.cli.monitor import console
    from assay.errors import InputError, NotFoundError
    from assay.impact import add_register_entry, link_register_entry, list_register

    # wide enough that no cell wraps, whatever width another test left the console at
    monkeypatch.setattr(console, "width", 200)
    from assay.impact.tables import ImpactRegisterEntry
    from assay.operate.incidents import open_incident

    with db.transaction() as s:
        dana = reg.get_user(s, "dana")
        entry = add_register_entry(s, dana, MODEL, VERSION, title="thin-file denials",
                                   kind="negative", likelihood=3, severity=4)["id"]
        inc = open_incident(s, dana, MODEL, VERSION, title="Approval rate fell",
                            severity="SEV2").id
    before = None
    with db.transaction() as s:
        before = dict(s.get(ImpactRegisterEntry, entry).links)
        n_events = s.query(AuditEvent).count()
    for bad, error, message in ((inc + 1000, NotFoundError,
                                 rf"incidents: {MODEL}@{VERSION} has no incident "
                                 rf"#{inc + 1000}"),
                                ("INC-7", InputError, r"incidents: expected an incident id"),
                                (str(2**40), NotFoundError, rf"has no incident #{2**40}")):
        with pytest.raises(error, match=message), db.transaction() as s:
            link_register_entry(s, reg.get_user(s, "dana"), MODEL, VERSION, entry,
                                risks=["R-1"], incidents=[inc, bad], status="monitoring")
    with db.transaction() as s:
        e = s.get(ImpactRegisterEntry, entry)
        assert e.links == before and e.status == "anticipated"
        assert s.query(AuditEvent).count() == n_events
    code, _, err = cli(monkeypatch, capsys, "register", "link", MODEL, VERSION, str(entry),
                       "--incident", str(inc + 1000), "--as", "dana")
    assert code == 2 and f"has no incident #{inc + 1000}" in err
    assert "\n" not in err.strip()
    code, _, err = cli(monkeypatch, capsys, "register", "link", MODEL, VERSION, str(entry),
                       "--incident", str(inc), "--as", "dana")
    assert code == 0, err
    with db.transaction() as s:
        assert s.get(ImpactRegisterEntry, entry).links["incidents"] == [inc]
        row = next(r for r in list_register(s, MODEL, VERSION) if r["id"] == entry)
        assert row["incidents"] == [{"id": inc, "title": "Approval rate fell",
                                     "state": "open"}]
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = cli(monkeypatch, capsys, "register", "list", MODEL, VERSION)
    assert code == 0 and f"#{inc} Approval rate fell (open)" in out
    page = _report(monkeypatch, capsys, tmp_path)
    assert f"incidents: #{inc} Approval rate fell (open)" in page


def test_an_incident_of_another_version_is_not_linked(api: Api):  # noqa: F811
    from assay.operate.incidents import open_incident

    with api.store.transaction() as s:
        other = registry_version(s)
        inc = open_incident(s, reg.get_user(s, "rita"), "scorer", other, title="elsewhere",
                            severity="SEV2").id
        mine = open_incident(s, reg.get_user(s, "rita"), "scorer", "1", title="here",
                             severity="SEV2").id
    v = "/api/models/scorer/versions/1/impact/register"
    entry = api("bea", "POST", v, json={"title": "denials", "kind": "negative",
                                         "likelihood": 2, "severity": 5}).json()["id"]
    r = api("bea", "POST", f"{v}/{entry}/links", json={"incidents": [inc]})
    assert r.status_code == 404 and f"has no incident #{inc}" in r.text
    r = api("bea", "POST", f"{v}/{entry}/links", json={"incidents": [2**40]})
    assert r.status_code == 422
    r = api("bea", "POST", f"{v}/{entry}/links", json={"incidents": [mine]})
    assert r.status_code == 200, r.text
    assert r.json()["incidents"] == [{"id": mine, "title": "here", "state": "open"}]
    page = api("aud", "GET", "/models/scorer/impact?version=1").text
    assert f"#{mine} here (open)" in page.split('id="register"')[1]


def registry_version(s) -> str:
    """A second version of the model ``scorer``."""
    from assay import registry

    registry.add_version(s, reg.get_user(s, "alice"), "scorer", "2",
                         artifact_digest="sha256:" + "cd" * 32)
    return "2"
