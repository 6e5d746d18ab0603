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

#: Roles that may register models and add versions.
MODEL_WRITERS: tuple[str, ...] = (DATA_SCIENTIST, BUSINESS_OWNER, RISK_OFFICER, ADMIN)
#: Roles that may record a certification run as evidence.
CERTIFIERS: tuple[str, ...] = (DATA_SCIENTIST, VALIDATOR, RISK_OFFICER, ADMIN)
