"""Releases on SQLite and PostgreSQL: the state machine (shadow -> canary -> full,
rollback), the gate consulted at every step, rollback to an expired approval refused,
promotion by the release rule on real monitoring data, roles and separation of duties,
bad input refused with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select

from assay import registry
from assay.errors import ConflictError, InputError, PermissionDenied
from assay.operate import compare, promote, record, release_status, rollback
from assay.operate.tables import ReleaseEvent
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain
from test_workflow import CHECKS, MODEL, WORKFLOW, Env, approved, make_env, register

RELEASE = {"environments": ["production", "eu-prod"], "min_rows": 200,
           "promote_if": [{"metric": "roc_auc", "not_worse_than": 0.02},
                          {"metric": "accuracy", "not_worse_than": 0.03}]}


def write_release_policy(path: Path, release: dict) -> Path:
    doc = {"name": "wf-release", "version": "1",
           "tiers": {"high": {"checks": CHECKS, "release": release},
                     "medium": {"extends": "high"}, "low": {"extends": "high"}},
           "workflow": WORKFLOW}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def training(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=500), "x2": rng.normal(size=500)})
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def env(db: Store, tmp_path: Path) -> Env:
    """The workflow tests' set-up (users, model 'scorer' v1 by alice) under a policy with a
    release section, plus versions 2 and 3 (by alice) with training data for monitoring."""
    from assay.evidence import digest_file

    e = make_env(db, tmp_path)
    e.policy = write_release_policy(tmp_path / "wf-release.yaml", RELEASE)
    train = training(tmp_path)
    with db.transaction() as s:
        register(s, e.policy)
        alice = registry.get_user(s, "alice")
        for v in ("2", "3"):
            registry.add_version(s, alice, MODEL, v, artifact_digest="sha256:" + v * 64,
                                 training_data_source=str(train),
                                 training_data_digest=digest_file(train))
    return e


def events(env: Env) -> int:
    return env.count(ReleaseEvent)


def serving_in(env: Env, environment: str = "production") -> dict:
    st = env.read(release_status)
    return next((e for e in st["environments"] if e["environment"] == environment), {})


def test_shadow_canary_full_and_rollback_with_the_gate_and_audit(env: Env):
    approved(env, "1")
    approved(env, "2")
    before = env.count(AuditEvent)
    ev = env.run("bea", record, "1", environment="production", mode="full", note="go live")
    assert ev["mode"] == "full" and ev["gate"]["allowed"]
    assert ev["gate_digest"].startswith("sha256:") and len(ev["gate_digest"]) == 71
    env.run("dave", record, "2", environment="production", mode="shadow")
    env.run("dave", promote, "2", environment="production", to="canary", share=0.1)
    s = serving_in(env)
    assert s["full"]["version"] == "1"
    assert s["canary"]["version"] == "2" and s["canary"]["share"] == 0.1 and not s["shadow"]
    with pytest.raises(ConflictError, match="a promotion increases the share"):
        env.run("dave", promote, "2", environment="production", to="canary", share=0.05)
    env.run("dave", promote, "2", environment="production", to="canary", share=0.3)
    # no monitoring data and the plan does not require a comparison: allowed, and noted
    ev = env.run("bea", promote, "2", environment="production", to="full")
    assert ev["rule"]["allowed"] and "no comparison available" in ev["rule"]["note"]
    s = serving_in(env)
    assert s["full"]["version"] == "2" and s["canary"] is None and s["previous"] == ["1"]
    env.run("rita", rollback, environment="production", to="1", note="complaints")
    s = serving_in(env)
    assert s["full"]["version"] == "1" and s["previous"] == ["2"]
    actions = [e["action"] for e in env.read(release_status)["history"]]
    assert actions == ["rollback", "promote", "promote", "promote", "record", "record"]
    with env.store.transaction() as s_:
        kinds = list(s_.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)
                                .offset(before)))
        assert kinds == ["release.record", "model.update", "release.record",
                         "release.promote", "release.promote", "release.promote",
                         "release.rollback"]
        assert verify_chain(s_).ok
        # the inventory follows the first full release
        assert registry.get_model(s_, MODEL).deployment_status == "deployed"
    # the other environment is separate
    assert serving_in(env, "eu-prod") == {}
    env.run("bea", record, "2", environment="eu-prod", mode="full")
    assert serving_in(env, "eu-prod")["full"]["version"] == "2"
    assert serving_in(env)["full"]["version"] == "1"


def test_rollback_to_a_version_whose_approval_expired_is_refused(env: Env):
    until = datetime.now(UTC) + timedelta(days=20)
    approved(env, "1", expires=until)
    approved(env, "2")
    env.run("bea", record, "1", mode="full")
    env.run("bea", record, "2", mode="shadow")
    env.run("bea", promote, "2", to="full")
    later = until + timedelta(hours=1)
    n, audit = events(env), env.count(AuditEvent)
    with pytest.raises(ConflictError) as err:
        env.run("rita", rollback, to="1", now=later)
    msg = str(err.value)
    assert msg.startswith("rollback refused: the deployment gate is closed for scorer@1")
    assert f"approval expired on {until:%Y-%m-%d}" in msg
    assert (events(env), env.count(AuditEvent)) == (n, audit)
    assert serving_in(env)["full"]["version"] == "2"
    # while the approval is valid, the same rollback goes through
    env.run("rita", rollback, to="1")
    assert serving_in(env)["full"]["version"] == "1"


def test_steps_out_of_order_are_refused_and_change_nothing(env: Env):
    approved(env, "1")
    approved(env, "2")
    cases = [
        (dict(fn=promote, version="2", to="full"), ConflictError, "does not serve in"),
        (dict(fn=record, version="2", mode="canary", share=0.1), ConflictError,
         "no version serves full in 'production'"),
        (dict(fn=rollback, to="1"), ConflictError, "never served full"),
    ]
    for kw, exc, match in cases:
        fn = kw.pop("fn")
        version = kw.pop("version", None)
        with pytest.raises(exc, match=match):
            if version is None:
                env.run("bea", fn, **kw)
            else:
                env.run("bea", fn, version, **kw)
    assert events(env) == 0
    env.run("bea", record, "2", mode="shadow")
    with pytest.raises(ConflictError, match="no version serves full in 'production': a "
                       "canary runs next to the incumbent"):
        env.run("bea", promote, "2", to="canary", share=0.1)
    with pytest.raises(InputError, match="to: a promotion goes to canary or full"):
        env.run("bea", promote, "2", to="shadow")
    assert events(env) == 1
    env.run("bea", record, "1", mode="full")
    with pytest.raises(ConflictError, match="serves full in 'production': replace it"):
        env.run("bea", record, "3", mode="full")
    with pytest.raises(ConflictError, match="already serves as full"):
        env.run("bea", record, "1", mode="shadow")
    with pytest.raises(ConflictError, match="already serves full"):
        env.run("bea", promote, "1", to="full")
    with pytest.raises(ConflictError, match="nothing to roll back to"):
        env.run("bea", rollback, to="1")
    with pytest.raises(ConflictError, match="already serves as shadow"):
        env.run("bea", record, "2", mode="canary", share=0.2)
    env.run("bea", promote, "2", to="canary", share=0.2)
    with pytest.raises(ConflictError, match="already the canary"):
        env.run("bea", record, "3", mode="canary", share=0.1)
    assert events(env) == 3


def test_bad_input_dates_shares_and_environments(env: Env):
    approved(env, "1")
    future = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(InputError, match=r"at \S+ \S+ UTC is in the future"):
        env.run("bea", record, "1", mode="full", at=future)
    with pytest.raises(InputError, match="expected a date and time"):
        env.run("bea", record, "1", mode="full", at="yesterday")
    for share in (0, 1, 1.5, -0.1):
        with pytest.raises(InputError, match="share: expected a number between 0 and 1"):
            env.run("bea", record, "1", mode="canary", share=share)
    with pytest.raises(InputError, match="share: a canary serves a share"):
        env.run("bea", record, "1", mode="canary")
    with pytest.raises(InputError, match="only a canary has a traffic share"):
        env.run("bea", record, "1", mode="full", share=0.5)
    with pytest.raises(InputError, match="mode: expected one of 'shadow', 'canary', 'full'"):
        env.run("bea", record, "1", mode="ful")
    with pytest.raises(InputError, match="'eu-prd' is not an environment of policy 'wf-release'"
                       r".*did you mean 'eu-prod'\?"):
        env.run("bea", record, "1", environment="eu-prd", mode="full")
    assert events(env) == 0
    env.run("bea", record, "1", mode="full", at=datetime.now(UTC) - timedelta(days=3))
    with pytest.raises(ConflictError, match="before the last release event in 'production'"):
        env.run("bea", record, "2", mode="shadow", at=datetime.now(UTC) - timedelta(days=5))
    assert events(env) == 1


def test_roles_separation_of_duties_and_the_gate(env: Env):
    approved(env, "1")
    with pytest.raises(PermissionDenied, match="may not record a full release"):
        env.run("dave", record, "1", mode="full")
    with pytest.raises(PermissionDenied, match="may not record a shadow release"):
        env.run("aud", record, "1", mode="shadow")
    with pytest.raises(PermissionDenied, match="may not record a shadow release"):
        env.run("val", record, "1", mode="shadow")
    # alice registered version 1: she may not take it to full herself (alice is not a
    # full releaser anyway; give her the role to test the duty, not the role)
    with env.store.transaction() as s:
        registry.grant_role(s, registry.get_user(s, "root"), "alice", "business_owner")
    with pytest.raises(PermissionDenied, match="separation of duties"):
        env.run("alice", record, "1", mode="full")
    env.run("alice", record, "1", mode="shadow")  # shadow: no decision on traffic
    with pytest.raises(PermissionDenied, match="separation of duties"):
        env.run("alice", promote, "1", to="full")
    env.run("bea", promote, "1", to="full")
    # a version that is not approved: the gate says why
    with pytest.raises(ConflictError, match=r"shadow release refused: .*scorer@3: not "
                       r"submitted for approval"):
        env.run("dave", record, "3", mode="shadow")
    assert events(env) == 2


# --------------------------------------------------------------------------- the rule

N = 1500


def _batch(seed: int, quality: float, days: list[datetime]) -> pd.DataFrame:
    """The same ``N`` rows (same ids, labels and features) scored by a model of the given
    quality (0: noise, larger: better)."""
    rng = np.random.default_rng(100)
    y = rng.integers(0, 2, N)
    x1, x2 = rng.normal(size=N) + y * 0.3, rng.normal(size=N)
    noise = np.random.default_rng(seed).normal(size=N)
    logit = quality * (2 * y - 1) + noise
    p = 1 / (1 + np.exp(-logit))
    ts = [days[i % len(days)] + timedelta(minutes=i % 600) for i in range(N)]
    return pd.DataFrame({"row": [f"r{i}" for i in range(N)], "x1": x1, "x2": x2,
                         "grp": np.where(rng.random(N) < 0.5, "a", "b"), "y": y, "p": p,
                         "ts": [t.strftime("%Y-%m-%dT%H:%M:%S") for t in ts]})


def _ingest(env: Env, version: str, frame: pd.DataFrame, tmp_path: Path) -> None:
    from assay.monitor import ingest

    path = tmp_path / f"v{version}-{len(frame)}.parquet"
    frame.to_parquet(path, index=False)
    with env.store.transaction() as s:
        ingest(s, registry.get_user(s, "dave"), MODEL, version, path, time_column="ts",
               id_column="row", score="p", target="y", sensitive=["grp"])


def _shadow_setup(env: Env, tmp_path: Path, challenger_quality: float) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=d) for d in (4, 3, 2)]
    approved(env, "2")
    approved(env, "3")
    env.run("bea", record, "2", mode="full", at=today - timedelta(days=10))
    env.run("dave", record, "3", mode="shadow", at=today - timedelta(days=6))
    _ingest(env, "2", _batch(1, 1.2, days), tmp_path)
    _ingest(env, "3", _batch(2, challenger_quality, days), tmp_path)


def test_promotion_refused_when_the_shadow_challenger_is_significantly_worse(
        env: Env, tmp_path: Path):
    _shadow_setup(env, tmp_path, challenger_quality=0.5)
    n = events(env)
    with pytest.raises(ConflictError) as err:
        env.run("bea", promote, "3", to="full")
    msg = str(err.value)
    assert msg.startswith("promotion of scorer@3 to full in 'production' refused by the "
                          "release rule of policy 'wf-release': roc_auc: champion")
    assert "paired: DeLong" in msg and "not shown non-inferior" in msg
    assert "accuracy: champion" in msg and "paired: McNemar" in msg
    assert events(env) == n and serving_in(env)["full"]["version"] == "2"
    c = env.read(compare, "2", "3")
    assert c.paired and c.rows == {"champion": N, "challenger": N, "paired": N}
    assert c.tests["delong"]["p_value"] < 1e-6 and c.tests["mcnemar"]["p_value"] < 1e-6
    assert c.tests["mcnemar"]["method"] == "chi-squared with continuity correction"
    # the paired AUC difference is DeLong's on the kept rows, exactly
    from sklearn.metrics import roc_auc_score

    a, b = _batch(1, 1.2, [datetime(2026, 1, 1)]), _batch(2, 0.5, [datetime(2026, 1, 1)])
    auc = c.metric("roc_auc", paired=True)
    assert auc.champion == pytest.approx(roc_auc_score(a["y"], a["p"]), abs=1e-12)
    assert auc.challenger == pytest.approx(roc_auc_score(b["y"], b["p"]), abs=1e-12)
    # the unpaired comparison from the window statistics is there too, with groups
    unpaired = c.metric("roc_auc", paired=False)
    assert unpaired.ci[1] < 0 and unpaired.method.startswith("unpaired: bootstrap")
    assert {g.group for g in c.groups} == {"grp=a", "grp=b"}


def test_promotion_allowed_when_the_challenger_is_not_worse(env: Env, tmp_path: Path):
    _shadow_setup(env, tmp_path, challenger_quality=1.3)
    ev = env.run("bea", promote, "3", to="full")
    assert ev["rule"]["allowed"] and ev["rule"]["test"] == "non_inferiority"
    assert [r["metric"] for r in ev["rule"]["results"]] == ["roc_auc", "accuracy"]
    assert all(r["passed"] for r in ev["rule"]["results"])
    assert serving_in(env)["full"]["version"] == "3"
    with env.store.transaction() as s:
        payload = s.scalars(select(AuditEvent.payload).where(
            AuditEvent.action == "release.promote")).one()
        assert payload["rule"]["allowed"] and payload["replaced"] == "2"


def test_comparison_refuses_bad_periods(env: Env, tmp_path: Path):
    _shadow_setup(env, tmp_path, challenger_quality=1.2)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    with pytest.raises(InputError, match=f"until {tomorrow} is in the future"):
        env.read(compare, "2", "3", until=tomorrow)
    with pytest.raises(InputError, match="since 2026-02-01 is after until 2026-01-01"):
        env.read(compare, "2", "3", since="2026-02-01", until="2026-01-01")
    with pytest.raises(InputError, match="since: expected a date YYYY-MM-DD"):
        env.read(compare, "2", "3", since="last week")
    with pytest.raises(InputError, match="the same version"):
        env.read(compare, "2", "2")
    with pytest.raises(InputError, match="scorer@1 has no labelled monitoring data"):
        env.read(compare, "1", "3")
    with env.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ReleaseEvent)) == 2


def test_the_release_table_matches_its_migration(db: Store) -> None:
    from _schema import schema_diffs

    assert schema_diffs(db.engine, {"release_events"}) == []


def test_canary_on_other_rows_is_judged_by_the_bootstrap(env: Env, tmp_path: Path):
    """A canary serves different rows than the incumbent: no pairing; the rule reads the
    bootstrap intervals of the window statistics."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=d) for d in (4, 3, 2)]
    approved(env, "2")
    approved(env, "3")
    env.run("bea", record, "2", mode="full", at=today - timedelta(days=10))
    env.run("dave", record, "3", mode="canary", share=0.2, at=today - timedelta(days=6))
    _ingest(env, "2", _batch(1, 1.2, days), tmp_path)
    worse = _batch(2, 0.4, days)
    worse["row"] = "canary-" + worse["row"]
    _ingest(env, "3", worse, tmp_path)
    c = env.read(compare, "2", "3")
    assert not c.paired and c.rows["paired"] == 0 and not c.tests
    auc = c.metric("roc_auc")
    assert auc.method.startswith("unpaired: bootstrap") and auc.ci[1] < 0
    with pytest.raises(ConflictError, match=r"roc_auc: champion .* \(unpaired: bootstrap"):
        env.run("bea", promote, "3", to="full")
    assert serving_in(env)["canary"]["version"] == "3"


def test_concurrent_full_releases_in_one_environment_leave_one(env: Env):
    """Two people record a full release of different versions at the same moment: the
    model row is locked for the step, so the second sees the first and is refused."""
    import threading

    approved(env, "1")
    approved(env, "2")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def go(version: str) -> None:
        barrier.wait()
        try:
            env.run("bea", record, version, mode="full")
            outcomes.append("ok")
        except ConflictError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=go, args=(v,)) for v in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 2 and outcomes.count("ok") == 1, outcomes
    refused = next(o for o in outcomes if o != "ok")
    assert "serves full in 'production': replace it" in refused
    assert events(env) == 1
