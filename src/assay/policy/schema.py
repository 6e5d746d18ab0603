"""The policy file, as pydantic models.

These models describe the YAML a person writes (``docs/policy.md`` explains
every field). :mod:`assay.policy.loader` validates a file against them and
turns the result into :class:`assay.policy.Policy`, whose tiers carry the
:class:`assay.checks.base.CheckSpec` objects the check framework runs.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assay.policy.release import PromoteIfModel, ReleaseModel

#: Top-level sections that other parts of assay own (workflow stages and
#: sign-offs, risk tiering rules, monitoring thresholds, incidents). The policy loader
#: keeps them raw in ``Policy.extra_sections``; their owners validate them.
RESERVED_SECTIONS: set[str] = {"workflow", "risk", "monitoring", "incidents"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class BootstrapSettings(_Strict):
    """How confidence intervals are computed."""

    replicates: int = Field(1000, ge=0, le=100_000)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0)

    @field_validator("replicates")
    @classmethod
    def _enough(cls, v: int) -> int:
        if 0 < v < 100:
            raise ValueError(f"expected 0 (no intervals) or at least 100 replicates, got {v}")
        return v


class Settings(_Strict):
    """Policy-wide settings that every check reads through ``ctx.settings``."""

    min_group_size: int = Field(30, ge=1)
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)
    decision_threshold: float = Field(0.5, ge=0.0, le=1.0)
    on_skip: Literal["warn", "block"] = "warn"
    #: Spark engine: rows of the seeded sample that the checks needing rows read.
    spark_sample_rows: int = Field(100_000, ge=1)


class ThresholdModel(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping with 'min' and/or 'max', got {data!r}")
        return data

    @model_validator(mode="after")
    def _bounds(self) -> ThresholdModel:
        if self.min is None and self.max is None:
            raise ValueError("expected 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expected min <= max, got min {self.min:g} > max {self.max:g}")
        return self


class CheckModel(_Strict):
    id: str = Field(min_length=1)
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    threshold: ThresholdModel | None = None
    judge: Literal["point", "interval"] = "point"
    severity: Literal["block", "warn"] = "block"
    rationale: str = ""
    regulations: list[str] = Field(default_factory=list)

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, v: Any) -> Any:
        return {} if v is None else v

    @property
    def key(self) -> str:
        """What identifies this entry within a tier (for ``extends`` and ``drop``)."""
        return self.name or self.id


#: Roles a ``notify:`` entry may name: those of :mod:`assay.registry.roles` (the policy
#: sits below the registry; tests/test_notify.py keeps the two lists equal).
NOTIFY_ROLES = ("data_scientist", "validator", "risk_officer", "compliance", "security",
                "business_owner", "auditor", "admin")
#: What a channel name looks like (``assay channel add NAME``).
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class NotifyModel(_Strict):
    """Who hears of an alert: ``notify: {roles: [...], channels: [...]}``
    (docs/notifications.md)."""

    roles: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValueError("expected a mapping with 'roles' and/or 'channels' (e.g. "
                             f"{{roles: [validator], channels: [ops-hook]}}), got {data!r}")
        return data

    @field_validator("roles", "channels", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        for role in v:
            if role not in NOTIFY_ROLES:
                raise ValueError(f"unknown role '{role}' (expected one of "
                                 + ", ".join(NOTIFY_ROLES) + ")")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        for name in v:
            if not CHANNEL_NAME.match(name):
                raise ValueError(f"channel name {name!r}: expected letters, digits, '.', '_' "
                                 "or '-' (as given to `assay channel add`)")
        return v


class MonitorRuleModel(CheckModel):
    """One monitoring rule: a check entry plus when a breach becomes an alert."""

    consecutive: int = Field(1, ge=1, le=365)
    cooldown: int = Field(0, ge=0, le=365)
    action: Literal["alert", "recertify"] = "alert"
    #: who hears of this rule's alerts, instead of the tier's ``notify``
    notify: NotifyModel | None = None


class MonitoringModel(_Strict):
    """A tier's ``monitoring:`` section (docs/monitoring.md)."""

    window: Literal["daily", "weekly", "monthly"] = "daily"
    retention_days: int = Field(90, ge=1, le=3650)
    rules: list[MonitorRuleModel] = Field(default_factory=list)
    #: who hears of the tier's alerts (a rule's own ``notify`` replaces it)
    notify: NotifyModel | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, list):
            raise ValueError("expected a mapping with 'window', 'retention_days' and 'rules' "
                             "(the rules go under 'rules:'), got a list")
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping with 'window', 'retention_days' and 'rules', "
                             f"got {data!r}")
        legacy = sorted(k for k in data if k in LEGACY_MONITORING_KEYS)
        if legacy:
            raise ValueError(
                f"'{legacy[0]}' is a threshold of the old monitoring format; a tier's "
                "monitoring section now lists rules (e.g. '- id: drift.feature' with "
                "'threshold: {max: 0.1}'), see docs/monitoring.md")
        return data

    @field_validator("rules", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v


#: Keys of the old ``monitoring: {interval_days, psi_max, ...}`` thresholds (still read
#: under ``risk.tiers.<tier>.monitoring``); named in the error when used in a tier.
LEGACY_MONITORING_KEYS = frozenset({"interval_days", "psi_max", "performance_drop_max",
                                    "fairness_ratio_min", "adverse_impact_ratio_min",
                                    "calibration_ece_max"})


class TierModel(_Strict):
    description: str = ""
    extends: str | None = None
    review_interval_days: int | None = Field(None, ge=1)
    checks: list[CheckModel] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)
    monitoring: MonitoringModel | None = None
    release: ReleaseModel | None = None

    @field_validator("checks", "drop", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v


class PolicyModel(_Strict):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    settings: Settings = Field(default_factory=Settings)
    tiers: dict[str, TierModel] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        # "version: 1.2" is read by YAML as a number; keep it as the text written
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        return v

    @field_validator("settings", mode="before")
    @classmethod
    def _settings(cls, v: Any) -> Any:
        return {} if v is None else v


def field_names() -> set[str]:
    """Every field name the policy schema knows (for "did you mean" hints)."""
    names: set[str] = set(RESERVED_SECTIONS)
    for model in (BootstrapSettings, Settings, ThresholdModel, CheckModel, TierModel, PolicyModel,
                  MonitoringModel, MonitorRuleModel, NotifyModel, ReleaseModel, PromoteIfModel):
        names.update(model.model_fields)
    return names


def fields_of(loc: tuple[str | int, ...]) -> set[str]:
    """The field names allowed at the mapping that ``loc`` (an unknown key) sits in."""
    parent = loc[:-1]
    model: type[BaseModel] | None = PolicyModel
    i = 0
    while model is not None and i < len(parent):
        part = parent[i]
        if model is PolicyModel and part == "tiers":
            if i + 1 < len(parent):
                model, i = TierModel, i + 2
                continue
            return set()
        if model is TierModel and part == "checks":
            model, i = CheckModel, i + 2
            continue
        if model is TierModel and part == "monitoring":
            model, i = MonitoringModel, i + 1
            continue
        if model is MonitoringModel and part == "rules":
            model, i = MonitorRuleModel, i + 2
            continue
        if model is TierModel and part == "release":
            model, i = ReleaseModel, i + 1
            continue
        if model is ReleaseModel and part == "promote_if":
            model, i = PromoteIfModel, i + 2
            continue
        info = model.model_fields.get(str(part))
        ann = info.annotation if info else None
        model = next((m for m in (Settings, BootstrapSettings, ThresholdModel, NotifyModel)
                      if ann is m or (ann is not None and m in getattr(ann, "__args__", ()))),
                     None)
        i += 1
    if model is None:
        return set()
    names = set(model.model_fields)
    if model is PolicyModel:
        names |= RESERVED_SECTIONS
    return names
