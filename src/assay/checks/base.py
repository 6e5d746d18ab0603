"""The check framework: what a check is, how it is judged, how it is registered.

A *check* is a function registered under a dotted id (``family.name``). The
policy names checks by id and gives each a threshold, a severity and whether
the point estimate or the confidence interval is judged. A check function
computes one or more :class:`Measurement` (overall, per group, per feature)
and the framework judges them, so every family is judged the same way.

    @check("fairness.demographic_parity_ratio", family="fairness",
           requires=("sensitive",), title="Demographic parity ratio")
    def demographic_parity_ratio(ctx: CheckContext, spec: CheckSpec) -> list[Measurement]:
        ...

A check that cannot run because something was not given (no model, no
reference data, no score column) raises :class:`SkipCheck` with the reason;
it is never silently passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from assay.errors import PolicyError


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class Severity(StrEnum):
    BLOCK = "block"
    WARN = "warn"


class JudgeOn(StrEnum):
    POINT = "point"
    INTERVAL = "interval"


@dataclass(frozen=True)
class Threshold:
    """Acceptable range: a measurement passes when ``min <= value <= max``."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.min is None and self.max is None:
            raise PolicyError("a threshold needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PolicyError(f"threshold min {self.min} is greater than max {self.max}")

    def contains(self, x: float) -> bool:
        return (self.min is None or x >= self.min) and (self.max is None or x <= self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"between {self.min:g} and {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        return f"<= {self.max:g}"

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}


@dataclass
class CheckSpec:
    """One entry of a policy tier, as the check function receives it."""

    id: str
    threshold: Threshold | None = None
    severity: Severity = Severity.BLOCK
    judge_on: JudgeOn = JudgeOn.POINT
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    rationale: str = ""
    regulations: list[str] = field(default_factory=list)
    source: str | None = None  # "policy.yaml:42" for messages


@dataclass
class Measurement:
    """One measured quantity that a check judges.

    ``judged=False`` marks a value that is reported but not judged, for
    example a group smaller than the policy's minimum group size; ``note``
    says why.
    """

    label: str
    value: float | None
    ci: tuple[float, float] | None = None
    n: int | None = None
    judged: bool = True
    note: str | None = None
    status: Status | None = None  # filled in by judge()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": _num(self.value),
            "ci": [_num(self.ci[0]), _num(self.ci[1])] if self.ci else None,
            "n": self.n,
            "judged": self.judged,
            "note": self.note,
            "status": str(self.status) if self.status else None,
        }


def _margin(m: Measurement, threshold: Threshold | None) -> float:
    """How far ``m`` lies inside ``threshold`` (negative when outside)."""
    if threshold is None or m.value is None or math.isnan(m.value):
        return math.inf
    margins = []
    if threshold.min is not None:
        margins.append(m.value - threshold.min)
    if threshold.max is not None:
        margins.append(threshold.max - m.value)
    return min(margins)


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


class SkipCheck(Exception):
    """Raised by a check that cannot run; the message is the reason shown."""


@dataclass
class CheckResult:
    id: str
    family: str
    title: str
    status: Status
    severity: Severity
    judge_on: JudgeOn
    threshold: Threshold | None
    measurements: list[Measurement] = field(default_factory=list)
    message: str = ""
    rationale: str = ""
    regulations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def worst(self) -> Measurement | None:
        judged = [m for m in self.measurements if m.judged and m.status is not None]
        if not judged:
            return None
        order = {Status.FAIL: 0, Status.WARN: 1, Status.PASS: 2}
        # Among measurements with the same status, the one with the least margin to the
        # threshold (or the furthest beyond it) is the worst.
        return min(judged, key=lambda m: (order.get(m.status, 3),  # type: ignore[arg-type]
                                          _margin(m, self.threshold)))

    @property
    def blocking(self) -> bool:
        return self.status is Status.FAIL and self.severity is Severity.BLOCK

    def to_dict(self) -> dict[str, Any]:
        w = self.worst
        return {
            "id": self.id,
            "family": self.family,
            "title": self.title,
            "status": str(self.status),
            "severity": str(self.severity),
            "judge_on": str(self.judge_on),
            "threshold": self.threshold.to_dict() if self.threshold else None,
            "value": _num(w.value) if w else None,
            "ci": [_num(w.ci[0]), _num(w.ci[1])] if (w and w.ci) else None,
            "worst": w.label if w else None,
            "measurements": [m.to_dict() for m in self.measurements],
            "message": self.message,
            "rationale": self.rationale,
            "regulations": list(self.regulations),
            "details": self.details,
            "source": self.source,
        }


def judge(m: Measurement, threshold: Threshold | None, judge_on: JudgeOn) -> Status:
    """Judge one measurement.

    * point: the value outside the threshold fails.
    * interval: fails only if the whole confidence interval lies outside the
      threshold, warns if the interval straddles a bound, passes if it lies
      inside. Without an interval the point estimate is judged.
    """
    if threshold is None or m.value is None or (isinstance(m.value, float) and math.isnan(m.value)):
        return Status.PASS if threshold is None else Status.WARN
    if judge_on is JudgeOn.INTERVAL and m.ci is not None:
        lo, hi = m.ci
        inside_lo, inside_hi = threshold.contains(lo), threshold.contains(hi)
        if inside_lo and inside_hi:
            return Status.PASS
        below = threshold.min is not None and hi < threshold.min
        above = threshold.max is not None and lo > threshold.max
        return Status.FAIL if (below or above) else Status.WARN
    return Status.PASS if threshold.contains(m.value) else Status.FAIL


class CheckContext(Protocol):
    """What a check function may use. Built once per certification.

    ``cached(key, fn)`` computes ``fn()`` once per certification and shares
    it between checks (one pass over the data for all metric checks).
    """

    evaluation: Any  # assay.data.Dataset
    reference: Any | None  # assay.data.Dataset
    model: Any | None  # assay.data.ModelAdapter
    roles: Any  # assay.data.ColumnRoles
    settings: Any  # assay.policy.Settings (min_group_size, bootstrap...)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any: ...

    def progress(self, description: str, total: int | None = None) -> Any: ...


CheckFn = Callable[[CheckContext, CheckSpec], "list[Measurement] | CheckOutput"]


@dataclass
class CheckOutput:
    """A check may return this instead of a bare list to add a message or details."""

    measurements: list[Measurement]
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckDef:
    id: str
    family: str
    title: str
    fn: CheckFn
    # any of: "model", "reference", "score", "sensitive", "prediction"
    requires: tuple[str, ...] = ()
    params: tuple[str, ...] = ()  # accepted parameter names (others are a policy error)
    description: str = ""
    #: called once before any check of the certification runs (only when the check's
    #: requirements are met), to start slow work early: a subprocess, a warm-up. It must
    #: not judge anything; its failures are ignored (the check reports its own errors)
    prepare: Callable[[CheckContext, CheckSpec], None] | None = None


REGISTRY: dict[str, CheckDef] = {}


def check(
    id: str,
    *,
    family: str,
    title: str,
    requires: Iterable[str] = (),
    params: Iterable[str] = (),
    description: str = "",
    prepare: Callable[[CheckContext, CheckSpec], None] | None = None,
) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under ``id`` (``prepare``: see :attr:`CheckDef.prepare`)."""

    def deco(fn: CheckFn) -> CheckFn:
        if id in REGISTRY:
            raise RuntimeError(f"check {id!r} registered twice")
        REGISTRY[id] = CheckDef(
            id=id,
            family=family,
            title=title,
            fn=fn,
            requires=tuple(requires),
            params=tuple(params),
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            prepare=prepare,
        )
        return fn

    return deco


def check_status(statuses: Iterable[Status | None], severity: Severity) -> Status:
    """A check's status from the statuses of its judged measurements (``None``: not judged).

    Nothing judged is a skip; a failed measurement fails the check when its
    severity is ``block`` and warns otherwise; a warning warns; else it passes.
    """
    judged = [s for s in statuses if s is not None]
    if not judged:
        return Status.SKIP
    if Status.FAIL in judged:
        return Status.FAIL if severity is Severity.BLOCK else Status.WARN
    if Status.WARN in judged:
        return Status.WARN
    return Status.PASS


def run_check(defn: CheckDef, ctx: CheckContext, spec: CheckSpec) -> CheckResult:
    """Run one check and judge it. Never raises for a check's own failure."""
    base = dict(
        id=spec.id,
        family=defn.family,
        title=spec.name or defn.title,
        severity=spec.severity,
        judge_on=spec.judge_on,
        threshold=spec.threshold,
        rationale=spec.rationale,
        regulations=list(spec.regulations),
        source=spec.source,
    )
    try:
        out = defn.fn(ctx, spec)
    except SkipCheck as skip:
        return CheckResult(status=Status.SKIP, message=str(skip), **base)
    if isinstance(out, list):
        out = CheckOutput(measurements=out)
    for m in out.measurements:
        m.status = judge(m, spec.threshold, spec.judge_on) if m.judged else None
    status = check_status([m.status for m in out.measurements], spec.severity)
    message = out.message
    if status is Status.SKIP and not message:
        message = "nothing could be judged (every group below the minimum size?)"
    result = CheckResult(status=status, measurements=out.measurements, message=message,
                         details=out.details, **base)
    if not result.message:
        result.message = _default_message(result)
    return result


def _default_message(r: CheckResult) -> str:
    w = r.worst
    if w is None or r.threshold is None:
        return ""
    ci = f" (CI {w.ci[0]:.4g} to {w.ci[1]:.4g})" if w.ci else ""
    return f"{w.label}: {w.value:.4g}{ci}, required {r.threshold.describe()}"


# --------------------------------------------------------------------------- parameters
# Helpers for check functions that read their ``params``: a bad value is a
# PolicyError naming the check and the policy line it came from.


def where(spec: CheckSpec) -> str:
    """``check.id (policy.yaml:LINE)`` for error messages."""
    return spec.id + (f" ({spec.source})" if spec.source else "")


def int_param(spec: CheckSpec, name: str, default: int, low: int = 1) -> int:
    """An integer parameter >= ``low``; ``default`` when absent or null."""
    v = spec.params.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise PolicyError(f"{where(spec)}: parameter '{name}': expected an integer >= {low}, "
                          f"got {v!r}")
    return v


def seed_param(ctx: CheckContext, spec: CheckSpec) -> int:
    """The check's ``seed`` parameter, else the policy's bootstrap seed."""
    if "seed" in spec.params:
        return int_param(spec, "seed", 0, low=0)
    boot = getattr(ctx.settings, "bootstrap", None)
    return int(getattr(boot, "seed", 0) or 0)
