"""A random walk of workflow actions by random people never breaks the rules.

Hundreds of actions (approve, reject, comment, waive, submit, recheck) by
users with assorted roles, most of them refused; after every step the
database must satisfy the workflow's invariants, every refusal must be an
AssayError (never a crash), and the audit chain must verify at the end.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from assay import registry
from assay.errors import AssayError
from assay.store import Store
from assay.store.audit import verify_chain
from assay.workflow import service as wf
from assay.workflow.tables import (
    APPROVED,
    IN_REVIEW,
    SignOff,
    StageState,
    Submission,
)
from test_workflow import MODEL, Env, doc, make_env

STAGES = ["scope", "validation", "deployment_approval", "monitoring"]


@pytest.fixture
def env(db: Store, tmp_path: Path) -> Env:
    return make_env(db, tmp_path)


def check_invariants(env: Env) -> None:
    with env.store.transaction() as s:
        mv = registry.get_version(s, MODEL, "1")
        subs = s.scalars(select(Submission).order_by(Submission.id)).all()
        assert sum(x.state in (IN_REVIEW, APPROVED) for x in subs) <= 1
        for sub in subs:
            stages = s.scalars(select(StageState).where(StageState.submission_id == sub.id)
                               .order_by(StageState.position)).all()
            signs = s.scalars(select(SignOff).where(SignOff.submission_id == sub.id)).all()
            assert all(x.user_id != sub.submitted_by for x in signs), "signed own submission"
            seen_open = False
            for st in stages:
                mine = [x for x in signs if x.stage == st.stage]
                approvals = [x for x in mine if x.decision == "approve"]
                if st.independent:
                    assert all(x.user_id != mv.created_by for x in mine), "developer validated"
                assert len({x.user_id for x in mine}) == len(mine), "one person, two slots"
                assert all(x.role in st.roles for x in mine), "signed outside the stage's roles"
                if st.status == "approved":
                    assert not seen_open, f"{st.stage} approved before an earlier stage"
                    assert len({x.user_id for x in approvals}) >= st.approvers
                    assert set(st.roles) <= {x.role for x in approvals}
                elif st.status == "pending":
                    seen_open = True
                    assert len({x.user_id for x in approvals}) < st.approvers or not (
                        set(st.roles) <= {x.role for x in approvals})
                elif st.status == "skipped":
                    assert not mine
            if sub.state == APPROVED:
                dep = next(x for x in stages if x.stage == sub.deployment_stage)
                assert dep.status == "approved"
            if sub.current_stage is not None and sub.state in (IN_REVIEW, APPROVED):
                cur = next(x for x in stages if x.stage == sub.current_stage)
                assert cur.status == "pending"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_walk_keeps_the_rules(env: Env, backend: str, seed: int):
    if backend != "sqlite":
        pytest.skip("the rules, not the database, are under test here")
    rng = random.Random(seed)
    env.certify("1", status="blocked", failed=("fairness.disparate_impact",))
    with env.store.transaction() as s:
        root = registry.get_user(s, "root")
        registry.grant_role(s, root, "alice", "risk_officer")  # the developer holds roles
        registry.grant_role(s, root, "dave", "validator")
        registry.grant_role(s, root, "bea", "validator")
        users = [u.username for u in registry.list_users(s)]
    env.run("alice", wf.submit, "1", policy=str(env.policy))
    outcomes = {"ok": 0, "refused": 0}
    soon = datetime.now(UTC) + timedelta(days=20)
    for _ in range(150):
        user = rng.choice(users)
        kind = rng.choices(["approve", "reject", "comment", "waive", "submit", "recheck"],
                           weights=[16, 1, 2, 2, 2, 1])[0]
        stage = rng.choice(STAGES)
        if rng.random() < 0.75:  # mostly act where the workflow is, to get far along it
            try:
                info = env.read(wf.review, "1")
                stage = info.stage.stage if info.stage is not None else stage
            except AssayError:
                pass
        try:
            if kind == "approve":
                env.run(user, wf.approve, "1", stage=stage,
                        documents=doc() if rng.random() < 0.5 else None)
            elif kind == "reject":
                env.run(user, wf.reject, "1", stage=stage, reason="random reject")
            elif kind == "comment":
                env.run(user, wf.comment, "1", "a remark", stage=stage)
            elif kind == "waive":
                env.run(user, wf.waive, "1", check_id="fairness.disparate_impact",
                        justification="random", expires=soon)
            elif kind == "submit":
                env.run(user, wf.submit, "1", policy=str(env.policy))
            else:
                env.run(user, wf.recheck, "1")
            outcomes["ok"] += 1
        except AssayError:
            outcomes["refused"] += 1
        check_invariants(env)
    assert outcomes["ok"] > 10 and outcomes["refused"] > 10, outcomes
    with env.store.transaction() as s:
        assert verify_chain(s).ok
        # the walk got as far as the deployment stage
        assert s.scalars(select(SignOff).where(SignOff.stage == "deployment_approval")).first()
