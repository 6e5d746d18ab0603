"""The roles people hold in the governance plane.

A user holds any number of roles. ``auditor`` is read-only: it may see
everything and change nothing. ``admin`` manages users and roles; it does not
by itself grant the right to sign off a stage.
"""

from __future__ import annotations

DATA_SCIENTIST = "data_scientist"
VALIDATOR = "validator"
RISK_OFFICER = "risk_officer"
COMPLIANCE = "compliance"
SECURITY = "security"
BUSINESS_OWNER = "business_owner"
AUDITOR = "auditor"
ADMIN = "admin"

#: Every role, in the order they are listed to people.
ROLES: tuple[str, ...] = (
    DATA_SCIENTIST,
    VALIDATOR,
    RISK_OFFICER,
    COMPLIANCE,
    SECURITY,
    BUSINESS_OWNER,
    AUDITOR,
    ADMIN,
)

#: Human-readable names.
ROLE_TITLES: dict[str, str] = {
    DATA_SCIENTIST: "Data scientist (model developer)",
    VALIDATOR: "Validator",
    RISK_OFFICER: "Risk officer",
    COMPLIANCE: "Compliance",
    SECURITY: "Security",
    BUSINESS_OWNER: "Business owner",
    AUDITOR: "Auditor (read-only)",
    ADMIN: "Administrator",
}

#: The service's own actor in the audit trail (scheduled monitoring runs and other
#: periodic jobs of ``assay serve``). It is no user: no user may be created under a name
#: of this set, so nobody can sign in as it, hold a token for it, or be mistaken for it.
SCHEDULER_ACTOR = "assay-scheduler"
#: The actor the notification dispatcher records delivery outcomes under.
DISPATCHER_ACTOR = "assay-dispatcher"
SERVICE_ACTORS: frozenset[str] = frozenset({SCHEDULER_ACTOR, DISPATCHER_ACTOR})

#: Roles that may register models and add versions.
MODEL_WRITERS: tuple[str, ...] = (DATA_SCIENTIST, BUSINESS_OWNER, RISK_OFFICER, ADMIN)
#: Roles that read the audit trail as a whole (every event, any filter) and export it;
#: they also sign checkpoints of its head. Everyone else sees a model's own history on
#: the model (its workflow timeline), and anyone may verify the chain's integrity
#: (that answers with counts and hashes, not events).
AUDIT_READERS: tuple[str, ...] = (AUDITOR, COMPLIANCE, RISK_OFFICER, ADMIN)


def may_read_audit(roles: frozenset[str] | set[str]) -> bool:
    """Whether someone holding ``roles`` may read and export the whole audit trail."""
    return bool(set(roles) & set(AUDIT_READERS))


#: Roles that may record a certification run as evidence.
CERTIFIERS: tuple[str, ...] = (DATA_SCIENTIST, VALIDATOR, RISK_OFFICER, ADMIN)
