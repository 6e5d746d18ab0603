"""The service's scheduled monitoring run: every monitored version, one transaction each.

:func:`run_due` is what ``assay serve`` runs every ``ASSAY_MONITOR_INTERVAL``
seconds (see :mod:`assay.api.scheduler`). It evaluates, version by version,
every closed window not yet evaluated, with the plan of the version's latest
certification (else its risk tier), as :data:`~assay.monitor.service.SCHEDULER`.
A version that cannot be evaluated (no certification and no risk tier, a policy
without monitoring rules) does not hold up the others: its error is logged and
returned, and nothing of it is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assay.errors import AssayError
from assay.monitor.service import VersionRun, monitored_versions, run_scheduled

log = logging.getLogger("assay.monitor")


@dataclass
class ScheduledRun:
    """What one scheduled run did: each version evaluated, and each that could not be."""

    versions: list[VersionRun] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [a for v in self.versions for a in v.alerts]

    def to_dict(self) -> dict[str, Any]:
        return {"versions": [v.to_dict() for v in self.versions], "alerts": self.alerts,
                "errors": list(self.errors)}


def run_due(store: Any, *, now: datetime | None = None) -> ScheduledRun:
    """Evaluate the closed windows of every monitored version, each in its own transaction."""
    with store.transaction() as s:
        versions = monitored_versions(s)
    out = ScheduledRun()
    for model, version in versions:
        try:
            with store.transaction() as s:
                out.versions.extend(run_scheduled(s, model, version, now=now).versions)
        except AssayError as exc:
            out.errors.append({"model": model, "version": version, "error": exc.message})
            log.warning("scheduled monitoring of %s@%s: %s", model, version, exc.message)
    return out


__all__ = ["ScheduledRun", "run_due"]
