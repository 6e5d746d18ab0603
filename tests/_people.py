"""The test users: one per role (``ada`` is the admin)."""

#: One user per role, created by the ``people`` fixture: role -> user name.
PEOPLE = {
    "admin": "ada",
    "data_scientist": "dana",
    "validator": "victor",
    "risk_officer": "rita",
    "compliance": "cora",
    "security": "sean",
    "business_owner": "bo",
    "auditor": "audrey",
}
