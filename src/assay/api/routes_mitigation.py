"""Model comparisons and mitigation proposals over HTTP.

The data set is the request body, read like the impact numbers
(:mod:`assay.api.routes_impact_numbers`: Parquet, CSV, JSON rows or a
``multipart/form-data`` upload in the field ``file``); the options are query
parameters, as the command line's, and the answer is the JSON of ``assay compare
--data ... --format json``, ``assay mitigate thresholds`` or ``assay mitigate reweigh``
(the cell table; each row's weight is its cell's). Every signed-in user may compute;
with ``record=MODEL@VERSION`` the result is kept as evidence of that version (editors
of the impact record and validators: :data:`assay.impact.analyses.RECORDERS`), checked
before the body is read, and the answer holds ``recorded``. A proposal changes nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from assay.api.deps import Principal, acting, current_principal, require_roles
from assay.api.routes_impact_numbers import (
    COLUMN,
    POSITIVE,
    RECORD,
    SEED,
    TARGET,
    _data,
    _ref,
    _split,
)
from assay.api.routes_monitor import _BATCH_BODY, _BATCH_ERRORS
from assay.impact.analyses import RECORDERS

router = APIRouter(prefix="/api/impact", tags=["comparisons and mitigation"])

SENSITIVE = Query(..., min_length=1, max_length=2000, description="Sensitive columns, a,b")


async def _run(request: Request, principal: Principal, kind: str, record: str | None,
               parameters: dict[str, Any], compute: Callable[[FilePath], dict[str, Any]]
               ) -> dict[str, Any]:
    target = _ref(record, "record") if record else None
    if target is not None:
        require_roles(principal, *RECORDERS[kind])  # before a large body is read
    with tempfile.TemporaryDirectory(prefix="assay-mitigate-") as tmp:
        data = await _data(request, FilePath(tmp))

        def work() -> dict[str, Any]:
            from assay.evidence import digest_file
            from assay.impact.analyses import record_analysis

            out = compute(data)
            if target is None:
                return out
            with acting(request, principal) as (s, actor):
                s.info["settings"] = request.app.state.settings  # the evidence store
                rec = record_analysis(s, actor, target[0], target[1], kind, out,
                                      inputs={"data": digest_file(data)},
                                      parameters=parameters)
            return {**out, "recorded": rec}

        return await run_in_threadpool(work)


@router.post("/compare", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Two models on the same rows: DeLong, McNemar, paired bootstrap")
async def compare(request: Request, target: str = TARGET, positive_label: str = POSITIVE,
                  old_score: str | None = Query(None, **COLUMN),
                  new_score: str | None = Query(None, **COLUMN),
                  old_prediction: str | None = Query(None, **COLUMN),
                  new_prediction: str | None = Query(None, **COLUMN),
                  sensitive: str | None = Query(None, max_length=2000,
                                                description="Sensitive columns, a,b"),
                  threshold: float = Query(0.5, ge=-1e12, le=1e12),
                  confidence: float = Query(0.95, ge=0.5, lt=1.0),
                  replicates: int = Query(2000, ge=100, le=100_000),
                  seed: int = SEED, record: str | None = RECORD,
                  principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay compare --data ... --format json``."""
    from assay.metrics.compare import compare_data

    params = {"target": target, "positive_label": positive_label, "old_score": old_score,
              "new_score": new_score, "old_prediction": old_prediction,
              "new_prediction": new_prediction, "sensitive": _split(sensitive),
              "threshold": threshold, "confidence": confidence, "replicates": replicates,
              "seed": seed}
    return await _run(request, principal, "comparison", record, params, lambda d: compare_data(
        d, target=target, positive_label=positive_label, old_score=old_score,
        new_score=new_score, old_prediction=old_prediction, new_prediction=new_prediction,
        sensitive=_split(sensitive), threshold=threshold, confidence=confidence,
        n_boot=replicates, seed=seed))


@router.post("/mitigate/thresholds", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Group thresholds meeting a fairness target at the least loss")
async def thresholds(request: Request, target: str = TARGET, positive_label: str = POSITIVE,
                     score: str = Query(..., **COLUMN, description="The score column"),
                     sensitive: str = SENSITIVE,
                     constraint: Literal["demographic_parity_difference",
                                         "equal_opportunity_difference",
                                         "equalized_odds_difference"] = Query(
                         "demographic_parity_difference"),
                     max_gap: float = Query(0.05, ge=0.0, le=1.0),
                     threshold: float = Query(0.5, ge=-1e12, le=1e12),
                     value: str | None = Query(None, max_length=2000,
                                              description='Maximise value instead of '
                                                          'accuracy: "tp=1,fp=-5,tn=0,fn=-1"'),
                     record: str | None = RECORD,
                     principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay mitigate thresholds --format json``."""
    from assay.impact.mitigation import thresholds_from_data
    from assay.impact.value import parse_value_model

    vm = parse_value_model(value, option="value") if value else None
    params = {"method": "thresholds", "target": target, "positive_label": positive_label,
              "score": score, "sensitive": _split(sensitive), "constraint": constraint,
              "max_gap": max_gap, "threshold": threshold, "value": value}
    return await _run(request, principal, "mitigation", record, params,
                      lambda d: thresholds_from_data(
                          d, target=target, positive_label=positive_label, score=score,
                          sensitive=_split(sensitive), value=vm, constraint=constraint,
                          max_gap=max_gap, threshold=threshold))


@router.post("/mitigate/reweigh", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Reweighing (Kamiran-Calders) cell weights for retraining")
async def reweigh(request: Request, target: str = TARGET, positive_label: str = POSITIVE,
                  sensitive: str = SENSITIVE, record: str | None = RECORD,
                  principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay mitigate reweigh --format json`` (without the weights file)."""
    from assay.impact.mitigation import reweigh_data

    params = {"method": "reweigh", "target": target, "positive_label": positive_label,
              "sensitive": _split(sensitive)}
    return await _run(request, principal, "mitigation", record, params, lambda d: reweigh_data(
        d, target=target, positive_label=positive_label, sensitive=_split(sensitive)))
