"""quality.out_of_distribution: novel rows counted at ingest, judged per window.

The Taiwan credit windows of tests/test_monitor.py: the version's registered
training data fits the novelty score when the first batch arrives; each batch
adds its count of novel rows to its days' windows; the rule reads the counts.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from assay.errors import PolicyError
from assay.metrics.profile import Profile
from assay.monitor.state import WindowState, novelty_from_blob
from assay.store import Store
from test_monitor import DAY0, FEATURES, _day, _ingest, _run, _setup, credit  # noqa: F401

DAY1 = DAY0.replace(day=DAY0.day + 1).isoformat()
RULE = """\
      - id: quality.out_of_distribution
        threshold: {max: 0.05}
        judge: interval
"""


def _policy(db: Store, credit: dict, tmp_path: Path) -> Path:  # noqa: F811
    policy = _setup(db, credit, tmp_path)
    policy.write_text(policy.read_text().replace("      - id: volume.rows\n",
                                                 RULE + "      - id: volume.rows\n"))
    return policy


def _novel_day(credit: dict, i: int, share: float):  # noqa: F811
    """Day ``i`` with its first ``share`` of rows moved far from the training data."""
    frame = _day(credit, i)
    k = int(share * len(frame))
    frame.loc[frame.index[:k], "LIMIT_BAL"] = frame["LIMIT_BAL"].iloc[:k] * 0 + 5e6
    frame.loc[frame.index[:k], "AGE"] = 95
    return frame


def test_novel_rows_raise_an_alert_on_their_day_only(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:  # noqa: F811
    from assay.monitor import list_alerts, status

    policy = _policy(db, credit, tmp_path)
    _ingest(db, _day(credit, 0), tmp_path, "d0")
    _ingest(db, _novel_day(credit, 1, 0.2), tmp_path, "d1")
    _run(db, policy)
    with db.transaction() as s:
        st = status(s, "pd", "1")
        alerts = [a for a in list_alerts(s) if a["rule"] == "quality.out_of_distribution"]
    ev = {e["window"]["start"][:10]: e for e in st["evaluations"]
          if e["rule"] == "quality.out_of_distribution" and e["window"]["period"] == "daily"}
    calm, novel = ev[DAY0.isoformat()], ev[DAY1]
    assert calm["state"] == "pass"
    assert calm["value"] < 0.03 and calm["ci"][0] <= 0.01 <= calm["ci"][1] + 0.005
    # every moved row is novel, plus about 1% of the others
    assert novel["value"] == pytest.approx(0.2 + 0.01 * 0.8, abs=0.012)
    assert novel["state"] == "fail"
    assert "all 2,500 rows scored" in novel["note"]
    assert [a["window"]["start"][:10] for a in alerts] == [DAY1]


def test_counts_are_stored_and_merge(db: Store, people: dict, credit: dict,  # noqa: F811
                                     tmp_path: Path) -> None:
    from assay.monitor.tables import MonitorReference, MonitorWindow

    _policy(db, credit, tmp_path)
    _ingest(db, _novel_day(credit, 0, 0.1), tmp_path, "a")
    second = _novel_day(credit, 1, 0.1)
    second["ts"] = second["ts"].str.replace(DAY1, DAY0.isoformat())
    _ingest(db, second, tmp_path, "b")  # the same day: merged into one window
    with db.transaction() as s:
        ref = s.query(MonitorReference).one()
        scorer = novelty_from_blob(ref.state)
        features = list(ref.features)
        window = s.query(MonitorWindow).one()
        from assay.monitor.state import reference_from_blob

        bins = {k: v.bins for k, v in reference_from_blob(ref.state).features.items()}
        state = WindowState.from_blob(window.state, bins)
    assert scorer is not None and scorer.fit_rows == 2_000
    # the score covers the monitored features, numbers and categories
    assert set(scorer.columns) == set(features) >= {*FEATURES, "sex"}
    assert set(scorer.categorical) == {"EDUCATION", "sex"}
    assert state.novelty_rows == 5_000 and state.rows == 5_000
    # recount the same rows with the stored score: the window holds exactly their sum
    rows = [_novel_day(credit, 0, 0.1), _novel_day(credit, 1, 0.1)]
    expect = sum(int(scorer.novel(r[scorer.columns]).sum()) for r in rows)
    assert state.novel == expect
    assert 0.1 <= expect / 5_000 <= 0.13


def test_window_state_round_trip_and_merge() -> None:
    a = WindowState(profile=Profile({}), rows=10, novel=2, novelty_rows=8)
    b = WindowState(profile=Profile({}), rows=5, novel=1, novelty_rows=5)
    m = a.merge(b)
    assert (m.novel, m.novelty_rows) == (3, 13)
    back = WindowState.from_blob(m.to_blob(), {})
    assert (back.novel, back.novelty_rows, back.rows) == (3, 13, 15)


def test_a_reference_without_novelty_score_skips_with_the_reason(
        db: Store, people: dict, credit: dict, tmp_path: Path) -> None:  # noqa: F811
    import json

    from assay.monitor import status
    from assay.monitor.tables import MonitorReference

    policy = _policy(db, credit, tmp_path)
    # a reference stored before the novelty score existed: no "novelty" in its state
    _ingest(db, _day(credit, 0), tmp_path, "d0")
    with db.transaction() as s:
        ref = s.query(MonitorReference).one()
        body = json.loads(zlib.decompress(ref.state))
        body.pop("novelty")
        ref.state = zlib.compress(json.dumps(body).encode())
    _ingest(db, _day(credit, 1), tmp_path, "d1")
    _run(db, policy)
    with db.transaction() as s:
        evs = [e for e in status(s, "pd", "1")["evaluations"]
               if e["rule"] == "quality.out_of_distribution"]
    states = sorted((e["state"], e["note"] or "") for e in evs)
    assert states[0][0] == "pass"  # day 0 was counted with the score
    assert states[1][0] == "skip" and "no novelty score" in states[1][1]


def test_the_rule_takes_no_feature_list(tmp_path: Path) -> None:
    from assay.policy import load_policy

    text = """\
name: p
version: "1"
tiers:
  high:
    checks:
    - id: performance.roc_auc
      threshold: {min: 0.5}
    monitoring:
      rules:
      - id: quality.out_of_distribution
        params: {features: [a]}
        threshold: {max: 0.05}
"""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=r"p.yaml:11.*has no parameter 'features'"):
        load_policy(path)


def test_a_large_batch_is_counted_on_a_seeded_sample(
        db: Store, people: dict, credit: dict, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    from assay.monitor import batches, status

    monkeypatch.setattr(batches, "NOVELTY_BATCH_ROWS", 1_000)
    policy = _policy(db, credit, tmp_path)
    _ingest(db, _novel_day(credit, 0, 0.3), tmp_path, "d0")
    _run(db, policy)
    with db.transaction() as s:
        ev = next(e for e in status(s, "pd", "1")["evaluations"]
                  if e["rule"] == "quality.out_of_distribution")
    # about 1,000 of the 2,500 rows (each kept with probability 0.4)
    assert 850 <= ev["n"] <= 1_150
    assert f"{ev['n']:,} of 2,500 rows scored (a seeded sample)" in ev["note"]
    assert ev["value"] == pytest.approx(0.3 + 0.01 * 0.7, abs=0.05)
