"""Monitoring in production: windows of mergeable statistics, rules, alerts.

    from assay.monitor import ingest, add_labels, run, status, list_alerts

    ingest(session, actor, "credit", "1.0", "batch.parquet", time_column="ts",
           id_column="id", score="p", sensitive=["sex"])
    add_labels(session, actor, "credit", "1.0", "labels.csv", id_column="id",
               target="default")
    run(session, actor)                     # every closed window not yet evaluated

docs/monitoring.md describes what is stored per window, the rules and the
assumptions of the performance estimate.
"""

from assay.monitor.batches import IngestResult, LabelsResult, add_labels, ingest
from assay.monitor.service import (
    RunResult,
    VersionRun,
    acknowledge,
    get_alert,
    list_alerts,
    open_recertify_alerts,
    plan_of,
    resolve,
    run,
    status,
)
from assay.monitor.views import alert_page, series

__all__ = [
    "IngestResult",
    "LabelsResult",
    "RunResult",
    "VersionRun",
    "acknowledge",
    "add_labels",
    "alert_page",
    "get_alert",
    "ingest",
    "list_alerts",
    "open_recertify_alerts",
    "plan_of",
    "resolve",
    "run",
    "series",
    "status",
]
