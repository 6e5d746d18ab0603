"""Program metrics on a seeded history, against figures computed by hand, on SQLite and
PostgreSQL; bad periods; role checks; CSV export; the CLI.

The history (period 2026-11-02 to 2026-11-29, read at 2026-11-29 12:00 UTC):

* submissions approved in the period after 5, 7.5, 10 and 15 days (tiers high, high,
  medium, low); three rejected in the period (two "Scope document missing", one "AUC
  below threshold"), one rejected before it;
* alerts: three ``block`` (taken in hand after 2, 6 and 4 hours; resolved after 24 and
  4 hours, one unresolved), one ``warn`` still open, one ``warn`` before the period;
* risks whose open score is 16, 25, 8, 33 and 25 at the five points of the burn-down;
* certifications covering 2 of 6 models (high 1/2, medium 1/2, low 0/1, unassessed 0/1).

Figures are written out as numbers in the tests: linear-interpolation quantiles by hand
(p90 of [5, 7.5, 10, 15]: rank 0.9 x 3 = 2.7, 10 + 0.7 x 5 = 13.5).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select

from _program_history import NOW, add_alert, seed, t
from assay import registry
from assay.errors import InputError, PermissionDenied
from assay.operate import program_report, record_export
from assay.operate.render import render_html, to_csv
from assay.store import Store
from assay.store.audit import AuditEvent
from assay.workflow.tables import SignOff, Submission

SINCE, UNTIL = "2026-11-02", "2026-11-29"


@pytest.fixture
def history(db: Store, people, monkeypatch: pytest.MonkeyPatch) -> Store:
    return seed(db, monkeypatch)


def _report(db: Store, **kw):
    with db.transaction() as s:
        return program_report(s, since=kw.pop("since", SINCE), until=kw.pop("until", UNTIL),
                              now=kw.pop("now", NOW), **kw).to_dict()


def test_time_to_approve_by_tier_stage_and_week(history: Store):
    r = _report(history)["time_to_approve"]
    assert r["overall"] == {"count": 4, "median": 8.75, "p90": 13.5, "unit": "days"}
    assert r["by_tier"]["high"] == {"count": 2, "median": 6.25, "p90": 7.25, "unit": "days"}
    assert r["by_tier"]["medium"] == {"count": 1, "median": 10.0, "p90": 10.0, "unit": "days"}
    assert r["by_tier"]["low"] == {"count": 1, "median": 15.0, "p90": 15.0, "unit": "days"}
    # scope: 1, 1.5, 1 and 0.25 (the rejected m5@2 passed scope first); the skipped
    # validation of m2 does not count, and m2's deployment is timed from its scope
    assert r["by_stage"]["scope"] == {"count": 4, "median": 1.0, "p90": 1.35, "unit": "days"}
    assert r["by_stage"]["validation"] == {"count": 3, "median": 2.0, "p90": 10.8,
                                           "unit": "days"}
    assert r["by_stage"]["deployment_approval"] == {"count": 4, "median": 4.0, "p90": 6.7,
                                                    "unit": "days"}
    assert list(r["by_stage"]) == ["scope", "validation", "deployment_approval"]
    assert [(w["week"], w["count"], w["median"]) for w in r["by_week"]] == [
        ("2026-11-02", 2, 10.0), ("2026-11-09", 1, 7.5), ("2026-11-16", 1, 10.0),
        ("2026-11-23", 0, None)]


def test_approval_rate_and_rejections(history: Store):
    r = _report(history)["approvals"]
    assert (r["approved"], r["rejected"], r["rate"]) == (4, 3, 0.5714)
    assert [(w["week"], w["approved"], w["rejected"], w["rate"]) for w in r["by_week"]] == [
        ("2026-11-02", 2, 0, 1.0), ("2026-11-09", 1, 0, 1.0), ("2026-11-16", 1, 1, 0.5),
        ("2026-11-23", 0, 2, 0.0)]
    assert r["rejections_by_reason"] == [{"reason": "Scope document missing", "count": 2},
                                         {"reason": "AUC below threshold", "count": 1}]
    assert r["rejections_by_stage"] == [{"stage": "scope", "count": 2},
                                        {"stage": "validation", "count": 1}]


def test_alert_response_times_by_severity(history: Store):
    r = _report(history)["responses"]
    assert r["sources"] == ["monitoring_alert"]
    block, warn = r["by_severity"]["block"], r["by_severity"]["warn"]
    assert (block["raised"], block["unacknowledged"], block["unresolved"]) == (3, 0, 1)
    assert block["acknowledge"] == {"count": 3, "median": 4.0, "p90": 5.6, "unit": "hours"}
    assert block["resolve"] == {"count": 2, "median": 14.0, "p90": 22.0, "unit": "hours"}
    assert (warn["raised"], warn["unacknowledged"], warn["unresolved"]) == (1, 1, 1)
    assert warn["acknowledge"]["count"] == 0 and warn["acknowledge"]["median"] is None


def test_overdue_reviews(history: Store):
    r = _report(history)["overdue_reviews"]
    assert r["count"] == 2
    assert [(i["model"], i["kind"], i["days_overdue"]) for i in r["items"]] == [
        ("m1", "periodic_review", 9), ("m3", "approval_expired", None)]


def test_burn_down_replays_the_register(history: Store):
    r = _report(history)["burn_down"]
    assert [(p["at"], p["open_score"], p["open_entries"]) for p in r] == [
        ("2026-11-02T00:00:00Z", 16, 1), ("2026-11-09T00:00:00Z", 25, 2),
        ("2026-11-16T00:00:00Z", 8, 1), ("2026-11-23T00:00:00Z", 33, 2),
        ("2026-11-29T12:00:00Z", 25, 1)]


def test_certification_coverage_by_tier(history: Store):
    r = _report(history)["coverage"]
    assert (r["models"], r["covered"], r["share"]) == (6, 2, 0.3333)
    assert r["by_tier"] == {
        "high": {"models": 2, "covered": 1, "share": 0.5},
        "medium": {"models": 2, "covered": 1, "share": 0.5},
        "low": {"models": 1, "covered": 0, "share": 0.0},
        "unassessed": {"models": 1, "covered": 0, "share": 0.0}}


def test_a_shorter_period_counts_only_its_days(history: Store):
    r = _report(history, since="2026-11-09", until="2026-11-15")
    assert r["time_to_approve"]["overall"]["count"] == 1  # m2 only (7.5 days)
    assert r["time_to_approve"]["overall"]["median"] == 7.5
    assert (r["approvals"]["approved"], r["approvals"]["rejected"]) == (1, 0)
    assert r["responses"]["by_severity"]["block"]["raised"] == 2
    assert [p["open_score"] for p in r["burn_down"]] == [25, 8]  # 11-09 and 11-16 00:00


@pytest.mark.parametrize(("since", "until", "message"), [
    ("2026-11-20", "2026-11-10", "since 2026-11-20 is after until 2026-11-10"),
    ("2026-12-01", None, "since: 2026-12-01 is in the future (today is 2026-11-29 UTC)"),
    (None, "2027-01-01", "until: 2027-01-01 is in the future"),
    ("yesterday", None, "since: expected a date as YYYY-MM-DD, got 'yesterday'"),
    ("2026-02-30", None, "since: expected a date as YYYY-MM-DD, got '2026-02-30'"),
])
def test_bad_periods_are_refused(db: Store, since, until, message):
    with db.transaction() as s, pytest.raises(InputError) as err:
        program_report(s, since=since, until=until, now=NOW)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_only_program_readers_may_read_and_export(history: Store):
    with history.transaction() as s:
        for name in ("audrey", "cora", "rita", "ada"):
            program_report(s, since=SINCE, until=UNTIL, now=NOW,
                           actor=registry.get_user(s, name))
        for name in ("dana", "victor", "bo", "sean"):
            with pytest.raises(PermissionDenied, match="may not read the program report"):
                program_report(s, since=SINCE, until=UNTIL, now=NOW,
                               actor=registry.get_user(s, name))
    with history.transaction() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
        report = program_report(s, since=SINCE, until=UNTIL, now=NOW)
        record_export(s, registry.get_user(s, "audrey"), report, "csv")
        with pytest.raises(PermissionDenied):
            record_export(s, registry.get_user(s, "dana"), report, "csv")
    with history.transaction() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.seq > before)).all()
    assert [(e.action, e.actor, e.payload["format"]) for e in events] == [
        ("program.export", "audrey", "csv")]


def test_csv_export_holds_the_figures(history: Store):
    rows = list(csv.DictReader(io.StringIO(to_csv(_report(history)))))
    got = {(r["section"], r["group"], r["measure"]): r["value"] for r in rows}
    assert got["time_to_approve", "all", "median_days"] == "8.75"
    assert got["time_to_approve", "tier:high", "p90_days"] == "7.25"
    assert got["approvals", "all", "rate"] == "0.5714"
    assert got["rejections", "reason:Scope document missing", "count"] == "2"
    assert got["alerts", "severity:block", "resolve_median_hours"] == "14.0"
    assert got["burn_down", "at:2026-11-23T00:00:00Z", "open_score"] == "33"
    assert got["coverage", "tier:low", "share"] == "0.0"
    assert got["overdue_reviews", "model:m1", "periodic_review"] == "9"
    assert got["time_to_approve", "week:2026-11-23", "median_days"] == ""


def test_csv_cells_never_start_a_formula(history: Store):
    with history.transaction() as s:
        sub = s.scalars(select(Submission).where(Submission.state == "rejected")).first()
        s.add(SignOff(submission_id=sub.id, stage="other", user_id=registry.get_user(
            s, "victor").id, role="validator", decision="reject",
            reason='=HYPERLINK("x")', evidence={}, created_at=t(11, 26)))
    rows = list(csv.reader(io.StringIO(to_csv(_report(history)))))
    assert ["rejections", 'reason:=HYPERLINK("x")', "count", "1"] in rows
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]
    assert not [c for c in cells if c.startswith("-") and not c[1:2].isdigit()]


def test_html_page_is_standalone_with_charts(history: Store):
    page = render_html(_report(history))
    assert page.count("<svg") == 5
    assert "<script" not in page and "http://" not in page.replace(
        "http://www.w3.org/2000/svg", "")
    assert "Scope document missing" in page and "8.75" in page


def test_empty_store_gives_empty_figures(db: Store):
    r = _report(db)
    assert r["time_to_approve"]["overall"] == {"count": 0, "median": None, "p90": None,
                                               "unit": "days"}
    assert r["approvals"]["rate"] is None
    assert r["coverage"]["share"] is None
    assert all(p["open_score"] == 0 for p in r["burn_down"])
    json.dumps(r)
    assert "<svg" in render_html(r)


# --------------------------------------------------------------------------- the CLI

def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from assay.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _events(db: Store) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


PAST = ("--since", SINCE, "--until", "2026-11-28")


def test_cli_json_and_table(history: Store, capsys):
    before = _events(history)
    code, out, err = cli(capsys, "program", "report", *PAST, "--format", "json",
                         "--as", "audrey")
    assert code == 0, err
    r = json.loads(out)
    assert r["time_to_approve"]["overall"]["median"] == 8.75
    assert r["approvals"]["rate"] == 0.5714
    assert r["coverage"]["by_tier"]["high"]["share"] == 0.5
    code, out, err = cli(capsys, "program", "report", *PAST, "--as", "rita")
    assert code == 0, err
    assert "Time from submission to approval" in out and "8.75" in out
    assert "approval rate 57% (4 approved, 3 rejected)" in out
    assert _events(history) == before  # reading is not an export


def test_cli_exports_are_written_whole_and_audited(history: Store, capsys, tmp_path):
    before = _events(history)
    target = tmp_path / "program.csv"
    code, out, err = cli(capsys, "program", "report", *PAST, "--format", "csv", "--out",
                         str(target), "--as", "cora")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert {"section": "approvals", "group": "all", "measure": "rate",
            "value": "0.5714"} in rows
    code, out, err = cli(capsys, "program", "report", *PAST, "--format", "html",
                         "--as", "cora")
    assert code == 0 and out.startswith("<!doctype html>") and out.count("<svg") == 5
    with history.transaction() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.seq > before)
                           .order_by(AuditEvent.seq)).all()
    assert [(e.action, e.actor, e.payload["format"]) for e in events] == [
        ("program.export", "cora", "csv"), ("program.export", "cora", "html")]
    assert events[0].evidence["export"].startswith("sha256:")


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "2026-11-20", "--until", "2026-11-10"),
     "--since 2026-11-20 is after --until 2026-11-10: the period must start on or before "
     "its last day"),
    (("--since", "2999-01-01"), "--since: 2999-01-01 is in the future"),
    (("--until", "2999-01-01"), "--until: 2999-01-01 is in the future"),
    (("--since", "11/02/2026"), "--since: expected a date as YYYY-MM-DD, got '11/02/2026'"),
    (("--format", "pdf"), "--format: expected one of 'table', 'json', 'html', 'csv', got 'pdf'"),
])
def test_cli_bad_input_is_one_line_exit_2_and_changes_nothing(history: Store, capsys,
                                                              tmp_path, args, message):
    before = _events(history)
    target = tmp_path / "out.csv"
    code, _out, err = cli(capsys, "program", "report", *args, "--format", "csv", "--out",
                         str(target), "--as", "audrey") if "--format" not in args else cli(
        capsys, "program", "report", *args, "--as", "audrey")
    assert code == 2
    assert message in err.replace("\n", " ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not target.exists()
    assert _events(history) == before


def test_cli_readers_only(history: Store, capsys, tmp_path):
    before = _events(history)
    target = tmp_path / "out.csv"
    for user in ("dana", "victor", "bo"):
        code, _out, err = cli(capsys, "program", "report", *PAST, "--format", "csv",
                             "--out", str(target), "--as", user)
        assert code == 2 and "may not read the program report" in err
    assert not target.exists() and _events(history) == before
    code, _out, err = cli(capsys, "program", "report", *PAST, "--as", "nobody")
    assert code != 0 and "nobody" in err


# --------------------------------------------------------------------------- the REST API

@pytest.fixture
def api(history: Store, monkeypatch: pytest.MonkeyPatch):
    from argon2 import PasswordHasher, profiles
    from fastapi.testclient import TestClient

    import assay.auth.secrets as sec
    from assay.api.app import create_app
    from assay.auth import service as auth

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    client = TestClient(create_app(history.settings, store=history))
    tokens = {}
    with history.transaction() as s:
        admin = registry.get_user(s, "ada")
        for name in ("ada", "audrey", "cora", "rita", "dana", "victor", "bo", "sean"):
            tokens[name] = auth.create_token(s, admin, name, "tests")[1]

    def call(user: str | None, path: str, **params):
        headers = {"Authorization": f"Bearer {tokens[user]}"} if user else {}
        return client.get(path, params=params, headers=headers)

    return call


QUERY = {"since": SINCE, "until": "2026-11-28"}


def test_api_report_and_csv(api, history: Store):
    before = _events(history)
    resp = api("audrey", "/api/program", **QUERY)
    assert resp.status_code == 200, resp.text
    r = resp.json()
    assert r["time_to_approve"]["overall"] == {"count": 4, "median": 8.75, "p90": 13.5,
                                               "unit": "days"}
    assert r["approvals"]["rejections_by_reason"][0] == {"reason": "Scope document missing",
                                                         "count": 2}
    assert r["coverage"]["share"] == 0.3333
    assert _events(history) == before
    resp = api("rita", "/api/program.csv", **QUERY)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="assay-program-2026-11-02-2026-11-28.csv"' in \
        resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert {"section": "time_to_approve", "group": "stage:validation",
            "measure": "p90_days", "value": "10.8"} in rows
    with history.transaction() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.seq > before)).all()
    assert [(e.action, e.actor, e.payload["format"]) for e in events] == [
        ("program.export", "rita", "csv")]


@pytest.mark.parametrize("user", ["dana", "victor", "bo", "sean"])
def test_api_roles_that_may_not_read_get_403(api, history: Store, user):
    before = _events(history)
    for path in ("/api/program", "/api/program.csv"):
        resp = api(user, path, **QUERY)
        assert resp.status_code == 403, resp.text
        assert "needs one of the roles" in resp.json()["error"]["message"]
    assert _events(history) == before


def test_api_needs_credentials(api):
    for path in ("/api/program", "/api/program.csv"):
        assert api(None, path).status_code == 401


@pytest.mark.parametrize(("params", "message"), [
    ({"since": "2026-11-20", "until": "2026-11-10"},
     "query.since: since 2026-11-20 is after until 2026-11-10"),
    ({"since": "2999-01-01"}, "query.since: since: 2999-01-01 is in the future"),
    ({"until": "2999-01-01"}, "query.until: until: 2999-01-01 is in the future"),
    ({"until": "soon"}, "query.until: until: expected a date as YYYY-MM-DD, got 'soon'"),
])
def test_api_bad_dates_are_422_and_change_nothing(api, history: Store, params, message):
    before = _events(history)
    for path in ("/api/program", "/api/program.csv"):
        resp = api("ada", path, **params)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["message"].startswith(message)
    assert _events(history) == before


# --------------------------------------------------------------------------- the charts

def _circles(svg: str) -> list[tuple[float, float]]:
    import re

    return [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"',
                                                         svg)]


def test_trend_puts_points_on_their_scale_and_leaves_gaps():
    from assay.report.charts import trend

    svg = trend([("w1", 0.0), ("w2", None), ("w3", 1.0), ("w4", 0.5)], title="rate",
                lo=0.0, hi=1.0)
    (x1, y1), (x3, y3), (x4, y4) = _circles(svg)
    assert x1 < x3 < x4 and y3 < y4 < y1  # higher values sit higher
    assert abs((y1 + y3) / 2 - y4) < 0.11  # 0.5 is half-way between 0 and 1
    assert svg.count("<polyline") == 1  # w3-w4 only: no line across the missing week
    assert "no data" not in svg
    empty = trend([("w1", None), ("w2", None)], title="rate")
    assert "no data in the period" in empty and "<circle" not in empty


def test_bars_escape_labels_and_say_when_a_value_is_missing():
    from assay.report.charts import bars

    svg = bars([("<b>high</b>", 0.5), ("low", None)], title="coverage", hi=1.0,
               fmt="{:.0%}")
    assert "<b>" not in svg and "&lt;b&gt;high&lt;/b&gt;" in svg
    assert "50%" in svg and "no data" in svg
    assert svg.count("<rect") == 1


def test_cli_export_that_cannot_be_written_leaves_no_event(history: Store, capsys, tmp_path):
    before = _events(history)
    target = tmp_path / "missing" / "program.html"
    code, _out, err = cli(capsys, "program", "report", *PAST, "--format", "html", "--out",
                          str(target), "--as", "audrey")
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1
    assert not target.exists() and _events(history) == before
    code, _out, err = cli(capsys, "program", "report", *PAST, "--format", "json", "--out",
                          str(tmp_path / "program.json"), "--as", "audrey")
    assert code == 0, err
    assert json.loads((tmp_path / "program.json").read_text())["approvals"]["approved"] == 4
    assert _events(history) == before + 1


# --------------------------------------------------------------------------- end to end

def test_figures_from_the_workflow_itself(db: Store, tmp_path):
    """Submissions, sign-offs and a rejection made through the workflow's own functions
    (with ``now=``), not written as rows: the report reads what the workflow writes."""
    from assay.workflow import service as wf
    from test_workflow import doc, make_env

    env = make_env(db, tmp_path)
    env.certify("1")
    t0 = t(11, 3, 9)

    def at(days: float):
        from datetime import timedelta

        return t0 + timedelta(days=days)

    env.run("alice", wf.submit, "1", policy=str(env.policy), now=at(0))
    env.run("bea", wf.approve, "1", stage="scope", documents=doc(), now=at(1))
    env.run("val", wf.approve, "1", stage="validation", now=at(3))
    env.run("rita", wf.approve, "1", stage="deployment_approval", now=at(4))
    env.run("bea", wf.approve, "1", stage="deployment_approval", now=at(5))
    with db.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), "scorer", "2",
                             artifact_digest="sha256:" + "b" * 64)
    env.certify("2")
    env.run("alice", wf.submit, "2", policy=str(env.policy), now=at(6))
    env.run("bea", wf.approve, "2", stage="scope", documents=doc(), now=at(6.5))
    env.run("val", wf.reject, "2", stage="validation", reason="Calibration off in the tail",
            now=at(7))
    r = _report(db)
    tta = r["time_to_approve"]
    assert tta["overall"] == {"count": 1, "median": 5.0, "p90": 5.0, "unit": "days"}
    assert list(tta["by_tier"]["high"].values()) == [1, 5.0, 5.0, "days"]
    assert tta["by_stage"]["scope"] == {"count": 2, "median": 0.75, "p90": 0.95,
                                        "unit": "days"}
    assert tta["by_stage"]["validation"]["median"] == 2.0
    assert tta["by_stage"]["deployment_approval"] == {"count": 1, "median": 2.0,
                                                      "p90": 2.0, "unit": "days"}
    ap = r["approvals"]
    assert (ap["approved"], ap["rejected"], ap["rate"]) == (1, 1, 0.5)
    assert ap["rejections_by_reason"] == [{"reason": "Calibration off in the tail",
                                           "count": 1}]
    assert ap["rejections_by_stage"] == [{"stage": "validation", "count": 1}]


def test_alert_times_from_the_monitor_service(history: Store, monkeypatch):
    """An alert acknowledged and resolved through the monitor service (its clock set by
    the test) is timed from what the service records."""
    from assay.monitor import service as monitor
    from assay.monitor.tables import MonitorAlert
    from assay.registry.tables import ModelVersion

    clock = {"now": t(11, 26, 8)}
    monkeypatch.setattr(monitor, "utcnow", lambda: clock["now"])
    with history.transaction() as s:
        vid = s.scalars(select(ModelVersion.id).order_by(ModelVersion.id)).first()
        add_alert(s, vid, "warn", t(11, 26), None, None)
        alert_id = s.scalar(select(func.max(MonitorAlert.id)))
    with history.transaction() as s:
        monitor.acknowledge(s, registry.get_user(s, "rita"), alert_id, note="looking")
    clock["now"] = t(11, 27, 12)
    with history.transaction() as s:
        monitor.resolve(s, registry.get_user(s, "cora"), alert_id, note="fixed")
    warn = _report(history)["responses"]["by_severity"]["warn"]
    assert (warn["raised"], warn["unacknowledged"], warn["unresolved"]) == (2, 1, 1)
    assert warn["acknowledge"] == {"count": 1, "median": 8.0, "p90": 8.0, "unit": "hours"}
    assert warn["resolve"] == {"count": 1, "median": 36.0, "p90": 36.0, "unit": "hours"}


def test_incident_times_by_severity_next_to_the_alerts(history: Store):
    """Incidents are one more source of responses, timed from their awareness time:
    SEV1 taken in hand after 2 and 6 hours (median 4, p90 2 + 0.9 x 4 = 5.6), one resolved
    after 10 hours; a SEV3 not taken in hand; a SEV2 the organisation became aware of
    before the period is not counted. The alerts' figures do not move."""
    from assay.operate import (
        acknowledge_incident,
        mitigate_incident,
        open_incident,
        resolve_incident,
    )

    def opened(severity: str, aware) -> int:
        with history.transaction() as s:
            return open_incident(s, registry.get_user(s, "victor"), "m1", "1", title="x",
                                 severity=severity, kind="other", aware_at=aware,
                                 policy="default", tier="high",
                                 now=aware + (t(1, 1, 1) - t(1, 1))).id

    def act(fn, who: str, iid: int, when) -> None:
        with history.transaction() as s:
            fn(s, registry.get_user(s, who), iid, now=when)

    first, second = opened("SEV1", t(11, 5)), opened("SEV1", t(11, 6))
    opened("SEV3", t(11, 7))
    opened("SEV2", t(10, 20))
    act(acknowledge_incident, "victor", first, t(11, 5, 2))
    act(mitigate_incident, "victor", first, t(11, 5, 3))
    act(resolve_incident, "rita", first, t(11, 5, 10))
    act(acknowledge_incident, "victor", second, t(11, 6, 6))
    r = _report(history)["responses"]
    assert r["sources"] == ["incident", "monitoring_alert"]
    assert list(r["by_severity"]) == ["block", "warn", "SEV1", "SEV3"]
    sev1, sev3 = r["by_severity"]["SEV1"], r["by_severity"]["SEV3"]
    assert (sev1["raised"], sev1["unacknowledged"], sev1["unresolved"]) == (2, 0, 1)
    assert sev1["acknowledge"] == {"count": 2, "median": 4.0, "p90": 5.6, "unit": "hours"}
    assert sev1["resolve"] == {"count": 1, "median": 10.0, "p90": 10.0, "unit": "hours"}
    assert (sev3["raised"], sev3["unacknowledged"], sev3["unresolved"]) == (1, 1, 1)
    block = r["by_severity"]["block"]
    assert block["acknowledge"] == {"count": 3, "median": 4.0, "p90": 5.6, "unit": "hours"}
    assert block["resolve"] == {"count": 2, "median": 14.0, "p90": 22.0, "unit": "hours"}
    from assay.operate.render import program_charts

    chart = program_charts(_report(history))["alerts"]
    assert "Alerts and incidents raised, by severity" in chart and "SEV1" in chart
