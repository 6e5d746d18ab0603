"""What the governance walkthrough found a user would trip over, fixed.

Each test failed before its fix; they run in-process against the ``db`` store
(SQLite and PostgreSQL) with the helpers of the workflow tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assay.store import Store
from assay.workflow import service as wf
from test_workflow import Env, doc, make_env, submit
from test_workflow_cli import ok


@pytest.fixture
def env(db: Store, tmp_path: Path) -> Env:
    return make_env(db, tmp_path)


def _approved_on_waiver(env: Env, waiver_days: int) -> datetime:
    """Version 1 approved for deployment while its certification is blocked, on a
    waiver that ends in ``waiver_days`` days (the approval runs 200 days)."""
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    expires = datetime.now(UTC) + timedelta(days=waiver_days)
    env.run("rita", wf.waive, "1", justification="mitigation due next quarter",
            expires=expires)
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    return expires


def test_gate_says_when_the_waiver_it_rests_on_ends(env: Env, capsys):
    expires = _approved_on_waiver(env, 20)
    d = env.read(wf.gate, "1")
    assert d.allowed
    # the approval runs 200 days, the waiver 20: the gate closes with the waiver
    assert d.approved_until is not None and d.approved_until[:10] > expires.date().isoformat()
    assert d.waived_until is not None and d.waived_until[:10] == expires.date().isoformat()
    assert d.to_dict()["waived_until"] == d.waived_until
    assert not env.read(wf.gate, "1", now=expires + timedelta(days=1)).allowed

    out = ok(capsys, "gate", "scorer", "1")
    assert (f"certification passes only by waiver until {expires.date().isoformat()} "
            f"{expires:%H:%M} UTC") in out
    # times are printed as people read them, not as raw ISO strings with microseconds
    assert f"approved until {d.approved_until[:10]} " in out and "T" not in out.split(
        "approved until ")[1].split()[0]
    assert '"waived_until"' in ok(capsys, "gate", "scorer", "1", "--format", "json")


def test_gate_without_waiver_has_no_waiver_end(env: Env):
    env.certify("1")
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    d = env.read(wf.gate, "1")
    assert d.allowed and d.waived_until is None


def test_tier_requirements_say_how_many_people_sign_each_stage(capsys):
    from assay.risk import tier_requirements

    req = tier_requirements("credit-lending", "high")
    # credit-lending asks two validators for validation, one per role elsewhere
    assert req["signoff_roles"]["validation_performance"] == ["validator"]
    assert req["signoff_approvers"]["validation_performance"] == 2
    assert req["signoff_approvers"]["deployment_approval"] == 3
    assert set(req["signoff_approvers"]) == set(req["signoff_roles"])
    out = ok(capsys, "risk", "requirements", "high", "--policy", "credit-lending")
    assert "sign-off of validation_performance: validator (2 distinct people)" in out
    assert "sign-off of fairness_risk: risk_officer\n" in out


def test_an_empty_shared_database_says_to_create_the_schema(tmp_path: Path) -> None:
    from assay.config import Settings
    from assay.store import StoreError, open_store, upgrade
    from assay.store.db import make_engine

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    make_engine(url).dispose()
    with pytest.raises(StoreError) as info:
        open_store(Settings(home=tmp_path, database_url=url), auto_upgrade=False)
    msg = str(info.value)
    assert "has no assay schema yet: run `assay db upgrade` once" in msg
    assert "[" not in msg and "schema empty" not in msg  # plain words, no Python list
    # a database behind the schema names the revisions in plain words
    engine = make_engine(url)
    upgrade(engine, "0001_core")
    engine.dispose()
    with pytest.raises(StoreError, match=r"is at schema 0001_core, this assay expects 0002_\w+, "
                       r".*: run `assay db upgrade`$"):
        open_store(Settings(home=tmp_path, database_url=url))


def test_inventory_keeps_the_approved_version_in_sight_when_a_newer_one_arrives(
        env: Env, capsys):
    from assay import registry

    assert _approved_inventory(env)["approved_version"] is None
    env.certify("1")
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    env.run("val", wf.approve, "1", stage="validation")
    env.run("rita", wf.approve, "1", stage="deployment_approval")
    env.run("bea", wf.approve, "1", stage="deployment_approval")
    row = _approved_inventory(env)
    assert (row["latest_version"], row["approval"], row["approved_version"]) == (
        "1", "approved", "1")
    with env.store.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), "scorer", "2")
    env.certify("2")
    submit(env, "2")
    row = _approved_inventory(env)
    # the new version is in review; version 1 stays approved and the inventory says so
    assert row["latest_version"] == "2" and row["approval"] == "in_review: scope"
    assert row["approved_version"] == "1"
    out = ok(capsys, "inventory", "--format", "csv")
    header, line = out.splitlines()[:2]
    assert header.endswith(",approved_version") and line.endswith(",1")
    from assay.cli.governance import _approval_cell

    assert _approval_cell(row) == "in_review: scope (1 approved)"
    assert _approval_cell({**row, "approved_version": "2", "latest_version": "2",
                           "approval": "approved"}) == "approved"
    # once the approval has expired nothing is approved any more
    with env.store.transaction() as s:
        later = datetime.now(UTC) + timedelta(days=400)
        rows = registry.inventory(s, now=later)
    assert rows[0].approved_version is None


def _approved_inventory(env: Env) -> dict:
    from assay import registry

    with env.store.transaction() as s:
        [row] = registry.inventory(s)
        return row.to_dict()


def test_review_says_evidence_is_not_met_rather_than_missing_when_present(env: Env, capsys):
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    submit(env)
    out = ok(capsys, "review", "scorer", "1")
    # no document yet: the line reads as a sentence, not "missing no document"
    assert "evidence documents: not met: no document attached to stage 'scope'" in out
    assert "missing no" not in out
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    out = ok(capsys, "review", "scorer", "1")
    # the certification is there but blocked: not "missing"
    assert "evidence certification: not met: certification #" in out
    assert "is blocked" in out and "missing" not in out


def test_model_show_gives_each_versions_approval_state(env: Env, capsys):
    import json

    from assay import registry

    env.certify("1")
    submit(env)
    env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    with env.store.transaction() as s:
        registry.add_version(s, registry.get_user(s, "alice"), "scorer", "2")
    shown = json.loads(ok(capsys, "model", "show", "scorer", "--format", "json"))
    assert [(v["version"], v["approval"]) for v in shown["versions"]] == [
        ("1", "in_review: validation"), ("2", None)]
    assert "approval" in ok(capsys, "model", "show", "scorer")
