"""The ``incidents:`` section of a policy: severities, deadlines, escalation, playbooks.

A policy names its incident severities (most severe first), for each
severity how soon an incident must be acknowledged, mitigated and reported
(``acknowledge_within: 4h``), the reporting deadlines of a *serious
incident* in the EU AI Act Art. 73 sense, the chain of roles an overdue
step escalates to, from which severity a post-mortem is required to close
and from which severity closing needs a second person, and a playbook per
kind of incident (steps, who is informed, what evidence is attached). A
``tiers:`` entry overrides any of these for one risk tier::

    incidents:
      severities: [SEV1, SEV2, SEV3, SEV4]
      deadlines:
        SEV1: {acknowledge_within: 1h, mitigate_within: 1d, report_within: 2d}
      serious:
        general: {report_within: 15d, clause: "EU AI Act Art. 73(2)"}
      escalation: [validator, risk_officer, compliance]
      postmortem_required_from: SEV2
      close_requires_second_person_from: SEV1
      playbooks:
        drift:
          - title: Confirm the drift on the monitoring windows
            inform: [validator]
            evidence: [monitoring status export]
      tiers:
        high:
          deadlines: {SEV1: {acknowledge_within: 30m}}

A policy without the section gets :data:`DEFAULT_SECTION` (the same as the
shipped policies); a section that sets some keys keeps the defaults of the
others, except that a section naming its own ``severities`` sets its own
``deadlines`` (and, if it wants them, the two ``..._from`` thresholds).
The loader validates the section with the file and line of the entry
(:func:`incident_rules`); :mod:`assay.operate.incidents` applies it.
docs/incidents.md documents every key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assay.errors import PolicyError, did_you_mean
from assay.policy._yaml import format_path
from assay.policy.schema import NOTIFY_ROLES

#: Kinds of incident a playbook may be written for.
INCIDENT_KINDS = ("drift", "performance", "fairness", "security", "privacy", "outage", "other")
#: The cases of a serious incident with their own reporting deadline (EU AI Act Art. 73).
SERIOUS_CASES = ("general", "widespread_or_critical_infrastructure", "death")
#: The steps that have a deadline, in the order they are due.
STEPS = ("acknowledge", "mitigate", "report")

_CLAUSE = "EU AI Act Art. 73"
#: What a policy without an ``incidents:`` section gets (the shipped policies say the same).
DEFAULT_SECTION: dict[str, Any] = {
    "severities": ["SEV1", "SEV2", "SEV3", "SEV4"],
    "deadlines": {
        "SEV1": {"acknowledge_within": "1h", "mitigate_within": "1d", "report_within": "2d"},
        "SEV2": {"acknowledge_within": "4h", "mitigate_within": "3d", "report_within": "15d"},
        "SEV3": {"acknowledge_within": "1d", "mitigate_within": "14d"},
        "SEV4": {"acknowledge_within": "3d", "mitigate_within": "30d"},
    },
    "serious": {
        "general": {"report_within": "15d", "clause": f"{_CLAUSE}(2)"},
        "widespread_or_critical_infrastructure": {"report_within": "2d",
                                                  "clause": f"{_CLAUSE}(3)"},
        "death": {"report_within": "10d", "clause": f"{_CLAUSE}(4)"},
    },
    "escalation": ["validator", "risk_officer", "compliance", "admin"],
    "closers": ["risk_officer", "compliance", "admin"],
    "postmortem_required_from": "SEV2",
    "close_requires_second_person_from": "SEV1",
    "playbooks": {
        "drift": [
            {"title": "Confirm the drift on the monitoring windows and the features behind it",
             "inform": ["validator"], "evidence": ["monitoring status export"]},
            {"title": "Decide: retrain, recalibrate, roll back or accept with a waiver",
             "inform": ["risk_officer"], "evidence": ["decision record"]},
        ],
        "performance": [
            {"title": "Measure the drop on labelled production data",
             "inform": ["validator"], "evidence": ["performance report"]},
            {"title": "Mitigate (roll back, adjust the threshold or retrain)",
             "inform": ["risk_officer", "business_owner"], "evidence": ["change record"]},
        ],
        "fairness": [
            {"title": "Measure the gap per protected group with intervals",
             "inform": ["validator", "compliance"], "evidence": ["fairness report"]},
            {"title": "Assess who was affected and whether they must be told",
             "inform": ["compliance", "risk_officer"], "evidence": ["impact assessment"]},
            {"title": "Mitigate and re-certify", "inform": ["risk_officer"],
             "evidence": ["certification results"]},
        ],
        "security": [
            {"title": "Contain: revoke credentials, block the input path",
             "inform": ["security", "admin"], "evidence": ["containment record"]},
            {"title": "Investigate the attack and its reach", "inform": ["security"],
             "evidence": ["investigation report"]},
        ],
        "privacy": [
            {"title": "Establish which personal data was exposed and whose",
             "inform": ["compliance", "security"], "evidence": ["data exposure record"]},
            {"title": "Decide on notifications to the authority and the people affected",
             "inform": ["compliance"], "evidence": ["notification decision"]},
        ],
        "outage": [
            {"title": "Restore the service or fall back", "inform": ["business_owner"],
             "evidence": ["restoration record"]},
        ],
        "other": [
            {"title": "Assess the incident and decide the response",
             "inform": ["risk_officer"], "evidence": []},
        ],
    },
}

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: Any) -> timedelta:
    """``30m``, ``4h``, ``2d``, ``1w`` as a positive :class:`timedelta`; ValueError else."""
    m = _DURATION.match(str(value)) if isinstance(value, str) else None
    if m is None or int(m[1]) == 0:
        raise ValueError(f"expected a duration such as 30m, 4h, 2d or 1w, got {value!r}")
    return timedelta(**{_UNITS[m[2]]: int(m[1])})


def format_duration(d: timedelta) -> str:
    """The shortest ``2d`` / ``36h`` / ``90m`` that says ``d`` exactly."""
    minutes = int(d.total_seconds() // 60)
    for n, unit in ((10080, "w"), (1440, "d"), (60, "h")):
        if minutes % n == 0:
            return f"{minutes // n}{unit}"
    return f"{minutes}m"


# --------------------------------------------------------------------------- the YAML


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _DeadlinesModel(_Strict):
    acknowledge_within: str | None = None
    mitigate_within: str | None = None
    report_within: str | None = None

    @field_validator("acknowledge_within", "mitigate_within", "report_within")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v


class _SeriousModel(_Strict):
    report_within: str
    clause: str = Field(min_length=1)

    @field_validator("report_within")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class _StepModel(_Strict):
    title: str = Field(min_length=1, max_length=500)
    inform: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)

    @field_validator("inform", "evidence", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v


class _RulesModel(_Strict):
    deadlines: dict[str, _DeadlinesModel] | None = None
    escalation: list[str] | None = None
    closers: list[str] | None = None
    postmortem_required_from: str | None = None
    close_requires_second_person_from: str | None = None
    playbooks: dict[str, list[_StepModel]] | None = None


class _SectionModel(_RulesModel):
    severities: list[str] = Field(min_length=1)
    serious: dict[str, _SeriousModel] = Field(default_factory=dict)
    tiers: dict[str, _RulesModel] = Field(default_factory=dict)


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Deadlines:
    """How long after awareness each step may take (``None``: no deadline)."""

    acknowledge: timedelta | None = None
    mitigate: timedelta | None = None
    report: timedelta | None = None

    def of(self, step: str) -> timedelta | None:
        return getattr(self, step)


@dataclass(frozen=True)
class SeriousCase:
    """The reporting deadline of one case of a serious incident, and the clause it is from."""

    case: str
    report_within: timedelta
    clause: str


@dataclass(frozen=True)
class PlaybookStep:
    title: str
    inform: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "inform": list(self.inform),
                "evidence": list(self.evidence)}


@dataclass(frozen=True)
class IncidentRules:
    """The incident rules of one tier (the policy's, with the tier's overrides applied)."""

    severities: tuple[str, ...]
    deadlines: dict[str, Deadlines]
    serious: dict[str, SeriousCase]
    escalation: tuple[str, ...]
    closers: tuple[str, ...]
    postmortem_required_from: str | None
    close_requires_second_person_from: str | None
    playbooks: dict[str, tuple[PlaybookStep, ...]] = field(default_factory=dict)
    tier: str | None = None

    def rank(self, severity: str) -> int:
        """0 for the most severe level."""
        return self.severities.index(severity)

    def _from(self, severity: str, threshold: str | None) -> bool:
        return threshold is not None and self.rank(severity) <= self.rank(threshold)

    def postmortem_required(self, severity: str) -> bool:
        return self._from(severity, self.postmortem_required_from)

    def second_person_required(self, severity: str) -> bool:
        return self._from(severity, self.close_requires_second_person_from)

    def playbook(self, kind: str) -> tuple[PlaybookStep, ...]:
        return self.playbooks.get(kind, ())


@dataclass(frozen=True)
class IncidentPolicy:
    """The validated section: the policy-level rules and each tier's."""

    base: IncidentRules
    tiers: dict[str, IncidentRules]

    def for_tier(self, tier: str | None) -> IncidentRules:
        return self.tiers.get(tier, self.base) if tier else self.base


# --------------------------------------------------------------------------- validation

_CACHE: dict[tuple[str, str], IncidentPolicy] = {}


class PolicyLike(Protocol):
    """What :func:`incident_rules` reads of a :class:`assay.policy.Policy`."""

    sha256: str
    source: str
    extra_sections: dict[str, Any]
    tiers: dict[str, Any]

    def where(self, *path: str | int) -> str: ...


def incident_rules(policy: PolicyLike) -> IncidentPolicy:
    """The policy's ``incidents:`` section, validated (cached per file digest).

    Raises :class:`PolicyError` naming the file, line and field path."""
    key = (policy.sha256, policy.source)
    cached = _CACHE.get(key)
    if cached is None:
        cached = build(policy.extra_sections.get("incidents"), policy.where,
                       list(policy.tiers), present="incidents" in policy.extra_sections)
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = cached
    return cached


def build(section: Any, where: Any, tiers: list[str], *, present: bool = True
          ) -> IncidentPolicy:
    """Validate a raw ``incidents`` section (``None`` and absent: the defaults)."""
    root: tuple[str | int, ...] = ("incidents",)

    def fail(loc: tuple[str | int, ...], msg: str) -> PolicyError:
        return PolicyError(f"{where(*loc)}: {format_path(loc)}: {msg}")

    if section is None and present:
        raise fail(root, "expected a mapping (severities, deadlines, escalation, playbooks...), "
                         "got nothing")
    if section is not None and not isinstance(section, dict):
        raise fail(root, f"expected a mapping (severities, deadlines, escalation, playbooks...),"
                         f" got {type(section).__name__}")
    given = {str(k): v for k, v in (section or {}).items()}
    defaults = dict(DEFAULT_SECTION)
    if "severities" in given:  # the defaults name SEV1...: a policy with its own levels
        for key in ("deadlines", "postmortem_required_from",  # sets these itself
                    "close_requires_second_person_from"):
            defaults.pop(key)
    data = {**{k: v for k, v in defaults.items() if k not in given}, **given}
    try:
        model = _SectionModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = (*root, *err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            names = sorted(set(_SectionModel.model_fields) | set(_StepModel.model_fields)
                           | set(_DeadlinesModel.model_fields))
            msg = (f"unknown field '{err['loc'][-1]}'"
                   + did_you_mean(str(err["loc"][-1]), names))
        elif err["type"] == "missing":
            msg = "this field is required"
        raise fail(loc, msg) from None

    sevs = model.severities
    dupes = sorted({s for s in sevs if sevs.count(s) > 1})
    if dupes:
        raise fail((*root, "severities"), f"severity '{dupes[0]}' is listed twice")
    for case in model.serious:
        if case not in SERIOUS_CASES:
            raise fail((*root, "serious", case), f"unknown case '{case}' (expected one of "
                       + ", ".join(SERIOUS_CASES) + ")" + did_you_mean(case, SERIOUS_CASES))
    serious = {c: SeriousCase(c, parse_duration(s.report_within), s.clause)
               for c, s in model.serious.items()}

    def rules(m: _RulesModel, loc: tuple[str | int, ...], base: IncidentRules | None,
              tier: str | None) -> IncidentRules:
        deadlines = dict(base.deadlines) if base else {}
        for sev, d in (m.deadlines or {}).items():
            if sev not in sevs:
                raise fail((*loc, "deadlines", sev), f"unknown severity '{sev}' (the "
                           "severities are " + ", ".join(sevs) + ")" + did_you_mean(sev, sevs))
            old = deadlines.get(sev, Deadlines())
            deadlines[sev] = Deadlines(*(parse_duration(v) if v is not None else old.of(step)
                                         for step, v in zip(STEPS, (
                                             d.acknowledge_within, d.mitigate_within,
                                             d.report_within), strict=True)))
        if base is None:
            for sev in sevs:
                d = deadlines.get(sev)
                if d is None or d.acknowledge is None or d.mitigate is None:
                    raise fail((*loc, "deadlines"), f"severity '{sev}' needs "
                               "acknowledge_within and mitigate_within")
        for name in ("escalation", "closers"):
            roles = getattr(m, name)
            for i, role in enumerate(roles or []):
                if role not in NOTIFY_ROLES:
                    raise fail((*loc, name, i), f"unknown role '{role}' (expected one of "
                               + ", ".join(NOTIFY_ROLES) + ")" + did_you_mean(role, NOTIFY_ROLES))
            if roles is not None and not roles:
                raise fail((*loc, name), "name at least one role")
        if m.closers and "auditor" in m.closers:
            raise fail((*loc, "closers"), "the auditor is read-only and may not close incidents")
        for name in ("postmortem_required_from", "close_requires_second_person_from"):
            sev = getattr(m, name)
            if sev is not None and sev not in sevs:
                raise fail((*loc, name), f"unknown severity '{sev}' (the severities are "
                           + ", ".join(sevs) + ")" + did_you_mean(sev, sevs))
        playbooks = dict(base.playbooks) if base else {}
        for kind, steps in (m.playbooks or {}).items():
            if kind not in INCIDENT_KINDS:
                raise fail((*loc, "playbooks", kind), f"unknown incident kind '{kind}' "
                           "(expected one of " + ", ".join(INCIDENT_KINDS) + ")"
                           + did_you_mean(kind, INCIDENT_KINDS))
            for i, step in enumerate(steps):
                for j, role in enumerate(step.inform):
                    if role not in NOTIFY_ROLES:
                        raise fail((*loc, "playbooks", kind, i, "inform", j),
                                   f"unknown role '{role}' (expected one of "
                                   + ", ".join(NOTIFY_ROLES) + ")"
                                   + did_you_mean(role, NOTIFY_ROLES))
            playbooks[kind] = tuple(PlaybookStep(s.title, tuple(dict.fromkeys(s.inform)),
                                                 tuple(s.evidence)) for s in steps)

        def pick(name: str) -> Any:
            value = getattr(m, name)
            if value is None and base is not None:
                return getattr(base, name)
            return tuple(value) if isinstance(value, list) else value

        return IncidentRules(
            severities=tuple(sevs), deadlines=deadlines, serious=serious,
            escalation=pick("escalation") or (), closers=pick("closers") or (),
            postmortem_required_from=pick("postmortem_required_from"),
            close_requires_second_person_from=pick("close_requires_second_person_from"),
            playbooks=playbooks, tier=tier)

    base = rules(model, root, None, None)
    per_tier: dict[str, IncidentRules] = {}
    for tname, override in model.tiers.items():
        if tname not in tiers:
            raise fail((*root, "tiers", tname), f"unknown tier '{tname}' (the policy's tiers "
                       "are " + ", ".join(tiers) + ")" + did_you_mean(tname, tiers))
        per_tier[tname] = rules(override, (*root, "tiers", tname), base, tname)
    for tname in tiers:
        per_tier.setdefault(tname, IncidentRules(**{**base.__dict__, "tier": tname}))
    return IncidentPolicy(base=base, tiers=per_tier)


__all__ = ["DEFAULT_SECTION", "INCIDENT_KINDS", "SERIOUS_CASES", "STEPS", "Deadlines",
           "IncidentPolicy", "IncidentRules", "PlaybookStep", "SeriousCase", "build",
           "format_duration", "incident_rules", "parse_duration"]
