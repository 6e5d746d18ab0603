"""What the monitoring pages read: each rule's series (the same numbers as ``status``,
worst feature first) and alerts a page at a time with who took them in hand. On SQLite
and PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles

from _monitored import DAY0, LONG, monitored_version, year_of_evaluations
from assay import registry as reg
from assay.api.sample import populate
from assay.errors import InputError, NotFoundError
from assay.store import Store

PASSWORD = "monitor views password"


@pytest.fixture(autouse=True)
def _fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import assay.auth.secrets as sec

    monkeypatch.setattr(sec, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def monitored(db: Store, tmp_path: Path) -> dict:
    populate(db, password=PASSWORD, models=1, reports=False)
    return monitored_version(db, tmp_path / "mon")


def test_series_holds_the_numbers_of_status_worst_feature_first(db: Store, monitored) -> None:
    from assay.monitor import status
    from assay.monitor.views import series

    with db.transaction() as s:
        got = series(s, "credit-scoring", "2.0")
        st = status(s, "credit-scoring", "2.0")
    assert got["windows"] == {"days": 6, "first": f"{DAY0}T00:00:00Z",
                              "last": "2026-03-07T00:00:00Z", "rows": 3600, "labeled": 0}
    assert got["period"] == "daily" and got["periods"] == ["daily"]
    assert got["last_evaluation"] is not None
    assert [r["rule"] for r in got["rules"]] == ["drift.feature", "volume.rows",
                                                 "drift.prediction"]
    drift = got["rules"][0]
    assert drift["threshold"] == {"max": 0.1} and drift["metric"] == "psi"
    # income drifted on day 3: it is the worst feature, with one failed window
    assert drift["labels"][0]["label"] == "income" and drift["labels"][0]["fails"] == 1
    assert {lab["label"] for lab in drift["labels"]} == {"income", "age", "region", LONG, "sex"}
    assert all(lab["fails"] == 0 for lab in drift["labels"][1:])
    # every point is the evaluation status() shows, and nothing else
    by_key = {(e["rule"], e["label"], e["window"]["start"]): e for e in st["evaluations"]}
    seen = 0
    for rule in got["rules"]:
        for lab in rule["labels"]:
            for p in lab["points"]:
                e = by_key[(rule["rule"], lab["label"], p["start"])]
                assert (p["value"], p["ci"], p["state"], p["threshold"], p["n"]) == (
                    e["value"], e["ci"], e["state"], e["threshold"], e["n"])
                seen += 1
        for p in rule["skipped"]:
            assert by_key[(rule["rule"], "", p["start"])]["state"] == "skip"
            seen += 1
    assert seen == len(st["evaluations"])
    income = drift["labels"][0]["points"]
    assert [p["start"][:10] for p in income] == [str(d) for d in monitored["days"]]
    assert [p["state"] for p in income].index("fail") == 3
    # the prediction drift has no previous window on the first day: said, not drawn
    pred = got["rules"][2]
    assert [p["start"][:10] for p in pred["skipped"]] == [str(DAY0)]
    assert "no previous window" in pred["skipped"][0]["note"]
    assert len(pred["labels"][0]["points"]) == 5


def test_series_of_a_version_without_monitoring_and_of_an_unknown_period(
        db: Store, monitored) -> None:
    from assay.monitor.views import series

    with db.transaction() as s:
        empty = series(s, "credit-scoring", "1.0")
        assert empty["windows"]["days"] == 0 and empty["rules"] == []
        assert empty["period"] is None and empty["last_evaluation"] is None
        with pytest.raises(InputError, match=r"no weekly evaluations .*evaluated: daily"):
            series(s, "credit-scoring", "2.0", period="weekly")
        with pytest.raises(NotFoundError):
            series(s, "credit-scoring", "7.7")


def test_a_year_of_daily_windows_reads_quickly(db: Store, monitored) -> None:
    import time

    from assay.monitor.views import series

    year_of_evaluations(db, "credit-scoring", "9.0", days=365, features=12)
    with db.transaction() as s:
        start = time.perf_counter()
        got = series(s, "credit-scoring", "9.0")
        took = time.perf_counter() - start
    drift = got["rules"][0]
    assert len(drift["labels"]) == 12 and all(len(lab["points"]) == 365
                                              for lab in drift["labels"])
    fails = [lab["fails"] for lab in drift["labels"]]
    assert fails == sorted(fails, reverse=True) and fails[0] > 0
    assert took < 5.0, f"a year of 13 series took {took:.2f} s"


def test_alert_page_says_who_took_an_alert_in_hand_and_who_may_act(
        db: Store, monitored, tmp_path: Path) -> None:
    from assay.monitor import acknowledge, resolve
    from assay.monitor.views import alert_page

    [alert] = monitored["alerts"]
    with db.transaction() as s:
        page = alert_page(s, actor=reg.get_user(s, "aud"))
        assert page["total"] == 1 and page["pages"] == 1
        [item] = page["items"]
        assert (item["id"], item["rule"], item["label"], item["state"]) == (
            alert["id"], "drift.feature", "income", "open")
        assert not item["can_acknowledge"] and not item["can_resolve"]  # an auditor reads
        dana = alert_page(s, actor=reg.get_user(s, "dana"))["items"][0]
        assert dana["can_acknowledge"] and not dana["can_resolve"]  # the developer
        vic = alert_page(s, actor=reg.get_user(s, "vic"))["items"][0]
        assert vic["can_acknowledge"] and vic["can_resolve"]
    with db.transaction() as s:
        acknowledge(s, reg.get_user(s, "bob"), alert["id"], note="looking at the feed")
    with db.transaction() as s:
        item = alert_page(s, actor=reg.get_user(s, "vic"))["items"][0]
        assert (item["state"], item["acknowledged_by"], item["ack_note"]) == (
            "acknowledged", "bob", "looking at the feed")
        assert not item["can_acknowledge"] and item["can_resolve"]
        resolve(s, reg.get_user(s, "vic"), alert["id"], note="feed fixed")
    with db.transaction() as s:
        item = alert_page(s, actor=reg.get_user(s, "rita"))["items"][0]
    # both notes are kept, each with its author
    assert (item["state"], item["acknowledged_by"], item["ack_note"], item["resolved_by"],
            item["resolve_note"]) == ("resolved", "bob", "looking at the feed", "vic",
                                      "feed fixed")
    assert item["acknowledged_at"] and item["resolved_at"]
    assert not item["can_acknowledge"] and not item["can_resolve"]


def test_alert_page_filters_and_pages_newest_first(db: Store, monitored,
                                                   tmp_path: Path) -> None:
    from assay.monitor import acknowledge
    from assay.monitor.views import alert_page

    monitored_version(db, tmp_path / "mon3", version="3.0", drift_day=1, seed=3)
    monitored_version(db, tmp_path / "mon4", version="4.0", drift_day=2, seed=4)
    with db.transaction() as s:
        every = alert_page(s)
        ids = [a["id"] for a in every["items"]]
        assert every["total"] == 3 and ids == sorted(ids, reverse=True)
        acknowledge(s, reg.get_user(s, "vic"), ids[1])
    with db.transaction() as s:
        pages = [alert_page(s, per_page=2, page=n) for n in (1, 2, 3)]
        assert [[a["id"] for a in p["items"]] for p in pages] == [ids[:2], ids[2:], ids[2:]]
        assert pages[0]["pages"] == 2 and pages[2]["page"] == 2  # past the end: the last
        assert [a["id"] for a in alert_page(s, state="acknowledged")["items"]] == [ids[1]]
        assert [a["id"] for a in alert_page(s, state=["open"])["items"]] == [ids[0], ids[2]]
        assert [a["version"] for a in alert_page(s, model="credit-scoring",
                                                 version="3.0")["items"]] == ["3.0"]
        assert alert_page(s, model="credit-scoring")["total"] == 3
        with pytest.raises(InputError, match="alert state 'closed': expected one of open"):
            alert_page(s, state="closed")
        with pytest.raises(NotFoundError, match="unknown model 'nope'"):
            alert_page(s, model="nope")
        with pytest.raises(InputError, match="page: expected a number from 1"):
            alert_page(s, page=0)
        with pytest.raises(InputError, match="alerts per page"):
            alert_page(s, per_page=10_000)
