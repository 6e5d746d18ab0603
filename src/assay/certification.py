"""Certify a model against a policy tier: run its checks, judge them, record the evidence.

    from assay import certify

    cert = certify(data="test.parquet", policy="credit-lending", tier="high",
                   target="default", model="model.joblib", reference="train.parquet",
                   sensitive=["sex", "age_band"])
    cert.status            # "passed" | "passed_with_warnings" | "blocked"
    cert.write("out/")     # results.json and report.html

The verdict follows the policy:

* a check that fails with severity ``block`` blocks the model;
* a check that errors (an unexpected exception inside the check, a missing
  check) is never taken for a pass: it blocks when its severity is
  ``block`` and warns otherwise;
* a check that cannot run (no model, no reference data, no score) is
  skipped with the reason; a skipped check is not evidence, so it makes the
  verdict at best ``passed_with_warnings`` (or ``blocked`` when the policy
  sets ``settings.on_skip: block``);
* warnings (a warn-severity failure, an interval straddling a threshold)
  give ``passed_with_warnings``.

``Certification.to_dict()`` is the ``results.json`` document described in
``docs/architecture.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from assay import __version__
from assay.checks.base import (
    CheckDef,
    CheckResult,
    CheckSpec,
    Severity,
    Status,
    run_check,
)
from assay.errors import AssayError, InputError
from assay.policy import Policy, Settings, Tier, load_check_modules, load_policy

SCHEMA_VERSION = "1.0"

#: Packages whose versions are recorded in ``environment.packages``.
RECORDED_PACKAGES = ("assay", "numpy", "pyarrow", "scipy", "scikit-learn", "pandas", "pydantic",
                     "PyYAML", "joblib", "polars")

STATUSES = ("passed", "passed_with_warnings", "blocked")


# --------------------------------------------------------------------------- progress


@runtime_checkable
class ProgressTask(Protocol):
    """A long step in progress."""

    def advance(self, n: int | float = 1) -> None: ...

    def finish(self) -> None: ...


@runtime_checkable
class ProgressReporter(Protocol):
    """Told when a long step starts; the CLI passes one that draws progress bars.

    ``start`` returns a :class:`ProgressTask` for that step, or ``None`` when
    the reporter tracks a single step itself (then its own ``advance`` and
    ``finish`` are called).
    """

    def start(self, description: str, total: int | float | None = None) -> ProgressTask | None:
        ...


class _NoTask:
    def advance(self, n: int | float = 1) -> None:
        return None

    def finish(self) -> None:
        return None

    def __enter__(self) -> _NoTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


class _Task:
    """Wraps whatever a reporter returned so that ``advance``/``finish`` always exist."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._done = False

    def advance(self, n: int | float = 1) -> None:
        fn = getattr(self._handle, "advance", None)
        if callable(fn):
            fn(n)

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        for name in ("finish", "close", "done"):
            fn = getattr(self._handle, name, None)
            if callable(fn):
                fn()
                return

    def __enter__(self) -> _Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def _start(progress: Any, description: str, total: int | float | None) -> _Task | _NoTask:
    if progress is None:
        return _NoTask()
    start = getattr(progress, "start", None)
    if callable(start):
        handle = start(description, total)
    elif callable(progress):
        handle = progress(description, total)
    else:
        return _NoTask()
    return _Task(progress if handle is None else handle)


# --------------------------------------------------------------------------- context


@dataclass
class CertificationContext:
    """What a check sees (implements ``assay.checks.base.CheckContext``).

    ``cached(key, fn)`` computes ``fn()`` once per certification; an
    exception raised by ``fn`` is remembered too, so an expensive step that
    fails is not retried by every check that needs it (each such check
    reports the error).
    """

    evaluation: Any
    reference: Any | None
    model: Any | None
    roles: Any
    settings: Settings
    policy: Policy | None = None
    tier: str | None = None
    progress_reporter: Any | None = None
    #: Red-team findings recorded for the model version (None: not looked up).
    red_team: list[dict[str, Any]] | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _failed: dict[str, BaseException] = field(default_factory=dict, repr=False)
    _cleanups: list[Callable[[], Any]] = field(default_factory=list, repr=False)

    def on_close(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` when the certification ends (a process a check started, a file)."""
        self._cleanups.append(fn)

    def close(self) -> None:
        while self._cleanups:
            with contextlib.suppress(Exception):
                self._cleanups.pop()()

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        if key in self._cache:
            return self._cache[key]
        if key in self._failed:
            raise self._failed[key]
        try:
            value = fn()
        except Exception as exc:
            self._failed[key] = exc
            raise
        self._cache[key] = value
        return value

    def progress(self, description: str, total: int | None = None) -> Any:
        return _start(self.progress_reporter, description, total)


# --------------------------------------------------------------------------- result


@dataclass
class Certification:
    """The outcome of one certification run; ``to_dict()`` is ``results.json``."""

    status: str
    checks: list[CheckResult]
    policy: Policy
    tier: Tier
    roles: Any
    evaluation: dict[str, Any]
    reference: dict[str, Any] | None
    model: dict[str, Any] | None
    metrics: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    created_at: str = ""
    duration_seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True unless a blocking check failed or errored."""
        return self.status != "blocked"

    @property
    def summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for c in self.checks:
            counts[str(c.status)] += 1
        return counts

    @property
    def blocking(self) -> list[CheckResult]:
        """The checks that block the model (failed or errored with severity ``block``)."""
        return [c for c in self.checks if _blocks(c, self.policy.settings)]

    def to_dict(self) -> dict[str, Any]:
        settings = self.policy.settings
        return {
            "schema_version": SCHEMA_VERSION,
            "assay_version": __version__,
            "created_at": self.created_at,
            "status": self.status,
            "policy": {
                **self.policy.to_dict(self.tier.name),
                "description": self.policy.description,
                "tier_description": self.tier.description,
                "review_interval_days": self.tier.review_interval_days,
            },
            "model": self.model,
            "data": {"evaluation": self.evaluation, "reference": self.reference},
            "roles": _roles_dict(self.roles),
            "settings": settings.model_dump(mode="json"),
            "environment": self.environment,
            "summary": self.summary,
            "checks": [_json_safe(c.to_dict()) for c in self.checks],
            "metrics": _json_safe(self.metrics) if self.metrics is not None else None,
            "drift": _json_safe(self.drift) if self.drift is not None else None,
            "notes": list(self.notes),
            "duration_seconds": round(self.duration_seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    def write(self, out_dir: str | os.PathLike[str], *,
              results: dict[str, Any] | None = None) -> dict[str, Path]:
        """Write ``results.json`` and ``report.html`` into ``out_dir``; return their paths.

        When the policy ran ``explain.reason_coverage``, the declined rows' reason codes
        are written beside them as ``reason_codes.csv``.

        ``results`` is this certification's :meth:`to_dict`, when the caller has
        built it already (it is built here otherwise). Each file is written to a
        temporary file in the same folder and renamed, so a reader never sees half
        a file.
        """
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
        if results is None:
            results = self.to_dict()
        texts = {"results.json": json.dumps(results, indent=2, ensure_ascii=False,
                                            allow_nan=False) + "\n"}
        render = _report_renderer()
        if render is not None:  # rendered before anything is written: all or nothing new
            texts["report.html"] = render(results)
        from assay.explain import REASON_CODES_FILE, reason_codes_csv

        reasons = reason_codes_csv(results)  # adverse-action reasons (docs/explain.md)
        if reasons is not None:
            texts[REASON_CODES_FILE] = reasons
        written: dict[str, Path] = {}
        for name, text in texts.items():
            path = out / name
            try:
                _atomic_write(path, text)
            except OSError as exc:
                raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
            written[name] = path
        return written


def _report_renderer() -> Callable[[dict[str, Any]], str] | None:
    try:
        from assay.report import render_report
    except ImportError:  # the report module is optional in a partial build
        return None
    return render_report


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a new file beside ``path``, flush it to disk, then rename it.

    The temporary file is created like any other file (the process umask
    applies), so the result is as readable as a file written directly.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- certify


def certify(
    *,
    data: Any,
    policy: str | os.PathLike[str] | Policy,
    tier: str,
    target: str | None = None,
    model: Any = None,
    reference: Any = None,
    prediction: str | None = None,
    score: str | None = None,
    sensitive: str | Sequence[str] = (),
    features: Sequence[str] | None = None,
    weight: str | None = None,
    positive_label: Any = 1,
    task: str = "classification",
    class_scores: Mapping[str, str] | str | None = None,
    na_values: str | Sequence[str] | None = None,
    csv: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: Any = None,
    trust_model_file: bool = False,
    red_team: Sequence[Mapping[str, Any]] | None = None,
) -> Certification:
    """Run every check of ``tier`` in ``policy`` on ``data`` and judge the model.

    ``data`` and ``reference`` are anything :func:`assay.data.open_dataset`
    accepts (DataFrame, Arrow table, Parquet or CSV path). ``model`` is a
    model file (joblib or pickle: it runs code, load only trusted files), a
    :class:`assay.data.ModelAdapter`, a fitted estimator or an MLflow registry URI
    (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``, read from
    ``$MLFLOW_TRACKING_URI``; :func:`assay.integrations.mlflow.load_model` takes the
    URI as an argument); without a model,
    ``prediction`` and/or ``score`` name columns holding its outputs.
    A model file is scanned before it is loaded and refused when it names code
    outside the allow-list, unless ``trust_model_file`` (see
    :func:`assay.data.load_model`); the ``security.model_file`` check reports
    the scan. ``red_team`` gives the red-team findings recorded for the model
    version (:func:`assay.registry.redteam.findings_for`), which the
    ``security.red_team`` check judges. ``policy`` is a policy file, a shipped
    policy name or a loaded :class:`Policy`. ``task`` is ``classification`` (binary; a
    target with more than two classes is certified as ``multiclass``, with a note),
    ``multiclass`` or ``regression``; ``class_scores`` maps each class to the column
    holding its probability (``{"A": "p_A", ...}`` or ``"A=p_A,B=p_B"``) for a
    multiclass model given by its outputs. With ``out_dir`` the results are written there
    too.

    CSV files: an empty field is a missing value, as a null is in Parquet;
    ``na_values`` adds markers that mean missing (``["?", "n/a"]``), and
    ``csv`` gives other :class:`assay.data.CsvOptions` (``{"delimiter": ";"}``).
    Both apply to the evaluation and the reference data when they are CSV files.

    Bad input (unknown column, unreadable file, invalid policy, unknown
    tier) raises an :class:`assay.errors.AssayError` before any check runs.
    A check's own failure never raises: it is recorded as an error.
    """
    t0 = time.perf_counter()
    created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    from assay.data import ColumnRoles, open_dataset

    pol = load_policy(policy)
    tier_obj = pol.tier(tier)
    registry = load_check_modules()

    if isinstance(sensitive, str):
        sensitive = [s.strip() for s in sensitive.split(",") if s.strip()]
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    roles = ColumnRoles(
        target=target,
        prediction=prediction,
        score=score,
        sensitive=list(sensitive),
        features=list(features) if features is not None else None,
        weight=weight,
        positive_label=positive_label,
        task=task,  # type: ignore[arg-type]
        threshold=pol.settings.decision_threshold,
        class_scores=_class_scores(class_scores),
    )
    if model is None and prediction is None and score is None and not roles.class_scores:
        raise InputError("nothing to certify: expected a model, a prediction column, a score "
                         "column or per-class score columns (give {model}, {prediction}, "
                         "{score} or {class_scores})",
                         fields={"model": "model=...", "prediction": "prediction=...",
                                 "score": "score=...", "class_scores": "class_scores=..."})
    csv_options = _csv_options(csv, na_values)
    adapter = _model_adapter(model, trust_model_file)
    with _start(progress, "Reading the evaluation data", None):
        evaluation = open_dataset(data, roles, csv=csv_options, validate=False)
        if roles.class_scores:
            roles = _detect_multiclass(evaluation, roles)
        try:
            evaluation = open_dataset(evaluation, roles)
        except InputError:
            # a classification target with more than two classes is multiclass; looked at
            # only when the data do not pass as binary, so a binary run reads nothing more
            detected = _detect_multiclass(evaluation, roles)
            if detected is roles:
                raise
            roles = detected
            evaluation = open_dataset(evaluation, roles)
    roles = _coerce_positive_label(evaluation, roles)
    ref_ds = None
    if reference is not None:
        ref_roles = ColumnRoles(features=roles.features, task=roles.task)
        with _start(progress, "Reading the reference data", None):
            ref_ds = open_dataset(reference, ref_roles, csv=csv_options)
    if csv_options is not None and not any(
            getattr(d, "kind", None) == "csv" for d in (evaluation, ref_ds)):
        raise InputError(f"{evaluation.name}: CSV options ({{na_values}}, {{csv}}) apply to "
                         "CSV files only; this data is not read from CSV (Parquet and data "
                         "frames store missing values as nulls)",
                         fields={"na_values": "na_values", "csv": "csv"})
    notes: list[str] = _check_sensitive(evaluation, roles, pol.settings.min_group_size)
    if roles.task == "multiclass" and task == "classification":
        notes.append(f"{evaluation.name}: column '{roles.target}' holds more than two classes: "
                     "certified as multiclass classification (task multiclass)")
    if ref_ds is not None:
        _check_reference(evaluation, ref_ds, roles)
    if adapter is not None:
        _check_model_inputs(adapter, evaluation, roles)
        _try_model(adapter, evaluation, roles)
    roles = _leave_out_identifiers(evaluation, roles, adapter, pol.settings, notes)

    ctx = CertificationContext(evaluation=evaluation, reference=ref_ds, model=adapter,
                               roles=roles, settings=pol.settings, policy=pol, tier=tier_obj.name,
                               progress_reporter=progress,
                               red_team=None if red_team is None else [dict(f) for f in red_team])
    if roles.task == "multiclass" and roles.target is not None:
        # bad multiclass input (two classes, scores missing a class or not summing to 1) is
        # refused before any check runs; the pass is cached for the checks
        from assay.metrics.multiclass_context import multiclass_data

        multiclass_data(ctx)
    results: list[CheckResult] = []
    task_handle = _start(progress, f"Running {len(tier_obj.checks)} checks", len(tier_obj.checks))
    try:
        _prepare(registry, ctx, tier_obj.checks)
        with task_handle:
            for spec in tier_obj.checks:
                results.append(run_one(registry.get(spec.id), ctx, spec))
                task_handle.advance(1)
    finally:
        ctx.close()

    if not tier_obj.checks:
        notes.append(f"tier '{tier_obj.name}' of policy '{pol.name}' has no checks: nothing was "
                     "judged")
    metrics = _summary(ctx, "metrics", _metrics_block, notes)
    drift = _summary(ctx, "drift", _drift_block, notes) if ref_ds is not None else None

    cert = Certification(
        status=verdict(results, pol.settings),
        checks=results,
        policy=pol,
        tier=tier_obj,
        roles=roles,
        evaluation=_dataset_info(evaluation),
        reference=_dataset_info(ref_ds) if ref_ds is not None else None,
        model=_model_info(adapter),
        metrics=metrics,
        drift=drift,
        notes=notes,
        created_at=created_at,
        environment=environment(),
    )
    cert.duration_seconds = time.perf_counter() - t0
    if out_dir is not None:
        cert.write(out_dir)
    return cert


def _prepare(registry: Mapping[str, CheckDef], ctx: Any, specs: Iterable[CheckSpec]) -> None:
    """Let the checks that start slow work early (:attr:`CheckDef.prepare`) start it."""
    for spec in specs:
        defn = registry.get(spec.id)
        if defn is None or defn.prepare is None or missing_requirements(defn, ctx):
            continue
        with contextlib.suppress(Exception):  # the check reports its own errors
            defn.prepare(ctx, spec)


def run_one(defn: CheckDef | None, ctx: Any, spec: CheckSpec) -> CheckResult:
    """Run one policy entry; never raises for a problem inside the check."""
    family = spec.id.split(".", 1)[0]
    base = dict(
        id=spec.id, severity=spec.severity, judge_on=spec.judge_on, threshold=spec.threshold,
        rationale=spec.rationale, regulations=list(spec.regulations), source=spec.source,
    )
    if defn is None:
        return CheckResult(family=family, title=spec.name or spec.id, status=Status.ERROR,
                           message=f"check '{spec.id}' is not available in this installation",
                           **base)
    missing = missing_requirements(defn, ctx)
    if missing:
        return CheckResult(family=defn.family, title=spec.name or defn.title, status=Status.SKIP,
                           message=missing, **base)
    try:
        return run_check(defn, ctx, spec)
    except AssayError as exc:
        message = str(exc)
    except Exception as exc:  # a defect or an unforeseen input inside the check
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return CheckResult(family=defn.family, title=spec.name or defn.title, status=Status.ERROR,
                       message=f"the check could not be computed: {message}", **base)


def missing_requirements(defn: CheckDef, ctx: Any) -> str | None:
    """Why ``defn`` cannot run with what was given, or None when it can."""
    roles = ctx.roles
    model = ctx.model
    reasons = []
    for need in defn.requires:
        if need == "model" and model is None:
            reasons.append("a model (the check calls it on perturbed or modified inputs)")
        elif need == "reference" and ctx.reference is None:
            reasons.append("reference data (the training data) to compare against")
        elif need == "sensitive" and not roles.sensitive:
            reasons.append("protected attribute columns")
        elif need == "score" and roles.score is None and not getattr(
                roles, "class_scores", None) and not (
                model is not None and getattr(model, "has_proba", False)):
            reasons.append("scores: a score column or a model with predict_proba")
        elif need == "prediction" and roles.prediction is None and roles.score is None \
                and model is None:
            reasons.append("predictions: a prediction column, a score column or a model")
        elif need == "target" and roles.target is None:
            reasons.append("the target column")
    if not reasons:
        return None
    return "not run: needs " + "; and ".join(reasons) + ", which were not given"


def _blocks(c: CheckResult, settings: Any) -> bool:
    if c.status is Status.FAIL:
        return True
    if c.status is Status.ERROR:
        return c.severity is Severity.BLOCK
    if c.status is Status.SKIP:
        return getattr(settings, "on_skip", "warn") == "block" and c.severity is Severity.BLOCK
    return False


def verdict(results: Iterable[CheckResult], settings: Any = None) -> str:
    """``blocked`` if any blocking finding, else ``passed_with_warnings`` if anything
    short of a clean pass (warning, skip, non-blocking error), else ``passed``."""
    results = list(results)
    if not results:
        return "passed_with_warnings"
    if any(_blocks(c, settings) for c in results):
        return "blocked"
    if any(c.status is not Status.PASS for c in results):
        return "passed_with_warnings"
    return "passed"


# --------------------------------------------------------------------------- inputs


def _model_adapter(model: Any, trust: bool = False) -> Any:
    if model is None:
        return None
    from assay.data import ModelAdapter, load_model

    if isinstance(model, ModelAdapter):
        return model
    if isinstance(model, str) and model.startswith("models:/"):  # MLflow's registry
        from assay.integrations.mlflow import load_model as load_registered

        return load_registered(model)
    if isinstance(model, str | os.PathLike):
        try:
            return load_model(model, trust=trust)
        except AssayError as exc:  # named as certify's keyword
            raise exc.rename({"trust_model_file": "trust_model_file=True"}) from None
    return ModelAdapter.from_estimator(model)


def _class_scores(value: Mapping[str, str] | str | None) -> dict[str, str] | None:
    """``class_scores`` as a mapping class -> column (``"A=p_A,B=p_B"`` from a command line)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        out: dict[str, str] = {}
        for part in (p.strip() for p in value.split(",") if p.strip()):
            cls, sep, col = part.partition("=")
            if not sep or not cls.strip() or not col.strip():
                raise InputError(f"{{class_scores}}: expected CLASS=COLUMN pairs separated by "
                                 f"commas (A=p_A,B=p_B), got {part!r}",
                                 fields={"class_scores": "class_scores"})
            out[cls.strip()] = col.strip()
        value = out
    if not isinstance(value, Mapping) or len(value) < 3:
        raise InputError("{class_scores}: expected one probability column for each of at least "
                         f"three classes, got {value!r}", fields={"class_scores": "class_scores"})
    return {str(k): str(v) for k, v in value.items()}


def _detect_multiclass(ds: Any, roles: Any) -> Any:
    """Roles with ``task='multiclass'`` when a classification target holds more than two
    classes (else ``roles`` itself); per-class score columns ask for multiclass too."""
    if roles.target is None or roles.task != "classification" or \
            roles.target not in ds.column_names:
        return roles
    import pyarrow.compute as pc

    values: set[Any] = set()
    for batch in ds.batches([roles.target]):
        values.update(v for v in pc.unique(batch.column(0)).to_pylist() if v is not None)
        if len(values) > 2:
            break
    if len(values) <= 2 and not roles.class_scores:
        return roles
    from dataclasses import replace

    return replace(roles, task="multiclass")


def _coerce_positive_label(ds: Any, roles: Any) -> Any:
    """Match ``positive_label`` to the target's values ("1" from a command line is 1)."""
    if roles.target is None or roles.task != "classification":
        return roles
    try:
        import pyarrow.compute as pc

        from assay.data.roles import match_label
    except ImportError:  # pragma: no cover
        return roles
    values: list[Any] = []
    for batch in ds.batches([roles.target]):
        values.extend(v for v in pc.unique(batch.column(0)).to_pylist() if v not in values)
        if len(values) > 2:
            break
    found = match_label(values, roles.positive_label)
    if found is None:
        raise InputError(
            f"{ds.name}: column '{roles.target}': expected the positive label "
            f"{roles.positive_label!r} among the target values, got "
            + ", ".join(repr(v) for v in values[:8]))
    if found == roles.positive_label and type(found) is type(roles.positive_label):
        return roles
    from dataclasses import replace

    return replace(roles, positive_label=found)


def _csv_options(csv: Any, na_values: str | Sequence[str] | None) -> Any:
    """The CSV options for ``certify``: ``csv`` with ``na_values`` added, or None."""
    if csv is None and na_values is None:
        return None
    from dataclasses import replace

    from assay.data import CsvOptions

    options = CsvOptions.coerce(csv)
    if na_values is not None:
        if isinstance(na_values, str):
            na_values = [v.strip() for v in na_values.split(",") if v.strip()]
        options = replace(options, na_values=(*(options.na_values or ()), *na_values))
    return options


def _leave_out_identifiers(ds: Any, roles: Any, adapter: Any, settings: Any,
                           notes: list[str]) -> Any:
    """Roles with the identifier-like columns (``assay.data.identifiers``) left out of the
    default features, and a note naming them. Columns named in ``features`` and the
    model's own inputs are kept."""
    if roles.features is not None:
        return roles
    from dataclasses import replace

    from assay.data.identifiers import identifier_columns

    candidates = [c for c in roles.feature_columns(ds.column_names) if c not in roles.sensitive]
    seed = getattr(getattr(settings, "bootstrap", None), "seed", 0) or 0
    found = identifier_columns(ds, candidates, seed=int(seed))
    if not found:
        return roles
    if adapter is not None:
        names = adapter.feature_names
        read = set(candidates) if names is None else set(names)
        kept = [c for c in found if c in read]
        if kept:
            notes.append(f"identifier-like column(s) kept as features because the model reads "
                         f"them: {', '.join(kept)}")
        found = {c: r for c, r in found.items() if c not in read}
        if not found:
            return roles
    listed = "; ".join(f"{c} ({r})" for c, r in found.items())
    notes.append(f"identifier-like column(s) left out of the features (so of the leakage, proxy, "
                 f"drift and other feature checks): {listed}. To keep one, name the features "
                 "yourself (--features / features=...)")
    return replace(roles, excluded=found)


def _check_model_inputs(adapter: Any, ds: Any, roles: Any) -> None:
    from assay.errors import ModelLoadError

    inputs = adapter.input_columns(roles.feature_columns(ds.column_names))
    missing = [c for c in inputs if c not in ds.column_names]
    if missing:
        raise ModelLoadError(f"{adapter.name}: the model expects column(s) "
                             f"{', '.join(missing)} which {ds.name} does not have")


#: A numeric protected attribute with more distinct values than this looks continuous
#: (an age, an income): certification notes that it should be binned.
CONTINUOUS_GROUPS = 20
_COUNT_GROUPS_UP_TO = 10_000


def _check_sensitive(ds: Any, roles: Any, min_group_size: int | None = None) -> list[str]:
    """Each protected attribute must split the rows into at least two groups.

    Returns notes for the certification: a numeric attribute with many
    distinct values (an age in years) makes every value its own group, most
    of them too small to judge; it should be binned into a few ranges.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    notes: list[str] = []
    for col in roles.sensitive:
        values: set[Any] = set()
        numeric = False
        for batch in ds.batches([col]):
            column = batch.column(0)
            numeric = (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                       or pa.types.is_decimal(column.type))
            values.update(v for v in pc.unique(column).to_pylist()
                          if v is not None and v == v and str(v).strip() != "")
            if len(values) > (_COUNT_GROUPS_UP_TO if numeric else 1):
                break
        if len(values) < 2:
            got = "only missing values" if not values else f"a single group {next(iter(values))!r}"
            raise InputError(f"{ds.name}: column '{col}': expected a protected attribute with at "
                             f"least two groups, got {got}")
        if numeric and len(values) > CONTINUOUS_GROUPS:
            size = f" (minimum group size {min_group_size})" if min_group_size else ""
            many = (f"more than {_COUNT_GROUPS_UP_TO}" if len(values) > _COUNT_GROUPS_UP_TO
                    else str(len(values)))
            notes.append(
                f"{ds.name}: column '{col}': protected attribute with {many} distinct numeric "
                f"values, which looks continuous: each value is compared as its own group, most "
                f"of them too small to judge{size}; bin it into a few ranges in a new column "
                f"(for example '{col}_band') and name that column as the protected attribute "
                "instead")
    return notes


def _check_reference(ds: Any, ref: Any, roles: Any) -> None:
    """The reference data must hold at least one of the evaluation data's features."""
    features = roles.feature_columns(ds.column_names)
    if features and not any(c in ref.column_names for c in features):
        raise InputError(f"{ref.name}: expected the feature columns of {ds.name} "
                         f"({', '.join(features[:6])}{', ...' if len(features) > 6 else ''}); "
                         "the reference data has none of them")


def _try_model(adapter: Any, ds: Any, roles: Any) -> None:
    """Call the model on the first rows, so a broken model is bad input, not a check error."""
    df = ds.to_pandas(limit=64)
    adapter.predict(df, rows=(0, len(df)))
    if roles.task == "classification" and adapter.has_proba:
        adapter.predict_proba(df, positive_label=roles.positive_label, rows=(0, len(df)))
    elif roles.task == "multiclass" and adapter.has_proba and not roles.class_scores:
        adapter.predict_proba_matrix(df, rows=(0, len(df)))


def _dataset_info(ds: Any) -> dict[str, Any]:
    path = getattr(ds, "path", None)
    info = {"name": ds.name, "path": str(path) if path else None, "sha256": ds.digest,
            "rows": int(ds.num_rows), "columns": len(ds.column_names)}
    csv = getattr(ds, "csv_options", None)
    if csv is not None:  # how the text was read is part of the evidence
        info["csv"] = {"delimiter": csv.delimiter, "na_values": list(csv.na_values or [])}
    return info


def _model_info(adapter: Any) -> dict[str, Any] | None:
    if adapter is None:
        return None
    path = getattr(adapter, "path", None)
    return {"path": str(path) if path else None, "name": adapter.name,
            "sha256": adapter.digest, "kind": adapter.kind}


def _roles_dict(roles: Any) -> dict[str, Any]:
    d = roles.to_dict() if hasattr(roles, "to_dict") else dict(vars(roles))
    return _json_safe(d)


# --------------------------------------------------------------------------- summaries


def _summary(ctx: CertificationContext, what: str, fn: Callable[[CertificationContext], Any],
             notes: list[str]) -> dict[str, Any] | None:
    try:
        return fn(ctx)
    except AssayError as exc:
        notes.append(f"{what} summary not computed: {exc}")
    except Exception as exc:  # the verdict stands on the checks; say what is missing
        notes.append(f"{what} summary not computed: {type(exc).__name__}: {exc}")
    return None


def _metrics_block(ctx: CertificationContext) -> dict[str, Any] | None:
    """The ``metrics`` block: the same statistic and bootstrap the metric checks read."""
    from assay.metrics import classification_summary, regression_summary

    if ctx.roles.target is None:
        return None
    with ctx.progress("Summarising metrics by group", None):
        if ctx.roles.task == "regression":
            return regression_summary(ctx)
        if ctx.roles.task == "multiclass":
            from assay.metrics.multiclass_context import multiclass_summary

            return multiclass_summary(ctx)
        return classification_summary(ctx)


def _drift_block(ctx: CertificationContext) -> dict[str, Any] | None:
    """The ``drift`` block: the drift checks' own summary (computed once, shared)."""
    from assay.checks.base import SkipCheck
    from assay.checks.drift import context_drift

    with ctx.progress("Summarising drift", None):
        try:
            return context_drift(ctx)
        except SkipCheck:
            return None


# --------------------------------------------------------------------------- schema


def results_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``results.json``, schema version ``1.0``.

    It fixes what consumers may rely on (the keys of ``docs/architecture.md``)
    and allows additional keys, so the document can grow without breaking
    them.
    """
    num = {"type": ["number", "null"]}
    ci = {"type": ["array", "null"], "items": num, "minItems": 2, "maxItems": 2}
    digest = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
    check_status = {"enum": ["pass", "warn", "fail", "skip", "error"]}
    dataset = {"type": "object", "required": ["name", "sha256", "rows"],
               "properties": {"name": {"type": "string"}, "sha256": digest,
                              "rows": {"type": "integer", "minimum": 0}}}
    measurement = {
        "type": "object",
        "required": ["label", "value", "ci", "n", "judged", "note", "status"],
        "properties": {"label": {"type": "string"}, "value": num, "ci": ci,
                       "n": {"type": ["integer", "null"]}, "judged": {"type": "boolean"},
                       "note": {"type": ["string", "null"]},
                       "status": {"oneOf": [check_status, {"type": "null"}]}},
    }
    check = {
        "type": "object",
        "required": ["id", "family", "title", "status", "severity", "judge_on", "threshold",
                     "value", "ci", "worst", "measurements", "message", "rationale",
                     "regulations", "details", "source"],
        "properties": {
            "id": {"type": "string", "pattern": r"^[a-z0-9_]+\.[a-z0-9_.]+$"},
            "family": {"type": "string"}, "title": {"type": "string"},
            "status": check_status, "severity": {"enum": ["block", "warn"]},
            "judge_on": {"enum": ["point", "interval"]},
            "threshold": {"type": ["object", "null"],
                          "properties": {"min": {"type": "number"}, "max": {"type": "number"}}},
            "value": num, "ci": ci, "worst": {"type": ["string", "null"]},
            "measurements": {"type": "array", "items": measurement},
            "message": {"type": "string"}, "rationale": {"type": "string"},
            "regulations": {"type": "array", "items": {"type": "string"}},
            "details": {"type": "object"}, "source": {"type": ["string", "null"]},
        },
    }
    counts = {k: {"type": "integer", "minimum": 0} for k in ("pass", "warn", "fail", "skip",
                                                              "error")}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://assay.invalid/schemas/results-1.0.json",
        "title": "assay certification results",
        "type": "object",
        "required": ["schema_version", "assay_version", "created_at", "status", "policy",
                     "model", "data", "roles", "settings", "environment", "summary", "checks",
                     "metrics"],
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "assay_version": {"type": "string"},
            "created_at": {"type": "string",
                           "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
            "status": {"enum": list(STATUSES)},
            "policy": {"type": "object",
                       "required": ["name", "version", "tier", "path", "sha256"],
                       "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                      "tier": {"type": "string"},
                                      "path": {"type": ["string", "null"]}, "sha256": digest}},
            "model": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["path", "sha256", "kind"],
                "properties": {"path": {"type": ["string", "null"]}, "sha256": digest,
                               "kind": {"type": "string"}}}]},
            "data": {"type": "object", "required": ["evaluation", "reference"],
                     "properties": {"evaluation": dataset,
                                    "reference": {"oneOf": [{"type": "null"}, dataset]}}},
            "roles": {"type": "object",
                      "required": ["target", "prediction", "score", "sensitive", "features",
                                   "weight", "positive_label", "task"],
                      "properties": {"sensitive": {"type": "array", "items": {"type": "string"}},
                                     "features": {"type": ["array", "null"]},
                                     "task": {"enum": ["classification", "multiclass",
                                                       "regression"]}}},
            "settings": {"type": "object", "required": ["min_group_size", "bootstrap"],
                         "properties": {
                             "min_group_size": {"type": "integer", "minimum": 1},
                             "bootstrap": {"type": "object",
                                           "required": ["replicates", "confidence", "seed"]}}},
            "environment": {"type": "object", "required": ["python", "platform", "packages"],
                            "properties": {"packages": {
                                "type": "object", "additionalProperties": {"type": "string"}}}},
            "summary": {"type": "object", "required": list(counts), "properties": counts},
            "checks": {"type": "array", "items": check},
            "metrics": {"type": ["object", "null"]},
            "drift": {"type": ["object", "null"]},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    }


# --------------------------------------------------------------------------- environment


def environment() -> dict[str, Any]:
    """Python, platform and the versions of the packages that computed the results."""
    packages: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "packages": packages}


def _json_safe(x: Any) -> Any:
    """Plain JSON values: NaN and infinities become None, numpy scalars Python numbers."""
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return x if x == x and x not in (float("inf"), float("-inf")) else None
    item = getattr(x, "item", None)
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):
        return _json_safe(x.tolist())
    return str(x)


__all__ = [
    "SCHEMA_VERSION",
    "Certification",
    "CertificationContext",
    "ProgressReporter",
    "ProgressTask",
    "certify",
    "environment",
    "missing_requirements",
    "results_schema",
    "run_one",
    "verdict",
]
