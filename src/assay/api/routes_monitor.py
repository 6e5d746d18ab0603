"""Monitoring over HTTP: production batches, late labels, status, runs and alerts.

Every route calls :mod:`assay.monitor` with the authenticated user as the
actor, in one transaction: a batch that fails half-way leaves nothing behind.
The roles come from :mod:`assay.monitor.roles` (checked here before a large
body is read, and again by the domain). A batch is the request body:
Parquet (``application/vnd.apache.parquet``, or ``application/octet-stream``
starting with the Parquet magic ``PAR1``), CSV (``text/csv``), JSON rows
(``application/json``: a list of row objects or ``{"rows": [...]}``), or a
``multipart/form-data`` upload with the file in the field ``file``; the
column options are query parameters, as the CLI's options.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from assay.api.deps import (
    POLICY_NAME,
    Principal,
    acting,
    current_principal,
    reading,
    require_roles,
)
from assay.api.errors import ErrorResponse
from assay.api.routes_models import MAX_EVIDENCE_BYTES
from assay.errors import InputError
from assay.monitor.roles import ACKNOWLEDGERS, INGESTERS, RESOLVERS, RUNNERS

router = APIRouter(prefix="/api", tags=["monitoring"])

NAME = Path(..., min_length=1, max_length=200, description="Model name")
VERSION = Path(..., min_length=1, max_length=100, description="Version string")
ALERT_ID = Path(..., ge=1, le=2**31 - 1, description="Alert id")
COLUMN = {"min_length": 1, "max_length": 200}
TEXT = 5000
#: Largest batch accepted: the same bound as any other data upload (evidence files).
MAX_BATCH_BYTES = MAX_EVIDENCE_BYTES
PARQUET_MAGIC = b"PAR1"
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")
ACCEPTED = ("application/vnd.apache.parquet, application/octet-stream (Parquet), text/csv, "
            "application/json (a list of row objects or {\"rows\": [...]}) or "
            "multipart/form-data (field 'file')")

_ROW_VALUE = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                        {"type": "null"}]}
_ROWS = {"type": "array", "items": {"type": "object", "additionalProperties": _ROW_VALUE}}
_BATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string"}},
    "application/json": {"schema": {"anyOf": [
        _ROWS, {"type": "object", "properties": {"rows": _ROWS}, "required": ["rows"]}]}},
    "multipart/form-data": {"schema": {
        "type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
        "required": ["file"]}},
}}}
_BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Body larger than the upload limit"},
    415: {"model": ErrorResponse, "description": "Body in a format that is not accepted"},
}


# --------------------------------------------------------------------------- models


class IngestOut(BaseModel):
    batch_id: int
    source: str
    rows: int
    windows: dict[str, int] = Field(description="Rows per daily window (UTC day -> rows)")
    kept_rows: int = Field(description="Rows kept (by row id) to join late labels")
    labeled_rows: int
    extra_columns: list[str] = Field(description="Columns the training data does not have")


class LabelsOut(BaseModel):
    batch_id: int
    source: str
    rows: int
    joined: int
    unknown: int
    already_labeled: int
    duplicates: int
    windows: dict[str, int]
    unknown_examples: list[str]


class WindowRef(BaseModel):
    period: str
    start: str | None
    end: str | None


class AlertOut(BaseModel):
    id: int
    model: str | None
    version: str | None
    rule: str
    rule_id: str
    metric: str
    label: str = Field(description="The feature or group the value is of ('' when none)")
    window: WindowRef
    value: float | None
    ci: list[float] | None
    threshold: dict[str, float]
    severity: str
    action: str
    state: str
    message: str
    created_at: str | None
    acknowledged_at: str | None
    resolved_at: str | None
    note: str


class DayWindowOut(BaseModel):
    start: str | None
    end: str | None
    rows: int
    labeled: int


class EvaluationOut(BaseModel):
    window: WindowRef
    rule: str
    rule_id: str
    metric: str
    label: str
    value: float | None
    ci: list[float] | None
    threshold: dict[str, float]
    state: str
    n: int | None
    labeled_rows: int
    note: str


class StatusOut(BaseModel):
    model: str
    version: str
    windows: list[DayWindowOut]
    evaluations: list[EvaluationOut] = Field(
        description="Per window and rule: the latest value, its interval, threshold, state")
    alerts: list[AlertOut]


class VersionRunOut(BaseModel):
    model: str
    version: str
    policy: str
    tier: str
    window: str
    windows_evaluated: list[str]
    alerts: list[AlertOut]
    purged_rows: int


class RunOut(BaseModel):
    versions: list[VersionRunOut]
    alerts: list[AlertOut]


class RunIn(BaseModel):
    """Which versions to evaluate (default: every version with data) and under what plan
    (default: the policy and tier of each version's latest certification)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, min_length=1, max_length=200)
    version: str | None = Field(None, min_length=1, max_length=100)
    policy: str | None = Field(None, max_length=100, pattern=POLICY_NAME,
                               description="A shipped or registered policy's name")
    tier: str | None = Field(None, min_length=1, max_length=50)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=TEXT)


# --------------------------------------------------------------------------- bodies


def _too_large() -> HTTPException:
    return HTTPException(413, f"request body: larger than {MAX_BATCH_BYTES // 2**20} MiB")


async def _body_to_file(request: Request, folder: FilePath, source: str | None
                        ) -> tuple[Any, str]:
    """The batch in the request body as a file (Parquet, CSV) or an Arrow table (JSON rows),
    and the name it goes by in messages and the audit trail."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BATCH_BYTES + 64 * 1024:
        raise _too_large()
    if ctype == "multipart/form-data":
        return await _multipart(request, folder, source)
    if ctype in PARQUET_TYPES or ctype == "application/octet-stream":
        path = folder / "batch.parquet"
        await _stream_to(request, path)
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic != PARQUET_MAGIC:
            raise HTTPException(415, f"request body ({ctype}): expected a Parquet file (it "
                                     f"starts with PAR1); send CSV as text/csv and rows as "
                                     f"application/json")
        return path, source or "request body (Parquet)"
    if ctype in ("text/csv", "application/csv"):
        path = folder / "batch.csv"
        await _stream_to(request, path)
        return path, source or "request body (CSV)"
    if ctype == "application/json" or ctype.endswith("+json"):
        name = source or "request body (JSON rows)"
        raw = await request.body()
        if len(raw) > MAX_BATCH_BYTES:
            raise _too_large()
        return rows_table(raw, name), name
    raise HTTPException(415, f"request body: content type {ctype or '(none)'} is not "
                             f"accepted; expected {ACCEPTED}")


async def _stream_to(request: Request, path: FilePath) -> None:
    size = 0
    with open(path, "wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BATCH_BYTES:
                raise _too_large()
            fh.write(chunk)
    if size == 0:
        raise InputError(f"request body: empty; expected {ACCEPTED}")


async def _multipart(request: Request, folder: FilePath, source: str | None
                     ) -> tuple[Any, str]:
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InputError("file: expected the batch as a file in the form field 'file'")
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1][:200]
    data = await upload.read(MAX_BATCH_BYTES + 1)
    if len(data) > MAX_BATCH_BYTES:
        raise _too_large()
    if not data:
        raise InputError(f"file {name}: empty" if name else "file: empty")
    label = source or name or "uploaded file"
    lower = name.lower()
    if data[:4] == PARQUET_MAGIC:
        kind = "parquet"
    elif lower.endswith(".json") or (upload.content_type or "").endswith("json"):
        return rows_table(data, label), label
    elif lower.endswith((".csv", ".txt", ".tsv")) or (upload.content_type or "").startswith(
            "text/"):
        kind = "csv"
    else:
        raise HTTPException(415, f"file {name or '(no name)'}: expected Parquet (starting "
                                 "with PAR1), CSV (.csv) or JSON rows (.json)")
    path = folder / f"batch.{kind}"
    path.write_bytes(data)
    return path, label


def rows_table(raw: bytes, source: str) -> Any:
    """JSON rows (a list of objects, or ``{"rows": [...]}``) as an Arrow table; InputError
    naming the row or column that is not as expected."""
    import pyarrow as pa

    try:
        doc = json.loads(raw)
    except UnicodeDecodeError:
        raise InputError(f"{source}: expected UTF-8 JSON text") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None
    rows = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        if isinstance(doc, dict):
            got = (f"'rows' holding {type(rows).__name__}" if "rows" in doc
                   else "an object without 'rows'")
        else:
            got = type(doc).__name__
        raise InputError(f"{source}: expected a list of row objects or {{\"rows\": [...]}}, "
                         f"got {got}")
    if not rows:
        raise InputError(f"{source}: the batch has no rows")
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{source}: row {i + 1}: expected an object of column: value, got "
                             f"{type(row).__name__}")
        for key, value in row.items():
            if isinstance(value, dict | list):
                raise InputError(f"{source}: row {i + 1}, column '{key}': expected a number, "
                                 f"text, true/false or null, got {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value):
                raise InputError(f"{source}: row {i + 1}, column '{key}': expected a finite "
                                 "number")
            if key not in columns:
                columns[key] = [None] * i
        for key, values in columns.items():
            values.append(row.get(key))
    arrays = {}
    for key, values in columns.items():
        kinds = {_kind(v) for v in values if v is not None}
        if kinds == {"integer", "number"}:
            values = [None if v is None else float(v) for v in values]
        elif len(kinds) > 1:
            seen = _kind(next(v for v in values if v is not None))
            first = next(i for i, v in enumerate(values) if v is not None and _kind(v) != seen)
            raise InputError(f"{source}: column '{key}': expected one type of value, got "
                             f"{seen} and {_kind(values[first])} (first at row {first + 1})")
        try:
            arrays[key] = pa.array(values)
        except OverflowError:
            raise InputError(f"{source}: column '{key}': a whole number does not fit in 64 "
                             "bits (send it as a decimal number or as text)") from None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"{source}: column '{key}': {str(exc).splitlines()[0]}") from None
    return pa.table(arrays)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "text"


def _split(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


# --------------------------------------------------------------------------- routes


@router.post("/models/{name}/versions/{version}/monitoring/batches", response_model=IngestOut,
             status_code=201, openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Send one batch of production rows into the version's windows")
async def ingest_batch(
        request: Request, name: str = NAME, version: str = VERSION,
        time_column: str | None = Query(None, **COLUMN,
                                        description="Column with each row's time (UTC)"),
        window_start: str | None = Query(None, max_length=40,
                                         description="YYYY-MM-DD: the window of every row "
                                                     "(without a time column)"),
        id_column: str | None = Query(None, **COLUMN,
                                      description="Row id column (kept to join late labels)"),
        prediction: str | None = Query(None, **COLUMN, description="Prediction column"),
        score: str | None = Query(None, **COLUMN, description="Score (probability) column"),
        target: str | None = Query(None, **COLUMN, description="Label column, if known"),
        sensitive: str | None = Query(None, max_length=2000,
                                      description="Protected attribute columns, a,b"),
        positive_label: str = Query("1", min_length=1, max_length=200,
                                    description="The label value that counts as positive"),
        source: str | None = Query(None, min_length=1, max_length=200,
                                   description="The batch's name in messages and the audit "
                                               "trail (default: the uploaded file's name)"),
        principal: Principal = Depends(current_principal)) -> dict:
    """Rows are merged into the version's daily windows in one transaction. Refused with a
    4xx naming the column and what was expected (and nothing stored): a missing monitored
    feature, a type that differs from the training data, scores outside [0, 1], rows
    without a time or dated after today, duplicate or already ingested row ids, the same
    batch twice (409)."""
    from assay.monitor import ingest

    require_roles(principal, *INGESTERS)
    with tempfile.TemporaryDirectory(prefix="assay-batch-") as tmp:
        data, label = await _body_to_file(request, FilePath(tmp), source)

        def work() -> dict:
            with acting(request, principal) as (s, actor):
                return ingest(s, actor, name, version, data, name=label,
                              time_column=time_column, window_start=window_start,
                              id_column=id_column, prediction=prediction, score=score,
                              target=target, sensitive=_split(sensitive),
                              positive_label=positive_label).to_dict()

        return await run_in_threadpool(work)


@router.post("/models/{name}/versions/{version}/monitoring/labels", response_model=LabelsOut,
             status_code=201, openapi_extra=_BATCH_BODY, responses=_BATCH_ERRORS,
             summary="Join late labels to the rows ingested earlier, by row id")
async def add_labels(
        request: Request, name: str = NAME, version: str = VERSION,
        id_column: str = Query(..., **COLUMN, description="Row id column"),
        target: str = Query(..., **COLUMN, description="Label column"),
        positive_label: str = Query("1", min_length=1, max_length=200,
                                    description="The label value that counts as positive"),
        source: str | None = Query(None, min_length=1, max_length=200,
                                   description="The batch's name in messages and the audit "
                                               "trail"),
        principal: Principal = Depends(current_principal)) -> dict:
    """Unknown ids, rows already labelled and repeated ids are counted and skipped: a label
    is never counted twice."""
    from assay.monitor import add_labels as domain_add_labels

    require_roles(principal, *INGESTERS)
    with tempfile.TemporaryDirectory(prefix="assay-labels-") as tmp:
        data, label = await _body_to_file(request, FilePath(tmp), source)

        def work() -> dict:
            with acting(request, principal) as (s, actor):
                return domain_add_labels(s, actor, name, version, data, name=label,
                                         id_column=id_column, target=target,
                                         positive_label=positive_label).to_dict()

        return await run_in_threadpool(work)


@router.get("/models/{name}/versions/{version}/monitoring", response_model=StatusOut,
            summary="Per window and rule: the value with its interval, threshold and state")
def monitoring_status(request: Request, name: str = NAME, version: str = VERSION,
                      principal: Principal = Depends(current_principal)) -> dict:
    from assay.monitor import status

    with reading(request) as s:
        return status(s, name, version)


@router.post("/monitoring/run", response_model=RunOut,
             summary="Evaluate every closed window not yet evaluated and raise alerts")
def run(request: Request, body: RunIn | None = None,
        principal: Principal = Depends(current_principal)) -> dict:
    """Idempotent: a second run evaluates nothing new (rules that read labels run again when
    more labels arrived). The service also runs this by itself every
    ``ASSAY_MONITOR_INTERVAL`` seconds."""
    from assay.monitor import run as domain_run
    from assay.registry.policies import policy_named

    body = body or RunIn()
    if body.version is not None and body.model is None:
        raise InputError("version: a version needs its model")
    require_roles(principal, *RUNNERS)
    with acting(request, principal) as (s, actor):
        policy = policy_named(s, body.policy) if body.policy else None
        return domain_run(s, actor, body.model, body.version, policy=policy,
                          tier=body.tier).to_dict()


@router.get("/alerts", response_model=list[AlertOut], summary="Alerts raised by monitoring")
def list_alerts(request: Request,
                model: str | None = Query(None, min_length=1, max_length=200),
                version: str | None = Query(None, min_length=1, max_length=100,
                                            description="Only with model"),
                state: Literal["open", "acknowledged", "resolved"] | None = Query(None),
                principal: Principal = Depends(current_principal)) -> list[dict]:
    from assay.monitor import list_alerts as domain_list

    if version is not None and model is None:
        raise InputError("version: a version needs its model")
    with reading(request) as s:
        return domain_list(s, model=model, version=version, state=state)


@router.get("/alerts/{alert_id}", response_model=AlertOut, summary="One alert")
def get_alert(request: Request, alert_id: int = ALERT_ID,
              principal: Principal = Depends(current_principal)) -> dict:
    from assay.monitor import get_alert as domain_get

    with reading(request) as s:
        return domain_get(s, alert_id)


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut,
             summary="Acknowledge an open alert (take it in hand)")
def acknowledge(request: Request, body: NoteIn | None = None, alert_id: int = ALERT_ID,
                principal: Principal = Depends(current_principal)) -> dict:
    from assay.monitor import acknowledge as domain_ack

    require_roles(principal, *ACKNOWLEDGERS)
    with acting(request, principal) as (s, actor):
        return domain_ack(s, actor, alert_id, note=(body or NoteIn()).note)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut,
             summary="Resolve an alert (never by the version's developer)")
def resolve(request: Request, body: NoteIn | None = None, alert_id: int = ALERT_ID,
            principal: Principal = Depends(current_principal)) -> dict:
    from assay.monitor import resolve as domain_resolve

    require_roles(principal, *RESOLVERS)
    with acting(request, principal) as (s, actor):
        return domain_resolve(s, actor, alert_id, note=(body or NoteIn()).note)
