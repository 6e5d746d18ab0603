"""``GET /metrics``: monitoring in the Prometheus text format, behind a bearer token.

The token is ``ASSAY_METRICS_TOKEN`` (for the Prometheus server; compared in
constant time) or the API token of a user holding a role that reads monitoring
(:data:`assay.monitor.roles.READERS`). Each scrape builds a fresh registry
with one collector that reads the store (:func:`assay.monitor.overview.overview`):
no state is kept between scrapes or shared between workers, so every worker
and replica answers the same.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from assay.api.deps import authenticate, require_roles
from assay.api.errors import ErrorResponse
from assay.auth.errors import AuthenticationError
from assay.monitor.roles import READERS

router = APIRouter(tags=["service"])

RULE_LABELS = ["model", "version", "rule", "metric", "feature_or_group"]
VERSION_LABELS = ["model", "version"]
_STATES = {"pass": 0.0, "warn": 1.0, "fail": 2.0}
#: The classic text format (every name and label here is valid in it), which every
#: Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _authorise(request: Request) -> None:
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise AuthenticationError("metrics: send 'Authorization: Bearer <token>' (the "
                                  "ASSAY_METRICS_TOKEN or a user's API token)")
    configured = request.app.state.settings.metrics_token
    if configured and hmac.compare_digest(value.encode(), configured.encode()):
        return
    require_roles(authenticate(request), *READERS)


class _Collector:
    """One scrape's metric families, read from the store."""

    def __init__(self, versions: list[Any]) -> None:
        self.versions = versions

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        value = GaugeMetricFamily("assay_monitor_rule_value",
                                  "Latest value of each monitoring rule (on its latest "
                                  "window), per feature or group", labels=RULE_LABELS)
        low = GaugeMetricFamily("assay_monitor_rule_interval_low",
                                "Lower end of the latest value's interval", labels=RULE_LABELS)
        high = GaugeMetricFamily("assay_monitor_rule_interval_high",
                                 "Upper end of the latest value's interval", labels=RULE_LABELS)
        state = GaugeMetricFamily("assay_monitor_rule_state",
                                  "State of the latest evaluation: 0 pass, 1 warn, 2 fail, "
                                  "-1 not judged (skip)", labels=RULE_LABELS)
        window = GaugeMetricFamily("assay_monitor_rule_window_start_timestamp_seconds",
                                   "Start of the window the latest value is of",
                                   labels=RULE_LABELS)
        alerts = GaugeMetricFamily("assay_monitor_open_alerts",
                                   "Alerts not resolved, by severity and state (open or "
                                   "acknowledged)", labels=[*VERSION_LABELS, "severity", "state"])
        gate = GaugeMetricFamily("assay_deployment_gate_open",
                                 "The deployment gate: 1 allowed, 0 closed",
                                 labels=VERSION_LABELS)
        windows = GaugeMetricFamily("assay_monitor_windows_ingested",
                                    "Daily windows holding production data",
                                    labels=VERSION_LABELS)
        rows = GaugeMetricFamily("assay_monitor_rows_ingested", "Production rows ingested",
                                 labels=VERSION_LABELS)
        labeled = GaugeMetricFamily("assay_monitor_labeled_rows",
                                    "Production rows with a label", labels=VERSION_LABELS)
        batch = GaugeMetricFamily("assay_monitor_last_batch_timestamp_seconds",
                                  "When the last production batch was ingested",
                                  labels=VERSION_LABELS)
        evaluated = GaugeMetricFamily("assay_monitor_last_evaluation_timestamp_seconds",
                                      "When a window was last evaluated", labels=VERSION_LABELS)
        for v in self.versions:
            key = [v.model, v.version]
            for r in v.rules:
                labels = [*key, r.rule, r.metric, r.label]
                if r.value is not None:
                    value.add_metric(labels, r.value)
                if r.ci_low is not None and r.ci_high is not None:
                    low.add_metric(labels, r.ci_low)
                    high.add_metric(labels, r.ci_high)
                state.add_metric(labels, _STATES.get(r.state, -1.0))
                window.add_metric(labels, r.window_start.timestamp())
            for (severity, st), n in sorted(v.alerts.items()):
                alerts.add_metric([*key, severity, st], n)
            gate.add_metric(key, 1.0 if v.gate_open else 0.0)
            windows.add_metric(key, v.windows)
            rows.add_metric(key, v.rows)
            labeled.add_metric(key, v.labeled_rows)
            if v.last_batch_at is not None:
                batch.add_metric(key, v.last_batch_at.timestamp())
            if v.last_evaluation_at is not None:
                evaluated.add_metric(key, v.last_evaluation_at.timestamp())
        yield from (value, low, high, state, window, alerts, gate, windows, rows, labeled,
                    batch, evaluated)


def exposition(store: Any) -> bytes:
    """The Prometheus text exposition of the store's monitoring, read now."""
    from prometheus_client import CollectorRegistry, generate_latest

    from assay.monitor.overview import overview

    with store.transaction() as s:
        versions = overview(s, settings=store.settings)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(versions))
    return generate_latest(registry)


@router.get("/metrics", summary="Monitoring in the Prometheus text format",
            response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition (version 0.0.4)"},
                       401: {"model": ErrorResponse, "description": "No or bad token"},
                       403: {"model": ErrorResponse,
                             "description": "The token's user holds no role"}})
async def metrics(request: Request) -> Response:
    """Per model and version: the latest value of each rule (per feature or group, with
    its interval and state), alerts not resolved by severity, the deployment gate (1 open,
    0 closed), windows and rows ingested, and the times of the last batch and evaluation.
    Needs ``Authorization: Bearer`` with ``ASSAY_METRICS_TOKEN`` or a user's API token."""
    await run_in_threadpool(_authorise, request)
    body = await run_in_threadpool(exposition, request.app.state.store)
    return Response(body, media_type=CONTENT_TYPE)
