"""Where assay keeps its state (``ASSAY_HOME``, ``ASSAY_DATABASE_URL``) and how the service
runs its periodic jobs and guards ``/metrics`` (``ASSAY_MONITOR_INTERVAL``,
``ASSAY_METRICS_TOKEN``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from assay.errors import InputError

#: Seconds between the service's scheduled monitoring runs when the environment says nothing.
DEFAULT_MONITOR_INTERVAL = 300.0
#: Seconds between the service's deliveries of due notifications (``ASSAY_NOTIFY_INTERVAL``).
DEFAULT_NOTIFY_INTERVAL = 30.0
#: Seconds between the service's escalations of overdue incident steps
#: (``ASSAY_ESCALATION_INTERVAL``).
DEFAULT_ESCALATION_INTERVAL = 300.0
#: Shortest ``ASSAY_METRICS_TOKEN`` accepted.
MIN_METRICS_TOKEN = 16


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    #: Seconds between the service's scheduled monitoring runs; 0 turns them off. Settings
    #: made in code have them off; :func:`load_settings` reads ``ASSAY_MONITOR_INTERVAL``.
    monitor_interval: float = 0.0
    #: The bearer token Prometheus sends to ``GET /metrics`` (``ASSAY_METRICS_TOKEN``);
    #: ``None``: only users' API tokens are accepted there.
    metrics_token: str | None = field(default=None, repr=False)
    #: Seconds between the service's deliveries of due notifications (the outbox of
    #: alerts and approvals, retries after back-off); 0 turns them off. Off in settings
    #: made in code; :func:`load_settings` reads ``ASSAY_NOTIFY_INTERVAL``.
    notify_interval: float = 0.0
    #: Seconds between the service's escalations of overdue incident steps; 0 turns them
    #: off. Off in settings made in code; :func:`load_settings` reads
    #: ``ASSAY_ESCALATION_INTERVAL``.
    escalation_interval: float = 0.0

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"


def _interval(raw: str | None, *, name: str = "ASSAY_MONITOR_INTERVAL",
              default: float = DEFAULT_MONITOR_INTERVAL,
              what: str = "the scheduled monitoring runs") -> float:
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name}: expected a number of seconds (0 turns {what} off), "
                         f"got {raw!r}")
    return value


def load_settings(home: str | os.PathLike[str] | None = None,
                  database_url: str | None = None) -> Settings:
    """Settings from arguments, then the environment, then defaults.

    ``ASSAY_HOME`` defaults to ``./.assay``; the database defaults to a SQLite
    file inside it, so nothing needs to be set up. ``ASSAY_MONITOR_INTERVAL``
    defaults to 300 seconds, ``ASSAY_NOTIFY_INTERVAL`` to 30,
    ``ASSAY_ESCALATION_INTERVAL`` to 300; ``ASSAY_METRICS_TOKEN`` to none.
    """
    h = Path(home or os.environ.get("ASSAY_HOME") or ".assay").expanduser().resolve()
    url = database_url or os.environ.get("ASSAY_DATABASE_URL") or f"sqlite:///{h / 'assay.db'}"
    token = (os.environ.get("ASSAY_METRICS_TOKEN") or "").strip() or None
    if token is not None and len(token) < MIN_METRICS_TOKEN:
        raise InputError(f"ASSAY_METRICS_TOKEN: expected a random secret of at least "
                         f"{MIN_METRICS_TOKEN} characters, got {len(token)} (make one with "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return Settings(home=h, database_url=url,
                    monitor_interval=_interval(os.environ.get("ASSAY_MONITOR_INTERVAL")),
                    metrics_token=token,
                    notify_interval=_interval(os.environ.get("ASSAY_NOTIFY_INTERVAL"),
                                              name="ASSAY_NOTIFY_INTERVAL",
                                              default=DEFAULT_NOTIFY_INTERVAL,
                                              what="the scheduled deliveries"),
                    escalation_interval=_interval(
                        os.environ.get("ASSAY_ESCALATION_INTERVAL"),
                        name="ASSAY_ESCALATION_INTERVAL", default=DEFAULT_ESCALATION_INTERVAL,
                        what="the scheduled escalations"))
