"""The impact numbers over HTTP: value curve, frontier, scenarios and sensitivity.

The data set is the request body, read like a monitoring batch
(:mod:`assay.api.routes_monitor`, same formats and size limit): Parquet, CSV, JSON rows
or a ``multipart/form-data`` upload with the data in the field ``file``; scenarios take
the YAML document in the form field ``scenarios``. The options are query parameters, as
the command line's options, and the answer is the JSON of
``assay impact KIND --format json``, computed by :mod:`assay.impact.compute`; nothing is
stored unless ``record=MODEL@VERSION`` is given: the result is then kept as evidence of
that version (:func:`assay.impact.record_analysis`, an editor of the impact record only)
and the answer holds ``recorded``.

Scoring the data again (feature scenarios, feature sensitivity) takes
``model=MODEL@VERSION``: the model artefact registered with that version, from the
evidence store. An uploaded model is never accepted (loading a pickle runs its code).
Every signed-in user may compute.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from assay.api.deps import Principal, acting, current_principal, reading, require_roles
from assay.api.routes_monitor import _BATCH_BODY, _BATCH_ERRORS, _body_to_file, _too_large
from assay.errors import InputError
from assay.impact.assessment import EDITORS

router = APIRouter(prefix="/api/impact", tags=["impact numbers"])

COLUMN = {"min_length": 1, "max_length": 200}
REF = {"min_length": 3, "max_length": 301, "pattern": r"^[^@]+@[^@]+$"}
MAX_SCENARIOS_BYTES = 1 << 20
_SCENARIOS_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object",
        "properties": {"file": {"type": "string", "format": "binary"},
                       "scenarios": {"type": "string"}},
        "required": ["file", "scenarios"]}}}}}


def _split(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _ref(text: str, name: str) -> tuple[str, str]:
    model, sep, version = text.rpartition("@")
    if not sep or not model.strip() or not version.strip():
        raise InputError(f"{name}: expected MODEL@VERSION, got {text!r}")
    return model.strip(), version.strip()


def _levels(text: str | None) -> list[float] | None:
    if text is None:
        return None
    out = []
    for p in _split(text):
        try:
            out.append(float(p))
        except ValueError:
            raise InputError(f"levels: {p!r} is not a number") from None
    if not out:
        raise InputError("levels: expected a comma-separated list of numbers")
    return out


async def _data(request: Request, folder: FilePath) -> FilePath:
    """The uploaded data set as a file (JSON rows are written as Parquet)."""
    data, _ = await _body_to_file(request, folder, None)
    if isinstance(data, FilePath):
        return data
    import pyarrow.parquet as pq

    path = folder / "rows.parquet"
    pq.write_table(data, path)
    return path


async def _scenarios(request: Request) -> str:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise InputError("scenarios: send multipart/form-data with the data in the field "
                         "'file' and the scenarios (YAML) in the field 'scenarios'")
    form = await request.form()
    part = form.get("scenarios")
    if part is None:
        raise InputError("scenarios: expected the scenarios (YAML) in the form field "
                         "'scenarios'")
    raw = part.encode("utf-8") if isinstance(part, str) else await part.read(
        MAX_SCENARIOS_BYTES + 1)
    if len(raw) > MAX_SCENARIOS_BYTES:
        raise _too_large()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("scenarios: expected UTF-8 YAML text") from None


async def _run(request: Request, principal: Principal, kind: str, record: str | None,
               model: str | None, parameters: dict[str, Any],
               compute: Callable[[FilePath, Any], dict[str, Any]],
               scenarios: bool = False) -> dict[str, Any]:
    """Read the body, compute (in a worker thread), record when asked."""
    target = _ref(record, "record") if record else None
    scorer = _ref(model, "model") if model else None
    if target is not None:
        require_roles(principal, *EDITORS)  # before a large body is read
    with tempfile.TemporaryDirectory(prefix="assay-impact-") as tmp:
        folder = FilePath(tmp)
        data = await _data(request, folder)
        text = await _scenarios(request) if scenarios else None

        def work() -> dict[str, Any]:
            from assay.evidence import digest_bytes, digest_file
            from assay.impact.analyses import record_analysis
            from assay.impact.compute import version_model

            adapter = None
            if scorer is not None:
                with reading(request) as s:
                    s.info["settings"] = request.app.state.settings  # the evidence store
                    adapter = version_model(s, scorer[0], scorer[1], folder)
            out = compute(data, adapter) if text is None else compute(data, (adapter, text))
            if target is None:
                return out
            inputs = {"data": digest_file(data)}
            if text is not None:
                inputs["scenarios"] = digest_bytes(text.encode("utf-8"))
            params = dict(parameters)
            if scorer is not None:
                params["model"] = f"{scorer[0]}@{scorer[1]}"
            with acting(request, principal) as (s, actor):
                s.info["settings"] = request.app.state.settings  # the evidence store
                rec = record_analysis(s, actor, target[0], target[1], kind, out,
                                      inputs=inputs, parameters=params)
            return {**out, "recorded": rec}

        return await run_in_threadpool(work)


def _names(model: bool = False) -> dict[str, str]:
    return {"n_boot": "replicates", "model": "model", "score": "score"} if model else \
        {"n_boot": "replicates"}


TARGET = Query(..., **COLUMN, description="The label column")
POSITIVE = Query(..., min_length=1, max_length=200,
                 description="The label value that is the positive outcome")
VALUE = Query(..., min_length=1, max_length=2000,
              description='Value of each outcome, e.g. "tp=1,fp=-5,tn=0,fn=-1"; a name that '
                          "is not a number is a per-row column")
SENSITIVE = Query(None, max_length=2000, description="Sensitive columns, a,b")
REPLICATES = Query(1000, ge=0, le=100_000, description="Bootstrap replicates (0: none)")
SEED = Query(0, ge=0, le=2**32 - 1, description="Bootstrap seed")
RECORD = Query(None, **REF, description="MODEL@VERSION: keep the result as evidence of that "
                                        "version (editors of the impact record)")
MODEL = Query(None, **REF, description="MODEL@VERSION: score the data with the model "
                                       "artefact registered with that version")
THRESHOLD = Query(None, ge=-1e12, le=1e12,
                  description="Baseline threshold (default: the best single threshold)")


@router.post("/value", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Value of the rule score >= t at every threshold, and the best one")
async def value(request: Request, target: str = TARGET, positive_label: str = POSITIVE,
                score: str = Query(..., **COLUMN, description="The score column"),
                value: str = VALUE, sensitive: str | None = SENSITIVE,
                points: int = Query(200, ge=1, le=10_000,
                                    description="Thresholds on the curve, with intervals"),
                replicates: int = REPLICATES, seed: int = SEED, record: str | None = RECORD,
                principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay impact value --format json``."""
    from assay.impact import compute

    params = {"target": target, "positive_label": positive_label, "score": score,
              "value": value, "sensitive": _split(sensitive), "points": points,
              "replicates": replicates, "seed": seed}
    return await _run(request, principal, "value", record, None, params, lambda d, _: _named(
        lambda: compute.value(d, target=target, positive_label=positive_label, score=score,
                              value=value, sensitive=_split(sensitive), points=points,
                              n_boot=replicates, seed=seed)))


@router.post("/frontier", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="The value kept at each level of a fairness constraint")
async def frontier(request: Request, target: str = TARGET, positive_label: str = POSITIVE,
                   score: str = Query(..., **COLUMN, description="The score column"),
                   value: str = VALUE,
                   sensitive: str = Query(..., min_length=1, max_length=2000,
                                          description="Sensitive columns, a,b"),
                   constraint: Literal["demographic_parity_ratio",
                                       "equal_opportunity_difference"] = Query(
                       "demographic_parity_ratio"),
                   levels: str | None = Query(None, max_length=2000,
                                              description="Constraint levels, l1,l2"),
                   randomized: bool = Query(False, description="Let each group mix two "
                                                               "thresholds at random"),
                   record: str | None = RECORD,
                   principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay impact frontier --format json``."""
    from assay.impact import compute

    lv = _levels(levels)
    params = {"target": target, "positive_label": positive_label, "score": score,
              "value": value, "sensitive": _split(sensitive), "constraint": constraint,
              "levels": lv, "randomized": randomized}
    return await _run(request, principal, "frontier", record, None, params,
                      lambda d, _: _named(lambda: compute.frontier(
                          d, target=target, positive_label=positive_label, score=score,
                          value=value, sensitive=_split(sensitive), constraint=constraint,
                          levels=lv, randomized=randomized)))


@router.post("/scenarios", openapi_extra=_SCENARIOS_BODY, responses=_BATCH_ERRORS,
             summary="Each scenario's metrics, value and fairness beside the baseline's")
async def scenarios(request: Request, target: str = TARGET, positive_label: str = POSITIVE,
                    value: str = VALUE,
                    score: str | None = Query(None, **COLUMN,
                                              description="The score column (or model)"),
                    model: str | None = MODEL, sensitive: str | None = SENSITIVE,
                    threshold: float | None = THRESHOLD, replicates: int = REPLICATES,
                    seed: int = SEED, record: str | None = RECORD,
                    principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay impact scenarios --format json``; the scenarios (YAML, see
    docs/impact.md) are the form field ``scenarios`` beside the data in ``file``."""
    from assay.impact import compute

    params = {"target": target, "positive_label": positive_label, "score": score,
              "value": value, "sensitive": _split(sensitive), "threshold": threshold,
              "replicates": replicates, "seed": seed}

    def run(d: FilePath, extra: tuple[Any, str]) -> dict[str, Any]:
        adapter, text = extra
        return _named(lambda: compute.scenarios(
            d, target=target, positive_label=positive_label, value=value, text=text,
            source="scenarios", score=score, adapter=adapter, sensitive=_split(sensitive),
            threshold=threshold, n_boot=replicates, seed=seed), model=True)

    return await _run(request, principal, "scenarios", record, model, params, run,
                      scenarios=True)


@router.post("/sensitivity", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Which assumptions move the value, and which features drive a gap")
async def sensitivity(request: Request, target: str = TARGET, positive_label: str = POSITIVE,
                      value: str = VALUE,
                      score: str | None = Query(None, **COLUMN,
                                                description="The score column (or model)"),
                      model: str | None = MODEL, sensitive: str | None = SENSITIVE,
                      group: str | None = Query(None, min_length=1, max_length=200,
                                                description="The group whose gap is studied"),
                      reference: str | None = Query(None, min_length=1, max_length=200,
                                                    description="The reference group"),
                      features: str | None = Query(None, max_length=2000,
                                                   description="Features to swap, a,b"),
                      rate: Literal["selection_rate", "true_positive_rate"] = Query(
                          "selection_rate"),
                      threshold: float | None = THRESHOLD,
                      spread: float = Query(0.5, gt=0, le=10,
                                            description="Tornado: each assumption +/- this "
                                                        "share"),
                      replicates: int = REPLICATES, seed: int = SEED,
                      record: str | None = RECORD,
                      principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay impact sensitivity --format json``; the feature part needs
    ``model``, ``group`` and ``reference``."""
    from assay.impact import compute

    if (group is None) != (reference is None):
        raise InputError("give both group and reference (or neither)")
    if group is not None and model is None:
        raise InputError("group: swapping features needs model=MODEL@VERSION to score again")
    params = {"target": target, "positive_label": positive_label, "score": score,
              "value": value, "sensitive": _split(sensitive), "group": group,
              "reference": reference, "features": _split(features), "rate": rate,
              "threshold": threshold, "spread": spread, "replicates": replicates,
              "seed": seed}
    return await _run(request, principal, "sensitivity", record, model, params,
                      lambda d, adapter: _named(lambda: compute.sensitivity(
                          d, target=target, positive_label=positive_label, value=value,
                          score=score, adapter=adapter, sensitive=_split(sensitive),
                          group=group, reference=reference, features=_split(features),
                          rate=rate, threshold=threshold, spread=spread,
                          n_boot=replicates, seed=seed), model=True))


@router.post("/abtest", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="A/B or canary test: difference with interval, SRM check, MDE, CUPED")
async def abtest(request: Request, outcome: str = Query(..., **COLUMN),
                 arm: str = Query(..., **COLUMN, description="Column naming each row's arm"),
                 control: str | None = Query(None, **COLUMN, description="The control arm"),
                 covariate: str | None = Query(None, **COLUMN,
                                               description="Pre-period covariate (CUPED)"),
                 share: float = Query(0.5, gt=0, lt=1,
                                      description="Planned treatment share (SRM)"),
                 record: str | None = RECORD,
                 principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay impact abtest --format json``."""
    from assay.impact import causal

    params = {"outcome": outcome, "arm": arm, "control": control, "covariate": covariate,
              "share": share}
    return await _run(request, principal, "abtest", record, None, params, lambda d, _: _named(
        lambda: causal.abtest(causal.read_table(d), outcome=outcome, arm=arm, control=control,
                              covariate=covariate, expected_share=share,
                              source="request body")))


@router.post("/did", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Difference-in-differences: TWFE, clustered SEs, event study, pre-trend")
async def did(request: Request, outcome: str = Query(..., **COLUMN),
              unit: str = Query(..., **COLUMN, description="Unit id column (clusters)"),
              time: str = Query(..., **COLUMN, description="Period column"),
              treated: str = Query(..., **COLUMN, description="0/1: the unit is treated"),
              post: str = Query(..., **COLUMN, description="0/1: the period is after the start"),
              cluster: str | None = Query(None, **COLUMN,
                                          description="Cluster column (default: unit)"),
              record: str | None = RECORD,
              principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay impact did --format json`` (``estimate``, ``se``, ``ci`` ...)."""
    from assay.impact import causal

    params = {"outcome": outcome, "unit": unit, "time": time, "treated": treated,
              "post": post, "cluster": cluster}
    return await _run(request, principal, "did", record, None, params, lambda d, _: _named(
        lambda: causal.did(causal.read_table(d), outcome=outcome, unit=unit, time=time,
                           treated=treated, post=post, cluster=cluster,
                           source="request body")))


@router.post("/rdd", openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Regression discontinuity at the decision threshold (local-linear)")
async def rdd(request: Request, outcome: str = Query(..., **COLUMN),
              running: str = Query(..., **COLUMN, description="The score the decision uses"),
              cutoff: float = Query(..., ge=-1e12, le=1e12,
                                    description="The decision threshold"),
              bandwidth: float | None = Query(None, gt=0, le=1e12,
                                              description="Default: MSE-optimal (IK)"),
              record: str | None = RECORD,
              principal: Principal = Depends(current_principal)) -> dict:
    """The JSON of ``assay impact rdd --format json``."""
    from assay.impact import causal

    params = {"outcome": outcome, "running": running, "cutoff": cutoff,
              "bandwidth": bandwidth}
    return await _run(request, principal, "rdd", record, None, params, lambda d, _: _named(
        lambda: causal.rdd(causal.read_table(d), outcome=outcome, running=running,
                           cutoff=cutoff, bandwidth=bandwidth, source="request body")))


def _named(fn: Callable[[], dict[str, Any]], *, model: bool = False) -> dict[str, Any]:
    """Run ``fn``; errors name the options as this API's query parameters."""
    from assay.errors import AssayError

    try:
        return fn()
    except AssayError as exc:
        raise exc.rename(_names(model)) from None
