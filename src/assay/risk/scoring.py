"""Risk scoring: inherent and residual risk per category, and the tier rule.

Pure functions over validated inputs; no database. The formulas are stated in
``docs/risk.md``:

* inherent risk of a category = likelihood x impact (each 1..5, so 1..25);
* controls in place combine as independent reductions,
  ``combined = 1 - prod(1 - e_i)``, capped at the policy's ``max_reduction``;
* residual risk = inherent x (1 - combined);
* the aggregate residual score is the highest category (default), the mean,
  or a weighted mean, as the policy's ``risk.tiering.aggregate`` says;
* the score tier comes from the policy thresholds, and the final tier is the
  more demanding of the score tier and the tier the impact level maps to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assay.errors import InputError
from assay.risk.config import CATEGORIES, TIER_RANK, RiskConfig


@dataclass(frozen=True)
class Control:
    """One control in place and the share of the risk it removes (0..1)."""

    name: str
    effectiveness: float
    strength: str | None = None  # the named strength it came from, if any

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "effectiveness": self.effectiveness}
        if self.strength is not None:
            d["strength"] = self.strength
        return d


@dataclass(frozen=True)
class CategoryScore:
    """Likelihood, impact, rationale and controls of one taxonomy category."""

    category: str
    likelihood: int
    impact: int
    rationale: str
    controls: tuple[Control, ...] = ()
    control_reduction: float = 0.0

    @property
    def inherent(self) -> int:
        return self.likelihood * self.impact

    @property
    def residual(self) -> float:
        return round(self.inherent * (1.0 - self.control_reduction), 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "likelihood": self.likelihood,
            "impact": self.impact,
            "inherent": self.inherent,
            "rationale": self.rationale,
            "controls": [c.to_dict() for c in self.controls],
            "control_reduction": self.control_reduction,
            "residual": self.residual,
        }


@dataclass(frozen=True)
class TierDecision:
    """How the tier was reached, kept with the assessment as its explanation."""

    aggregate: str
    score: float
    score_tier: str
    impact_level: str | None
    impact_tier: str | None
    tier: str
    dominant_category: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "aggregate": self.aggregate,
            "score": self.score,
            "score_tier": self.score_tier,
            "impact_level": self.impact_level,
            "impact_tier": self.impact_tier,
            "tier": self.tier,
            "dominant_category": self.dominant_category,
            "reasons": list(self.reasons),
        }


def combined_reduction(effectiveness: list[float], max_reduction: float) -> float:
    """Share of risk removed by independent controls: ``1 - prod(1 - e)``, capped."""
    remaining = 1.0
    for e in effectiveness:
        remaining *= 1.0 - e
    return min(round(1.0 - remaining, 6), max_reduction)


def _int_1_to_5(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: expected a whole number from 1 to 5, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise InputError(f"{where}: expected a whole number from 1 to 5, got {value!r}")
    v = int(value)
    if not 1 <= v <= 5:
        raise InputError(f"{where}: expected a whole number from 1 to 5, got {v}")
    return v


def parse_control(raw: Any, config: RiskConfig, where: str) -> Control:
    """A control is ``{name, effectiveness: 0..1}`` or ``{name, strength: strong|...}``."""
    strengths = config.controls.strengths
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping with 'name' and "
                         "'effectiveness' or 'strength'")
    unknown = set(raw) - {"name", "effectiveness", "strength", "description"}
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                         "expected name, effectiveness or strength, description")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}.name: expected a non-empty name of the control")
    has_eff, has_str = "effectiveness" in raw, "strength" in raw
    if has_eff == has_str:
        raise InputError(f"{where}: give exactly one of 'effectiveness' (0 to 1) or 'strength' "
                         f"({', '.join(strengths)})")
    if has_str:
        s = raw["strength"]
        if s not in strengths:
            raise InputError(f"{where}.strength: unknown strength {s!r}; expected one of "
                             + ", ".join(strengths))
        return Control(name=name.strip(), effectiveness=float(strengths[s]), strength=str(s))
    e = raw["effectiveness"]
    if (isinstance(e, bool) or not isinstance(e, int | float) or math.isnan(float(e))
            or not 0.0 <= float(e) <= 1.0):
        raise InputError(f"{where}.effectiveness: expected a number from 0 to 1, got {e!r}")
    return Control(name=name.strip(), effectiveness=float(e))


def parse_categories(raw: Any, config: RiskConfig, *,
                     source: str = "assessment") -> list[CategoryScore]:
    """Validate the ``categories`` of an assessment file; every category is required."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{source}: 'categories' must be a mapping of category -> "
                         "{likelihood, impact, rationale, controls}")
    unknown = [str(k) for k in raw if k not in CATEGORIES]
    if unknown:
        raise InputError(f"{source}: unknown risk category '{unknown[0]}'; expected "
                         + ", ".join(CATEGORIES))
    missing = [c for c in CATEGORIES if c not in raw]
    if missing:
        raise InputError(f"{source}: categories missing from the assessment: " + ", ".join(missing))
    out = []
    for cat in CATEGORIES:
        entry = raw[cat]
        where = f"{source}: categories.{cat}"
        if not isinstance(entry, Mapping):
            raise InputError(f"{where}: expected a mapping with likelihood, impact and rationale")
        extra = set(entry) - {"likelihood", "impact", "rationale", "controls"}
        if extra:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}; "
                             "expected likelihood, impact, rationale, controls")
        for key in ("likelihood", "impact", "rationale"):
            if key not in entry:
                raise InputError(f"{where}.{key}: missing")
        lik = _int_1_to_5(entry["likelihood"], f"{where}.likelihood")
        imp = _int_1_to_5(entry["impact"], f"{where}.impact")
        rationale = entry["rationale"]
        if not isinstance(rationale, str) or not rationale.strip():
            raise InputError(f"{where}.rationale: a written rationale is required")
        raw_controls = entry.get("controls") or []
        if not isinstance(raw_controls, list):
            raise InputError(f"{where}.controls: expected a list of controls")
        controls = tuple(parse_control(c, config, f"{where}.controls.{i}")
                         for i, c in enumerate(raw_controls))
        reduction = combined_reduction([c.effectiveness for c in controls],
                                       config.controls.max_reduction)
        out.append(CategoryScore(category=cat, likelihood=lik, impact=imp,
                                 rationale=rationale.strip(), controls=controls,
                                 control_reduction=reduction))
    return out


def score_tier(score: float, config: RiskConfig) -> str:
    t = config.tiering.thresholds
    if score >= t["high"]:
        return "high"
    if score >= t["medium"]:
        return "medium"
    return "low"


def aggregate_score(scores: list[CategoryScore], config: RiskConfig) -> tuple[float, str]:
    """The aggregate residual score and the category that contributes most to it."""
    if not scores:
        raise InputError("an assessment needs at least one category")
    how = config.tiering.aggregate
    # the dominant category: highest residual, then highest inherent, then taxonomy order
    dominant = max(scores, key=lambda s: (s.residual, s.inherent, -CATEGORIES.index(s.category)))
    if how == "max":
        value = dominant.residual
    elif how == "mean":
        value = sum(s.residual for s in scores) / len(scores)
    else:
        w = {s.category: config.tiering.weight(s.category) for s in scores}
        total = sum(w.values())
        value = sum(w[s.category] * s.residual for s in scores) / total
        dominant = max(scores, key=lambda s: (w[s.category] * s.residual, s.inherent,
                                              -CATEGORIES.index(s.category)))
    return round(value, 6), dominant.category


def decide_tier(scores: list[CategoryScore], config: RiskConfig,
                impact_level: str | None = None) -> TierDecision:
    """Apply the policy's tiering rules; the impact level can raise but never lower the tier."""
    value, dominant = aggregate_score(scores, config)
    s_tier = score_tier(value, config)
    t = config.tiering.thresholds
    reasons = [
        f"{config.tiering.aggregate} residual score {value:g} (dominant category {dominant}) "
        f"against thresholds high >= {t['high']:g}, medium >= {t['medium']:g}: {s_tier}"
    ]
    i_tier = None
    tier = s_tier
    if impact_level is not None:
        i_tier = config.tiering.impact_levels[impact_level]
        reasons.append(f"impact level {impact_level} requires at least tier {i_tier}")
        if TIER_RANK[i_tier] > TIER_RANK[tier]:
            tier = i_tier
    return TierDecision(aggregate=config.tiering.aggregate, score=value, score_tier=s_tier,
                        impact_level=impact_level, impact_tier=i_tier, tier=tier,
                        dominant_category=dominant, reasons=reasons)
