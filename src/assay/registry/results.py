"""Check a ``results.json`` against the policy it names before it is recorded.

The results are evidence only if they say what the policy would say about
the measurements they hold. :func:`verify_results` recomputes, from the
policy as the store knows it (:func:`assay.registry.policies.known_policy`):

* that every check of the tier is present, in the policy's order, and no other;
* the policy-wide settings (minimum group size, bootstrap, ``on_skip``...);
* each check's severity, judging (point or interval) and threshold: the policy's;
* each judged measurement's status, from its value (and interval) and the threshold;
* each check's status, from its measurements and severity (a check with no
  judged measurement is a skip or an error, never a pass);
* the summary counts, from the checks;
* the verdict, from the checks and the policy's settings, with the same
  function that ``assay certify`` uses.

The first inconsistency is refused with an :class:`InputError` naming it,
e.g. ``results.json checks[3] fairness.demographic_parity_ratio: status
'pass' but its measurements, judged against the threshold >= 0.8, give
'fail'``. What cannot be recomputed without the data is a measured value
itself: the model, data and results digests identify those, and
``POST .../certifications/run`` re-runs a certification on stored data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from assay.certification import verdict
from assay.checks.base import (
    CheckResult,
    JudgeOn,
    Measurement,
    Severity,
    Status,
    check_status,
    judge,
)
from assay.errors import InputError
from assay.policy import Policy

__all__ = ["verify_results"]

_WHERE = "results.json"


def verify_results(results: Mapping[str, Any], policy: Policy, tier: str) -> str:
    """The verdict that ``results`` carry, once checked against ``policy``'s ``tier``.

    Raises :class:`InputError` naming the first field that is not what the
    policy and the results' own measurements give.
    """
    tier_obj = policy.tier(tier)
    checks = results.get("checks")
    if not isinstance(checks, list):
        raise InputError(f"{_WHERE} checks: expected a list of check results, got "
                         f"{_kind(checks)}")
    specs = tier_obj.checks
    ids = [c.get("id") if isinstance(c, Mapping) else None for c in checks]
    judged: list[CheckResult] = []
    for i in range(max(len(specs), len(checks))):
        spec = specs[i] if i < len(specs) else None
        if spec is not None and (i >= len(checks) or ids[i] != spec.id):
            if spec.id not in ids[i:]:
                raise InputError(
                    f"{_WHERE} checks: check '{spec.id}' of policy '{policy.name}' tier "
                    f"'{tier_obj.name}' ({spec.source}) is missing; every check of the tier "
                    "must be present")
            raise InputError(f"{_WHERE} checks[{i}]: expected check '{spec.id}' (the policy's "
                             f"order, {spec.source}), got '{ids[i]}'")
        if spec is None:
            raise InputError(f"{_WHERE} checks[{i}] {ids[i]}: not a check of policy "
                             f"'{policy.name}' tier '{tier_obj.name}'")
        judged.append(_verify_check(i, checks[i], spec))
    settings = results.get("settings")
    expected_settings = policy.settings.model_dump(mode="json")
    if settings != expected_settings:
        raise InputError(f"{_WHERE} settings: expected the settings of policy '{policy.name}' "
                         f"version {policy.version} ({_short(expected_settings)}), got "
                         f"{_short(settings)}")
    _verify_summary(results.get("summary"), judged)
    status = verdict(judged, policy.settings)
    claimed = results.get("status")
    if claimed != status:
        # the first check that gives that verdict on its own, by the same rule
        first = next((f"checks[{i}] {c.id} is {c.status}" for i, c in enumerate(judged)
                      if c.status is not Status.PASS
                      and verdict([c], policy.settings) == status), "every check passed")
        raise InputError(f"{_WHERE} status '{claimed}' but its checks give '{status}' under "
                         f"policy '{policy.name}' tier '{tier_obj.name}' ({first})")
    return status


def _verify_check(i: int, c: Any, spec: Any) -> CheckResult:
    where = f"{_WHERE} checks[{i}] {spec.id}"
    if not isinstance(c, Mapping):
        raise InputError(f"{where}: expected an object, got {_kind(c)}")
    status = _enum(where, "status", c.get("status"), Status)
    severity = _enum(where, "severity", c.get("severity"), Severity)
    judge_on = _enum(where, "judge_on", c.get("judge_on"), JudgeOn)
    if severity is not spec.severity:
        raise InputError(f"{where}: severity '{severity}' but the policy states "
                         f"'{spec.severity}' ({spec.source})")
    if judge_on is not spec.judge_on:
        raise InputError(f"{where}: judge_on '{judge_on}' but the policy states "
                         f"'{spec.judge_on}' ({spec.source})")
    expected = spec.threshold.to_dict() if spec.threshold else None
    if c.get("threshold") != expected:
        said = spec.threshold.describe() if spec.threshold else "no threshold"
        raise InputError(f"{where}: threshold {_short(c.get('threshold'))} but the policy "
                         f"states {said} ({spec.source})")
    measurements = c.get("measurements", [])
    if not isinstance(measurements, list):
        raise InputError(f"{where} measurements: expected a list, got {_kind(measurements)}")
    statuses: list[Status | None] = []
    for j, m in enumerate(measurements):
        statuses.append(_verify_measurement(f"{where} measurements[{j}]", m, spec))
    if status is Status.ERROR:
        if any(s is not None for s in statuses):
            raise InputError(f"{where}: status 'error' but it holds judged measurements; a "
                             "check that could not be computed has none")
    else:
        computed = check_status(statuses, spec.severity)
        if computed is not status:
            bound = spec.threshold.describe() if spec.threshold else "no threshold"
            raise InputError(f"{where}: status '{status}' but its measurements, judged against "
                             f"the threshold {bound} with severity '{spec.severity}', give "
                             f"'{computed}'")
    family = str(c.get("family") or spec.id.split(".", 1)[0])
    return CheckResult(id=spec.id, family=family, title=str(c.get("title") or spec.id),
                       status=status, severity=severity, judge_on=judge_on,
                       threshold=spec.threshold)


def _verify_measurement(where: str, m: Any, spec: Any) -> Status | None:
    if not isinstance(m, Mapping):
        raise InputError(f"{where}: expected an object, got {_kind(m)}")
    stated = m.get("status")
    if m.get("judged", True) is False:
        if stated is not None:
            raise InputError(f"{where} ({m.get('label')}): status '{stated}' but it is not "
                             "judged (judged: false)")
        return None
    value = _number(where, "value", m.get("value"))
    ci = m.get("ci")
    interval: tuple[float, float] | None = None
    if ci is not None:
        if not isinstance(ci, list) or len(ci) != 2:
            raise InputError(f"{where} ci: expected [low, high] or null, got {_short(ci)}")
        lo, hi = (_number(where, "ci", x) for x in ci)
        interval = (math.nan if lo is None else lo, math.nan if hi is None else hi)
    computed = judge(Measurement(label=str(m.get("label")), value=value, ci=interval),
                     spec.threshold, spec.judge_on)
    if stated != str(computed):
        bound = spec.threshold.describe() if spec.threshold else "no threshold"
        raise InputError(f"{where} ({m.get('label')}): status {_short(stated)} but value "
                         f"{_short(value)}{_ci(interval)} judged ({spec.judge_on}) against "
                         f"{bound} gives '{computed}'")
    return computed


def _verify_summary(summary: Any, checks: list[CheckResult]) -> None:
    counts = {s.value: 0 for s in Status}
    for c in checks:
        counts[c.status.value] += 1
    if not isinstance(summary, Mapping):
        raise InputError(f"{_WHERE} summary: expected the counts of check statuses "
                         f"{_short(counts)}, got {_kind(summary)}")
    for key, n in counts.items():
        if summary.get(key) != n:
            raise InputError(f"{_WHERE} summary.{key}: {_short(summary.get(key))} but the "
                             f"checks hold {n} with status '{key}'")


def _enum(where: str, field: str, value: Any, kind: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(f"'{k.value}'" for k in kind)
        raise InputError(f"{where}: {field} {_short(value)}: expected one of {choices}") \
            from None


def _number(where: str, field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where} {field}: expected a number or null, got {_short(value)}")
    return float(value)


def _ci(interval: tuple[float, float] | None) -> str:
    return f" (CI {interval[0]:.4g} to {interval[1]:.4g})" if interval else ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _short(value: Any, limit: int = 120) -> str:
    import json

    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
