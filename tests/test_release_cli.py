"""``assay release``: exit codes, one-line errors naming the flags, nothing written on a
refusal; the same store as the domain tests (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assay.operate.tables import ReleaseEvent
from test_operate_releases import _shadow_setup, env, events  # noqa: F401
from test_workflow import Env, approved
from test_workflow_cli import fails, ok


def test_release_commands_walk_the_states_and_say_who_serves_where(env: Env, capsys):  # noqa: F811
    approved(env, "1")
    approved(env, "2")
    out = ok(capsys, "release", "record", "scorer", "1", "--mode", "full", "--as", "bea",
             "--note", "CHG-1")
    assert "scorer@1 released in 'production': full (event #1, gate sha256:" in out
    ok(capsys, "release", "record", "scorer", "2", "--mode", "shadow", "--as", "dave")
    ok(capsys, "release", "promote", "scorer", "2", "--to", "canary", "--share", "0.25",
       "--as", "dave")
    st = json.loads(ok(capsys, "release", "status", "scorer", "--format", "json"))
    prod = st["environments"][0]
    assert prod["full"]["version"] == "1" and prod["canary"] == {
        **prod["canary"], "version": "2", "share": 0.25}
    table = ok(capsys, "release", "status", "scorer")
    assert "production" in table and "2 at 25%" in table
    out = ok(capsys, "release", "promote", "scorer", "2", "--as", "bea")
    assert "scorer@2 promoted in 'production': full" in out
    assert "release rule: no comparison available" in out
    out = ok(capsys, "release", "rollback", "scorer", "--to", "1", "--as", "rita",
             "--format", "json")
    assert json.loads(out)["action"] == "rollback"
    assert events(env) == 5


def test_release_bad_input_exits_2_with_one_line_and_changes_nothing(env: Env, capsys):  # noqa: F811
    approved(env, "1")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    fails(capsys, "release", "record", "scorer", "1", "--mode", "full", "--at", tomorrow,
          "--as", "bea", match="--at ")
    fails(capsys, "release", "record", "scorer", "1", "--mode", "full", "--at", tomorrow,
          "--as", "bea", match="is in the future")
    fails(capsys, "release", "record", "scorer", "1", "--mode", "canary", "--share", "2",
          "--as", "bea", match="--share: expected a number between 0 and 1")
    fails(capsys, "release", "record", "scorer", "1", "--mode", "fulll", "--as", "bea",
          match="--mode: expected one of 'shadow', 'canary', 'full', got 'fulll'; did you "
          "mean 'full'?")
    fails(capsys, "release", "record", "scorer", "1", "--mode", "full", "--env", "eu",
          "--as", "bea", match="--env: 'eu' is not an environment of policy 'wf-release'")
    fails(capsys, "release", "promote", "scorer", "1", "--as", "bea",
          match="scorer@1 does not serve in 'production'")
    fails(capsys, "release", "rollback", "scorer", "--to", "1", "--as", "bea",
          match="never served full in 'production'")
    fails(capsys, "release", "record", "scorer", "3", "--mode", "shadow", "--as", "dave",
          match="the deployment gate is closed for scorer@3")
    fails(capsys, "release", "record", "scorer", "1", "--mode", "shadow", "--as", "aud",
          match="may not record a shadow release")
    fails(capsys, "release", "record", "scorer", "1", "--mode", "full",
          match="no acting user")
    fails(capsys, "release", "status", "nope", match="unknown model 'nope'")
    fails(capsys, "release", "compare", "scorer", "1", "2", "--since", "2026-13-01",
          match="--since: expected a date YYYY-MM-DD")
    fails(capsys, "release", "status", "scorer", "--format", "xml", match="--format")
    assert events(env) == 0
    with env.store.transaction() as s:
        assert s.query(ReleaseEvent).count() == 0


def test_release_compare_and_a_refused_promotion(env: Env, tmp_path: Path, capsys):  # noqa: F811
    _shadow_setup(env, tmp_path, challenger_quality=0.5)
    out = ok(capsys, "release", "compare", "scorer", "2", "3")
    assert "1500 paired (same row ids)" in out and "DeLong (paired AUC): difference -" in out
    assert "McNemar (paired accuracy, chi-squared with continuity correction)" in out
    data = json.loads(ok(capsys, "release", "compare", "scorer", "2", "3", "--format", "json"))
    assert data["tests"]["delong"]["p_value"] < 0.001
    line = fails(capsys, "release", "promote", "scorer", "3", "--as", "bea",
                 match="refused by the release rule of policy 'wf-release': roc_auc: champion")
    assert "not shown non-inferior" in line
    assert events(env) == 2
