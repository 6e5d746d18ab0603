"""Approval workflow: stages per tier, sign-offs, separation of duties, waivers,
the certification gate, change control.

Public API (imported lazily so that reading a policy's ``workflow`` section
does not load the database layer)::

    from assay.workflow import submit, approve, reject, comment, waive, recheck
    from assay.workflow import review, status, gate, GateDecision
    from assay.workflow import update_model  # inventory fields, 'deployed' by the gate
    from assay.workflow.config import WorkflowConfig, parse_workflow

The functions live in modules by concept (``submissions``, ``signoffs``,
``duties``, ``waivers``, ``deployment``, ``views``) and are gathered in
:mod:`assay.workflow.service`. No module is named after a public function:
importing one must not hide the function of the same name here.
"""

from __future__ import annotations

from typing import Any

_SERVICE = (
    "GateDecision",
    "ModelStatus",
    "ReviewInfo",
    "approve",
    "change_reasons",
    "check_certification",
    "comment",
    "gate",
    "meet_condition",
    "recheck",
    "record_gate",
    "reject",
    "revoke_waiver",
    "review",
    "status",
    "submit",
    "update_model",
    "waive",
)
_CONFIG = ("WorkflowConfig", "parse_workflow")

__all__ = [*_SERVICE, *_CONFIG]


def __getattr__(name: str) -> Any:
    if name in _SERVICE:
        from assay.workflow import service

        return getattr(service, name)
    if name in _CONFIG:
        from assay.workflow import config

        return getattr(config, name)
    raise AttributeError(f"module 'assay.workflow' has no attribute {name!r}")
