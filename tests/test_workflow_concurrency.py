"""Two people acting on the same stage at the same moment: exactly one wins.

Each racer runs in its own thread and its own transaction; a barrier releases
them together. The loser gets a ConflictError and nothing of theirs is
written (no sign-off, no condition, no audit event). Runs against
PostgreSQL (the submission row is locked with SELECT ... FOR UPDATE and
carries a row version) and SQLite (one writer at a time; a writer that read
the submission before the other committed fails on the row version).
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from assay import registry
from assay.errors import ConflictError
from assay.store import Store
from assay.store.audit import AuditEvent, verify_chain
from assay.workflow import service as wf
from assay.workflow.tables import Condition, SignOff, Submission
from test_workflow import (
    MODEL,
    Env,
    doc,
    make_env,
    through_validation,
)


@pytest.fixture
def race_env(db: Store, tmp_path) -> Env:
    return make_env(db, tmp_path)


def race(env: Env, actions: dict[str, tuple]) -> dict[str, str]:
    """Run ``{user: (fn, kwargs)}`` at once; return ``{user: "won" | error message}``."""
    barrier = threading.Barrier(len(actions))
    out: dict[str, str] = {}

    def go(user: str, fn, kw: dict) -> None:
        try:
            with env.store.transaction() as s:
                actor = registry.get_user(s, user)
                barrier.wait(timeout=30)
                fn(s, actor, MODEL, "1", **kw)
            out[user] = "won"
        except ConflictError as exc:
            out[user] = f"conflict: {exc}"
        except Exception as exc:  # anything else is a failure of the test
            out[user] = f"ERROR {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=go, args=(u, fn, kw)) for u, (fn, kw) in actions.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(out) == len(actions), "a racer did not finish"
    return out


def _counts(env: Env) -> tuple[int, int, int]:
    with env.store.transaction() as s:
        return (s.scalar(select(func.count()).select_from(SignOff)),
                s.scalar(select(func.count()).select_from(Condition)),
                s.scalar(select(func.count()).select_from(AuditEvent)))


def test_two_approvers_race_for_the_last_slot(race_env: Env):
    through_validation(race_env)
    race_env.run("rita", wf.approve, "1", stage="deployment_approval")
    signs, conds, events = _counts(race_env)
    out = race(race_env, {
        "bea": (wf.approve, {"stage": "deployment_approval", "conditions": ["bea's"]}),
        "ben": (wf.approve, {"stage": "deployment_approval", "conditions": ["ben's"]}),
    })
    winners = [u for u, r in out.items() if r == "won"]
    losers = [r for r in out.values() if r != "won"]
    assert len(winners) == 1, out
    assert len(losers) == 1 and losers[0].startswith("conflict: "), out
    assert "already approved" in losers[0] or "at the same time" in losers[0]
    assert _counts(race_env) == (signs + 1, conds + 1, events + 1)
    with race_env.store.transaction() as s:
        deploy = s.scalars(select(SignOff).where(SignOff.stage == "deployment_approval")
                           .order_by(SignOff.id)).all()
        assert [registry.get_user(s, "rita").id, registry.get_user(s, winners[0]).id] == [
            x.user_id for x in deploy]
        assert s.scalars(select(Condition.text)).all() == [f"{winners[0]}'s"]
        assert s.scalars(select(Submission.state)).one() == "approved"
        assert verify_chain(s).ok
    assert race_env.read(wf.gate, "1").allowed


def test_approve_and_reject_race(race_env: Env):
    through_validation(race_env)
    race_env.run("rita", wf.approve, "1", stage="deployment_approval")
    signs, conds, events = _counts(race_env)
    out = race(race_env, {
        "bea": (wf.approve, {"stage": "deployment_approval"}),
        "rob": (wf.reject, {"stage": "deployment_approval", "reason": "limits exceeded"}),
    })
    assert sorted(r == "won" for r in out.values()) == [False, True], out
    assert _counts(race_env) == (signs + 1, conds, events + 1)
    state = race_env.read(wf.review, "1").state
    assert state == ("approved" if out["bea"] == "won" else "rejected")
    with race_env.store.transaction() as s:
        assert verify_chain(s).ok


def test_many_approvers_one_slot(race_env: Env):
    """Four validators race for the single validation slot."""
    race_env.certify("1")
    race_env.run("alice", wf.submit, "1", policy=str(race_env.policy))
    race_env.run("bea", wf.approve, "1", stage="scope", documents=doc())
    with race_env.store.transaction() as s:
        root = registry.get_user(s, "root")
        for name in ("val3", "val4"):
            registry.add_user(s, root, name, roles=["validator"])
    signs, _, events = _counts(race_env)
    out = race(race_env, {u: (wf.approve, {"stage": "validation"})
                        for u in ("val", "val2", "val3", "val4")})
    assert list(out.values()).count("won") == 1, out
    assert all(r.startswith("conflict: ") for r in out.values() if r != "won"), out
    assert _counts(race_env)[0] == signs + 1
    assert _counts(race_env)[2] == events + 1
    assert race_env.read(wf.review, "1").stage.stage == "deployment_approval"


def test_two_submissions_of_one_version_race(race_env: Env):
    race_env.certify("1")
    out = race(race_env, {u: (wf.submit, {"policy": str(race_env.policy)})
                          for u in ("alice", "dave")})
    assert list(out.values()).count("won") == 1, out
    loser = next(r for r in out.values() if r != "won")
    assert loser.startswith("conflict: "), out
    with race_env.store.transaction() as s:
        assert s.scalars(select(Submission.state)).all() == ["in_review"]


def test_two_approvers_for_two_open_slots_both_win(race_env: Env):
    """Nobody loses a sign-off they were entitled to: the two slots of the high-tier
    deployment approval are filled at once by the two roles."""
    through_validation(race_env)
    signs, _, events = _counts(race_env)
    out = race(race_env, {"rita": (wf.approve, {"stage": "deployment_approval"}),
                          "bea": (wf.approve, {"stage": "deployment_approval"})})
    assert out == {"rita": "won", "bea": "won"}, out
    assert _counts(race_env)[0] == signs + 2
    assert _counts(race_env)[2] == events + 2
    assert race_env.read(wf.gate, "1").allowed
