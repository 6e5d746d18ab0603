"""Who may do what in monitoring (role names from :mod:`assay.registry.roles`).

Reading windows, evaluations and alerts needs no role (auditors read
everything). Resolving an alert is a decision: the developer of the version
(its creator) may not resolve its alerts (separation of duties).
"""

from __future__ import annotations

from assay.registry.roles import (
    ADMIN,
    BUSINESS_OWNER,
    COMPLIANCE,
    DATA_SCIENTIST,
    RISK_OFFICER,
    ROLES,
    VALIDATOR,
)

#: May read monitoring through a token (``GET /metrics``): anyone holding a role, auditors
#: included. A user without any role reads no metrics.
READERS: tuple[str, ...] = ROLES

#: May send production batches and label batches.
INGESTERS: tuple[str, ...] = (DATA_SCIENTIST, BUSINESS_OWNER, VALIDATOR, RISK_OFFICER, ADMIN)
#: May run the evaluation of closed windows (the service's scheduler runs them as itself:
#: :data:`assay.monitor.service.SCHEDULER`, no user).
RUNNERS: tuple[str, ...] = (DATA_SCIENTIST, VALIDATOR, RISK_OFFICER, ADMIN)
#: May acknowledge an alert (take it in hand).
ACKNOWLEDGERS: tuple[str, ...] = (DATA_SCIENTIST, VALIDATOR, RISK_OFFICER, COMPLIANCE,
                                  BUSINESS_OWNER, ADMIN)
#: May resolve an alert (decide it is dealt with); never the version's developer.
RESOLVERS: tuple[str, ...] = (VALIDATOR, RISK_OFFICER, COMPLIANCE, ADMIN)
