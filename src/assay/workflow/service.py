"""The approval workflow: submit, sign off, reject, comment, waive, status, gate.

Every function takes a ``Session`` and (for changes) the acting ``User``,
checks rights and the separation of duties, writes, appends an audit event
and never commits: the caller owns the transaction (``store.transaction()``),
so an action is recorded whole or not at all.

This module gathers the workflow's functions under one name; each concept
lives in its own module:

* :mod:`~assay.workflow.submissions`: ``submit``, the open submission and
  the stage an action is taken on;
* :mod:`~assay.workflow.signoffs`: ``approve``, ``reject``, ``comment``,
  ``meet_condition``;
* :mod:`~assay.workflow.duties`: separation of duties, and the recount of it
  from the stored sign-offs (``signature_problems``);
* :mod:`~assay.workflow.waivers`: ``waive``, ``revoke_waiver``;
* :mod:`~assay.workflow.deployment`: the certification check, change
  control, ``recheck`` and the deployment ``gate``;
* :mod:`~assay.workflow.views`: ``review`` and ``status``;
* :mod:`~assay.workflow._common`: helpers and table queries they share.

Rules enforced:

* only a data scientist submits a model version; the submission copies the
  stages, roles, approver counts and evidence of the version's tier from the
  policy's ``workflow`` section;
* stages are acted on in order; acting on a stage that is not the current
  one is a :class:`ConflictError`;
* separation of duties: nobody signs their own submission, the version's
  developer cannot sign an ``independent`` stage (validation), one person
  fills at most one approver slot per stage and signs a submission in one
  role only (whatever roles they hold), and a tier may require a number of
  different people across the submission (``workflow.distinct_signers``);
  the gate recomputes all of this from the stored sign-offs;
* the deployment stage (and any stage needing ``certification`` evidence)
  can be approved only if the version's latest certification under the
  submission's policy and tier passed, or a valid waiver covers it;
* waivers need a justification, an expiry within the policy's limit and a
  role the policy allows; they can be revoked; conditions of an approval stay
  open until someone independent of the developer records how they were met;
* change control: a new policy version, a changed risk tier, a newer
  certification that no longer passes, or an expired approval or waiver
  sends the version back to certification; a newer version of the model is
  reported as needing certification of its own (and, if the policy says so,
  ends the older versions' approval);
* concurrency: the submission row is locked (``SELECT ... FOR UPDATE`` on
  PostgreSQL; SQLite's write lock is taken before an action reads) and
  carries a row version (``revision``), so of two people acting on the same
  stage at once exactly one wins and the other gets a :class:`ConflictError`.
"""

from __future__ import annotations

from assay.workflow import _registry as reg
from assay.workflow._common import (
    OPEN_STATES,
    PASSING,
    SUBMIT_ROLES,
    latest_submission,
)
from assay.workflow.deployment import (
    CertificationCheck,
    GateDecision,
    change_reasons,
    check_certification,
    gate,
    latest_certification,
    newer_versions,
    recheck,
    record_gate,
    update_model,
    waiver_digest,
)
from assay.workflow.duties import signature_problems
from assay.workflow.signoffs import CONDITION_ROLES, approve, comment, meet_condition, reject
from assay.workflow.submissions import submit
from assay.workflow.views import ModelStatus, ReviewInfo, StageView, VersionStatus, review, status
from assay.workflow.waivers import revoke_waiver, waive

__all__ = [
    "CONDITION_ROLES",
    "OPEN_STATES",
    "PASSING",
    "SUBMIT_ROLES",
    "CertificationCheck",
    "GateDecision",
    "ModelStatus",
    "ReviewInfo",
    "StageView",
    "VersionStatus",
    "approve",
    "change_reasons",
    "check_certification",
    "comment",
    "gate",
    "latest_certification",
    "latest_submission",
    "meet_condition",
    "newer_versions",
    "recheck",
    "record_gate",
    "reg",
    "reject",
    "review",
    "revoke_waiver",
    "signature_problems",
    "status",
    "submit",
    "update_model",
    "waive",
    "waiver_digest",
]
