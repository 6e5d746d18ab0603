""""My queue": the stages waiting for a sign-off the user may give, oldest first.

Who may sign is decided by the workflow (``assay.workflow.service.review``
lists the eligible users of the current stage, after roles and separation of
duties); this module only gathers the open submissions and orders them. The
due date is the time the stage became current plus the review target
(``ASSAY_REVIEW_DAYS``, 14 days by default).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.workflow import service as wf
from assay.workflow.tables import IN_REVIEW, StageState, Submission


def review_days() -> int:
    try:
        return max(1, int(os.environ.get("ASSAY_REVIEW_DAYS", "14")))
    except ValueError:
        return 14


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def my_queue(session: Session, actor: Any, *, settings: Any | None = None,
             now: datetime | None = None) -> list[dict[str, Any]]:
    from assay.registry.tables import Model, ModelVersion

    now = now or datetime.now(UTC)
    rows = session.execute(
        select(Submission, ModelVersion.version, Model.name)
        .join(ModelVersion, ModelVersion.id == Submission.model_version_id)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(Submission.state == IN_REVIEW)
        .order_by(Submission.submitted_at, Submission.id)
    ).all()
    items = []
    for sub, version, name in rows:
        info = wf.review(session, name, version, actor=actor, settings=settings, now=now)
        mine = next((e for e in info.eligible if e["user"] == actor.username), None)
        if mine is None or info.stage is None:
            continue
        stages = list(session.scalars(select(StageState).where(
            StageState.submission_id == sub.id).order_by(StageState.position)))
        since = _aware(sub.submitted_at)
        for st in stages:
            if st.stage == info.stage.stage:
                break
            if st.completed_at is not None:
                since = max(since, _aware(st.completed_at))
        due = since + timedelta(days=review_days())
        items.append({
            "model": name, "version": version, "submission_id": sub.id,
            "stage": info.stage.stage, "stage_title": info.stage.title or info.stage.stage,
            "tier": info.tier, "policy": info.policy, "revision": info.revision,
            "roles": mine["roles"], "missing_roles": info.missing_roles,
            "approvals_needed": info.approvals_needed, "evidence": info.evidence,
            "submitted_by": wf.reg.username_of(session, sub.submitted_by),
            "waiting_since": since.isoformat(), "due": due.date().isoformat(),
            "overdue": due < now,
        })
    items.sort(key=lambda i: (i["waiting_since"], i["submission_id"]))
    return items
