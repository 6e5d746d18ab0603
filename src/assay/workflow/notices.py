"""Telling approvers that a stage awaits them (through :mod:`assay.notify`).

When a submission is opened, and when a stage is signed and the next one
becomes current, the users holding the next stage's roles are notified
(event ``approval.awaiting``): by e-mail through the e-mail channels that
take the event, and through every other channel subscribed to it. The
notification is queued in the action's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from assay.notify import Notification, notify
from assay.workflow._common import OPEN_STATES, _stages, _subject
from assay.workflow.tables import Submission

EVENT = "approval.awaiting"


def notify_awaiting(session: Session, actor: Any, sub: Submission, model_name: str,
                    version: str) -> Notification | None:
    """Queue ``approval.awaiting`` for the submission's current stage, if it has one."""
    if sub.state not in OPEN_STATES or sub.current_stage is None:
        return None
    st = next((s for s in _stages(session, sub.id) if s.stage == sub.current_stage), None)
    if st is None:
        return None
    roles = list(st.roles or [])
    who = " and ".join(roles) or "its approvers"
    subject = (f"{_subject(model_name, version)}: stage '{st.title or st.stage}' awaits "
               f"sign-off by {who}")
    payload = {"model": model_name, "version": version, "submission": sub.id,
               "stage": st.stage, "title": st.title, "roles": roles,
               "approvers": st.approvers, "tier": sub.tier, "policy": sub.policy_name,
               "how": f"assay review {model_name} {version}"}
    return notify(session, actor, EVENT, subject, payload, roles=roles)
