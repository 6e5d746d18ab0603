"""Comparisons and mitigation proposals over HTTP (real app and store, SQLite and
PostgreSQL): the command line's JSON, every signed-in user may compute, only validators
and editors of the impact record may record (checked before the body is read), bad input
answered 400 with one line and nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assay.impact.mitigation import thresholds_from_data
from assay.impact.tables import ImpactAnalysis
from assay.metrics.compare import compare_data
from assay.store.audit import AuditEvent
from test_api_impact import Api, api  # noqa: F401
from test_impact_record import env  # noqa: F401


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(9)
    n = 1200
    sex = rng.choice(["female", "male"], n)
    y = rng.binomial(1, np.where(sex == "male", 0.6, 0.45))
    old = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1).round(3)
    new = np.clip(0.4 * y + rng.uniform(0, 0.6, n), 0, 1).round(3)
    path = tmp_path / "scored.csv"
    pd.DataFrame({"credit": y, "old": old, "new": new, "sex": sex}).to_csv(path, index=False)
    return path


def _post(api: Api, user: str | None, kind: str, path: Path, **params):  # noqa: F811
    headers = {"Content-Type": "text/csv"}
    if user:
        headers["Authorization"] = f"Bearer {api.tokens[user]}"
    return api.client.post(f"/api/impact/{kind}", params={"target": "credit",
                                                          "positive_label": "1", **params},
                           content=path.read_bytes(), headers=headers)


def test_compare_and_thresholds_answer_the_command_line_json(api: Api, csv: Path):  # noqa: F811
    r = _post(api, "aud", "compare", csv, old_score="old", new_score="new", sensitive="sex",
              replicates=300)
    assert r.status_code == 200, r.text
    want = compare_data(csv, target="credit", positive_label="1", old_score="old",
                        new_score="new", sensitive=["sex"], n_boot=300)
    got = r.json()
    assert got.pop("source") == "batch.csv" and want.pop("source") == "scored.csv"
    assert got == json.loads(json.dumps(want))
    r = _post(api, "aud", "mitigate/thresholds", csv, score="old", sensitive="sex",
              constraint="equalized_odds_difference", max_gap=0.05)
    assert r.status_code == 200, r.text
    want = thresholds_from_data(csv, target="credit", positive_label="1", score="old",
                                sensitive=["sex"], constraint="equalized_odds_difference",
                                max_gap=0.05)
    assert r.json() == json.loads(json.dumps(want))
    r = _post(api, "aud", "mitigate/reweigh", csv, sensitive="sex")
    assert r.status_code == 200 and len(r.json()["cells"]) == 4
    assert _post(api, None, "mitigate/reweigh", csv, sensitive="sex").status_code == 401
    r = _post(api, "aud", "mitigate/thresholds", csv, score="nope", sensitive="sex")
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]
    assert api.count(ImpactAnalysis) == 0


def test_recording_needs_a_validator_or_an_editor(api: Api, csv: Path):  # noqa: F811
    q = {"score": "old", "sensitive": "sex", "record": "scorer@1"}
    assert _post(api, "aud", "mitigate/thresholds", csv, **q).status_code == 403
    assert _post(api, "carl", "mitigate/thresholds", csv, **q).status_code == 403
    assert api.count(ImpactAnalysis) == 0
    r = _post(api, "val", "mitigate/thresholds", csv, **{**q, "record": "scorer@9"})
    assert r.status_code == 404 and api.count(ImpactAnalysis) == 0
    r = _post(api, "val", "mitigate/thresholds", csv, **q)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"]["kind"] == "mitigation"
    r = _post(api, "bea", "compare", csv, old_score="old", new_score="new", replicates=200,
              record="scorer@1")
    assert r.status_code == 200, r.text
    assert api.count(ImpactAnalysis) == 2
    with api.store.transaction() as s:
        events = s.query(AuditEvent).filter(AuditEvent.action == "impact.analysis").all()
        assert [(e.actor, e.payload["kind"]) for e in events] == [("val", "mitigation"),
                                                                 ("bea", "comparison")]
