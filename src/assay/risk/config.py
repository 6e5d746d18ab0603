"""The ``risk`` section of a policy: scoring, tiering rules and what each tier sets.

A policy may carry a top-level ``risk`` section; when it is absent (or a key
is missing) the defaults below apply. Example::

    risk:
      controls:
        max_reduction: 0.8          # controls never remove more than 80% of a risk
        strengths: {strong: 0.6, moderate: 0.4, weak: 0.2, none: 0.0}
      tiering:
        aggregate: max              # max | mean | weighted_mean
        weights: {regulatory_exposure: 2}   # only for weighted_mean
        thresholds: {high: 15, medium: 8}   # on the residual score, 0..25
        impact_levels: {I: low, II: medium, III: medium, IV: high}
      questionnaire: aia-default    # shipped name or a path
      require_questionnaire: true   # an assessment must answer the questionnaire
      backlog:
        cost_weight: 1.0
        time_weight: 1.0
        cost_reference: 50000
        days_reference: 90
      tiers:
        high:   {review_interval_days: 180, monitoring: {psi_max: 0.1}}
        medium: {review_interval_days: 365}
        low:    {review_interval_days: 730}

``docs/risk.md`` states every formula these settings feed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assay.errors import PolicyError

#: The risk taxonomy, in the order reports show it.
CATEGORIES: tuple[str, ...] = (
    "data_quality",
    "model_performance",
    "fairness_bias",
    "security",
    "privacy",
    "operational_reliability",
    "regulatory_exposure",
)

#: Tiers from the most to the least demanding.
TIERS: tuple[str, ...] = ("high", "medium", "low")
TIER_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2}

#: Impact levels of the questionnaire, lowest first.
IMPACT_LEVELS: tuple[str, ...] = ("I", "II", "III", "IV")

#: Largest possible score on the 1..5 x 1..5 scale.
MAX_SCORE = 25


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _strengths() -> dict[str, float]:
    return {"strong": 0.6, "moderate": 0.4, "weak": 0.2, "none": 0.0}


class ControlsConfig(_Strict):
    """How controls in place reduce inherent risk."""

    max_reduction: float = Field(default=0.8, ge=0.0, le=1.0)
    strengths: dict[str, float] = Field(default_factory=_strengths)

    @field_validator("strengths")
    @classmethod
    def _in_unit_interval(cls, v: dict[str, float]) -> dict[str, float]:
        for name, eff in v.items():
            if not 0.0 <= eff <= 1.0:
                raise ValueError(f"strength '{name}' is {eff}; expected a number from 0 to 1")
        return v


class TieringConfig(_Strict):
    """Rules that turn residual category scores and the impact level into a tier."""

    aggregate: Literal["max", "mean", "weighted_mean"] = "max"
    weights: dict[str, float] = Field(default_factory=dict)
    thresholds: dict[str, float] = Field(default_factory=lambda: {"high": 15.0, "medium": 8.0})
    impact_levels: dict[str, str] = Field(
        default_factory=lambda: {"I": "low", "II": "medium", "III": "medium", "IV": "high"}
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        for cat, w in v.items():
            if cat not in CATEGORIES:
                raise ValueError(f"unknown category '{cat}'; expected one of "
                                 + ", ".join(CATEGORIES))
            if w < 0:
                raise ValueError(f"weight of '{cat}' is {w}; expected a number >= 0")
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"high", "medium"}:
            raise ValueError("expected exactly the keys 'high' and 'medium'")
        if not 0 < v["medium"] <= v["high"] <= MAX_SCORE:
            raise ValueError(
                f"expected 0 < medium <= high <= {MAX_SCORE}, "
                f"got medium={v['medium']:g}, high={v['high']:g}"
            )
        return v

    @field_validator("impact_levels")
    @classmethod
    def _levels(cls, v: dict[str, str]) -> dict[str, str]:
        if set(v) != set(IMPACT_LEVELS):
            raise ValueError("expected a tier for each impact level I, II, III and IV")
        for level, tier in v.items():
            if tier not in TIERS:
                raise ValueError(f"level {level}: unknown tier '{tier}'; "
                                 "expected high, medium or low")
        ranks = [TIER_RANK[v[level]] for level in IMPACT_LEVELS]
        if ranks != sorted(ranks):
            raise ValueError("a higher impact level cannot map to a lower tier")
        return v

    @model_validator(mode="after")
    def _weighted(self) -> TieringConfig:
        if self.aggregate == "weighted_mean" and self.weights and not any(self.weights.values()):
            raise ValueError("weighted_mean needs at least one weight above 0")
        return self

    def weight(self, category: str) -> float:
        return self.weights.get(category, 1.0)


class BacklogConfig(_Strict):
    """Weights and reference values of the ranked mitigation backlog."""

    cost_weight: float = Field(default=1.0, ge=0.0)
    time_weight: float = Field(default=1.0, ge=0.0)
    cost_reference: float = Field(default=50_000.0, gt=0.0)
    days_reference: float = Field(default=90.0, gt=0.0)


class TierSettings(_Strict):
    review_interval_days: int = Field(ge=1, le=3650)
    monitoring: dict[str, Any] = Field(default_factory=dict)


def _tier_defaults() -> dict[str, TierSettings]:
    return {
        "high": TierSettings(
            review_interval_days=180,
            monitoring={"interval_days": 7, "psi_max": 0.10, "performance_drop_max": 0.02,
                        "fairness_ratio_min": 0.85},
        ),
        "medium": TierSettings(
            review_interval_days=365,
            monitoring={"interval_days": 30, "psi_max": 0.20, "performance_drop_max": 0.05,
                        "fairness_ratio_min": 0.80},
        ),
        "low": TierSettings(
            review_interval_days=730,
            monitoring={"interval_days": 90, "psi_max": 0.25, "performance_drop_max": 0.10},
        ),
    }


class RiskConfig(_Strict):
    """The validated ``risk`` section of a policy."""

    controls: ControlsConfig = Field(default_factory=ControlsConfig)
    tiering: TieringConfig = Field(default_factory=TieringConfig)
    questionnaire: str = "aia-default"
    require_questionnaire: bool = True
    backlog: BacklogConfig = Field(default_factory=BacklogConfig)
    tiers: dict[str, TierSettings] = Field(default_factory=_tier_defaults)

    @field_validator("tiers", mode="before")
    @classmethod
    def _merge_tiers(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        for key in v:
            if key not in TIERS:
                raise ValueError(f"unknown tier '{key}'; expected high, medium or low")
        merged: dict[str, Any] = {t: s.model_dump() for t, s in _tier_defaults().items()}
        for key, given in v.items():
            if isinstance(given, dict):
                monitoring = given.get("monitoring")
                base = merged[key]
                merged[key] = {**base, **given}
                if isinstance(monitoring, dict):  # thresholds not given keep their defaults
                    merged[key]["monitoring"] = {**base["monitoring"], **monitoring}
            else:
                merged[key] = given
        return merged

    def tier(self, name: str) -> TierSettings:
        if name not in self.tiers:
            raise PolicyError(f"unknown tier '{name}'; expected high, medium or low")
        return self.tiers[name]


def parse_risk(section: Any, *, source: str = "policy",
               where: Callable[..., str] | None = None) -> RiskConfig:
    """Validate a raw ``risk`` section (``None`` gives the defaults).

    Errors name the policy source (``where(*path)`` gives ``file.yaml:LINE``
    for a field when the policy knows its lines) and the field path, e.g.
    ``credit-lending.yaml:88: risk.tiering.thresholds: expected 0 < medium <= high <= 25 ...``.
    """
    if section is None:
        return RiskConfig()
    if not isinstance(section, dict):
        at = where("risk") if where else source
        raise PolicyError(f"{at}: 'risk' must be a mapping, got {type(section).__name__}")
    try:
        return RiskConfig.model_validate(section)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ("risk", *(str(p) for p in err["loc"]))
        at = where(*path) if where else source
        msg = err["msg"].removeprefix("Value error, ")
        raise PolicyError(f"{at}: {'.'.join(path)}: {msg}") from None
