"""Who may do what with notifications (role names from :mod:`assay.registry.roles`).

Channels hold addresses and secrets of the organisation's systems: only an
admin sets them up, changes, tests or removes them, and only an admin sends
a failed delivery again. The delivery log names recipients and what they
were told: the roles that take alerts in hand read it, and auditors.
"""

from __future__ import annotations

from assay.registry.roles import (
    ADMIN,
    AUDITOR,
    BUSINESS_OWNER,
    COMPLIANCE,
    DATA_SCIENTIST,
    RISK_OFFICER,
    VALIDATOR,
)

#: May add, change, test and remove channels.
CHANNEL_ADMINS: tuple[str, ...] = (ADMIN,)
#: May send a failed delivery again.
RETRIERS: tuple[str, ...] = (ADMIN,)
#: May read the delivery log (and run the dispatcher, which only delivers what is queued).
#: (those who acknowledge alerts, as in assay.monitor.roles, and auditors).
LOG_READERS: tuple[str, ...] = (DATA_SCIENTIST, VALIDATOR, RISK_OFFICER, COMPLIANCE,
                                BUSINESS_OWNER, ADMIN, AUDITOR)
