"""The algorithmic impact questionnaire: questions, weights, answers and impact level.

A questionnaire is a YAML file (the shipped one is
``assay/risk/questionnaires/aia-default.yaml``; any file of the same shape
replaces it)::

    name: aia-default
    version: "1"
    cutoffs: {II: 0.25, III: 0.50, IV: 0.75}     # share of the maximum impact score
    mitigation: {threshold: 0.80, reduction: 0.15}
    questions:
      - id: decision_automation
        section: impact            # impact | mitigation
        text: How is the decision made?
        weight: 2
        multiple: false            # true: several options may be chosen, their points add up
        options:
          - {value: human_decides, label: A person decides using the output, points: 1}
          - {value: fully_automated, label: No person reviews the decision, points: 4}

Scoring (``docs/risk.md`` has a worked example):

* a question's points = weight x points of the chosen option (the sum of the
  chosen options for a ``multiple`` question); its maximum is weight x the
  highest option (the sum of the positive options for ``multiple``);
* raw impact = the sum over impact questions; mitigation likewise;
* if the mitigation share (mitigation / maximum mitigation) reaches
  ``mitigation.threshold``, the impact score is reduced by
  ``mitigation.reduction`` (a share, 0.15 = 15%);
* the impact share = impact score / maximum raw impact; the level is the
  highest level whose cut-off the share reaches (level I below every cut-off).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assay.errors import InputError, PolicyError
from assay.risk.config import IMPACT_LEVELS

SHIPPED_DIR = Path(__file__).resolve().parent / "questionnaires"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    value: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    label: str
    points: float = Field(ge=0)


class Question(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    section: Literal["impact", "mitigation"] = "impact"
    text: str
    help: str = ""
    weight: float = Field(default=1.0, gt=0)
    multiple: bool = False
    options: list[Option] = Field(min_length=2)

    @field_validator("options")
    @classmethod
    def _unique(cls, v: list[Option]) -> list[Option]:
        values = [o.value for o in v]
        dupes = sorted({x for x in values if values.count(x) > 1})
        if dupes:
            raise ValueError("option value(s) listed twice: " + ", ".join(dupes))
        return v

    @property
    def max_points(self) -> float:
        if self.multiple:
            return self.weight * sum(o.points for o in self.options)
        return self.weight * max(o.points for o in self.options)

    def option(self, value: str) -> Option | None:
        for o in self.options:
            if o.value == value:
                return o
        return None


class MitigationRule(_Strict):
    threshold: float = Field(default=0.80, ge=0, le=1)
    reduction: float = Field(default=0.15, ge=0, le=1)


class Questionnaire(_Strict):
    """A validated questionnaire; ``digest`` is the SHA-256 of its file."""

    name: str
    version: str = "1"
    title: str = ""
    cutoffs: dict[str, float] = Field(default_factory=lambda: {"II": 0.25, "III": 0.50, "IV": 0.75})
    mitigation: MitigationRule = Field(default_factory=MitigationRule)
    questions: list[Question] = Field(min_length=1)
    digest: str = ""
    source: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @field_validator("cutoffs")
    @classmethod
    def _cutoffs(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"II", "III", "IV"}:
            raise ValueError("expected cut-offs for exactly the levels II, III and IV")
        if not 0 < v["II"] < v["III"] < v["IV"] <= 1:
            raise ValueError("expected 0 < II < III < IV <= 1 (shares of the maximum score)")
        return v

    @model_validator(mode="after")
    def _check(self) -> Questionnaire:
        ids = [q.id for q in self.questions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError("question id(s) listed twice: " + ", ".join(dupes))
        if self.max_impact <= 0:
            raise ValueError("the impact questions can score no points; give some options points")
        return self

    def section(self, name: str) -> list[Question]:
        return [q for q in self.questions if q.section == name]

    @property
    def max_impact(self) -> float:
        return sum(q.max_points for q in self.section("impact"))

    @property
    def max_mitigation(self) -> float:
        return sum(q.max_points for q in self.section("mitigation"))

    def level_for(self, share: float) -> str:
        level = "I"
        for name in IMPACT_LEVELS[1:]:
            if share >= self.cutoffs[name] - 1e-12:
                level = name
        return level


@dataclass(frozen=True)
class ImpactResult:
    """The scored questionnaire: what was answered, the scores and the level."""

    questionnaire: str
    version: str
    digest: str
    answers: dict[str, Any]
    raw_impact: float
    max_impact: float
    mitigation: float
    max_mitigation: float
    mitigation_applied: bool
    impact_score: float
    share: float
    level: str
    points: dict[str, float] = field(default_factory=dict)
    source: str = ""  # the questionnaire file; not part of the stored result

    def to_dict(self) -> dict[str, Any]:
        return {
            "questionnaire": self.questionnaire,
            "version": self.version,
            "digest": self.digest,
            "answers": dict(self.answers),
            "points": dict(self.points),
            "raw_impact": self.raw_impact,
            "max_impact": self.max_impact,
            "mitigation": self.mitigation,
            "max_mitigation": self.max_mitigation,
            "mitigation_applied": self.mitigation_applied,
            "impact_score": self.impact_score,
            "share": self.share,
            "level": self.level,
        }


def _parse(doc: Any, *, source: str, digest: str) -> Questionnaire:
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level of the questionnaire")
    try:
        return Questionnaire.model_validate({**doc, "digest": digest, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        raise PolicyError(f"{source}: {loc}: {msg}") from None


def shipped_questionnaires() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))


def load_questionnaire(name_or_path: str | Path = "aia-default") -> Questionnaire:
    """Load a shipped questionnaire by name, or any questionnaire file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = SHIPPED_DIR / f"{name_or_path}.yaml"
        if not shipped.is_file():
            raise InputError(f"questionnaire '{name_or_path}' not found: expected a file or one of "
                             + ", ".join(shipped_questionnaires()))
        path = shipped
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    return _parse(doc, source=str(path), digest="sha256:" + hashlib.sha256(raw).hexdigest())


def score_answers(q: Questionnaire, answers: Mapping[str, Any], *,
                  source: str = "answers") -> ImpactResult:
    """Score a complete set of answers; unknown, missing or invalid answers are refused."""
    if not isinstance(answers, Mapping):
        raise InputError(f"{source}: expected a mapping of question id -> chosen option")
    known = {x.id for x in q.questions}
    unknown = [str(k) for k in answers if k not in known]
    if unknown:
        raise InputError(f"{source}: unknown question '{unknown[0]}' for questionnaire {q.name}")
    missing = [x.id for x in q.questions if x.id not in answers]
    if missing:
        raise InputError(f"{source}: unanswered question(s): " + ", ".join(missing))
    points: dict[str, float] = {}
    clean: dict[str, Any] = {}
    for question in q.questions:
        given = answers[question.id]
        values = given if isinstance(given, list) else [given]
        if not question.multiple and len(values) != 1:
            raise InputError(f"{source}: {question.id}: expected exactly one option")
        chosen: list[str] = []
        for v in values:
            opt = question.option(str(v)) if isinstance(v, str | int | float | bool) else None
            if opt is None:
                raise InputError(f"{source}: {question.id}: unknown option {v!r}; expected one of "
                                 + ", ".join(o.value for o in question.options))
            if opt.value in chosen:
                raise InputError(f"{source}: {question.id}: option {opt.value!r} chosen twice")
            chosen.append(opt.value)
        points[question.id] = question.weight * sum(question.option(v).points  # type: ignore[union-attr]
                                                    for v in chosen)
        clean[question.id] = chosen if question.multiple else chosen[0]
    raw_impact = sum(points[x.id] for x in q.section("impact"))
    mitigation = sum(points[x.id] for x in q.section("mitigation"))
    max_mit = q.max_mitigation
    applied = max_mit > 0 and mitigation / max_mit >= q.mitigation.threshold - 1e-12
    impact_score = raw_impact * (1 - q.mitigation.reduction) if applied else raw_impact
    share = impact_score / q.max_impact
    return ImpactResult(
        questionnaire=q.name, version=q.version, digest=q.digest, answers=clean,
        raw_impact=round(raw_impact, 6), max_impact=round(q.max_impact, 6),
        mitigation=round(mitigation, 6), max_mitigation=round(max_mit, 6),
        mitigation_applied=applied, impact_score=round(impact_score, 6),
        share=round(share, 6), level=q.level_for(share), points=points, source=q.source,
    )
