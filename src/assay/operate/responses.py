"""What the program metrics count as *responses*: things raised that someone must take in
hand (acknowledge) and close (resolve), with a severity.

The sources are monitoring alerts (``monitor_alerts``) and incidents (``incidents``,
timed from the awareness time, by their policy severity: SEV1...); each is a function in
:data:`SOURCES` that returns the same :class:`Response` records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.store.db import as_utc


@dataclass(frozen=True)
class Response:
    """One alert (or, later, incident): when it was raised, taken in hand and closed."""

    source: str
    id: int
    severity: str
    raised_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None

    @property
    def taken_at(self) -> datetime | None:
        """When someone first took it in hand: its acknowledgement, or its resolution if it
        was resolved without being acknowledged first."""
        return self.acknowledged_at or self.resolved_at


def monitoring_alerts(session: Session, start: datetime, end: datetime) -> list[Response]:
    """Monitoring alerts raised in ``[start, end)`` (``monitor_alerts``' own timestamps)."""
    from assay.monitor.tables import MonitorAlert as A

    rows = session.execute(
        select(A.id, A.severity, A.created_at, A.acknowledged_at, A.resolved_at)
        .where(A.created_at >= start, A.created_at < end).order_by(A.id))
    return [Response("monitoring_alert", rid, str(sev), as_utc(raised),
                     as_utc(ack) if ack else None, as_utc(res) if res else None)
            for rid, sev, raised, ack, res in rows]


def incidents(session: Session, start: datetime, end: datetime) -> list[Response]:
    """Incidents the organisation became aware of in ``[start, end)``: raised at the
    awareness time (the clocks of the policy start there), taken in hand when
    acknowledged, closed when resolved."""
    from assay.operate.incident_tables import Incident as I

    rows = session.execute(
        select(I.id, I.severity, I.aware_at, I.acknowledged_at, I.resolved_at)
        .where(I.aware_at >= start, I.aware_at < end).order_by(I.id))
    return [Response("incident", rid, str(sev), as_utc(raised),
                     as_utc(ack) if ack else None, as_utc(res) if res else None)
            for rid, sev, raised, ack, res in rows]


#: Every source of responses, by name.
SOURCES: dict[str, Callable[[Session, datetime, datetime], list[Response]]] = {
    "monitoring_alert": monitoring_alerts,
    "incident": incidents,
}


def responses(session: Session, start: datetime, end: datetime) -> list[Response]:
    """Every response raised in ``[start, end)``, from every source."""
    out: list[Response] = []
    for fetch in SOURCES.values():
        out.extend(fetch(session, start, end))
    return out
