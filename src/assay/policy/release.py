"""The release rule of a policy tier: where versions are released and when a
challenger may replace the champion.

A tier's ``release:`` section names the environments its models are released
to, who may take a version to full traffic, and the rule a promotion to full
must meet: for each listed metric, the challenger is not worse than the
champion by more than a margin, judged on both versions' monitoring data over
the same period (docs/releases.md). The loader validates it here, with the
file and line of the entry; :mod:`assay.operate` applies it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assay.errors import PolicyError
from assay.policy._yaml import format_path

#: Metrics where a higher value is better (from a window's labelled statistics).
HIGHER_IS_BETTER = ("accuracy", "balanced_accuracy", "precision", "recall", "tpr", "f1",
                    "roc_auc", "average_precision")
#: Metrics where a lower value is better.
LOWER_IS_BETTER = ("fpr", "brier")
#: Gaps between groups (max - min over the groups of ``sensitive``; lower is better).
GAP_METRICS = ("selection_rate_gap", "tpr_gap", "fpr_gap")
RELEASE_METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER + GAP_METRICS
#: How "not worse" is judged.
TESTS = ("non_inferiority", "significant_worsening")
ENVIRONMENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PromoteIfModel(_Strict):
    """One entry of ``promote_if``: the challenger is not worse on ``metric``."""

    metric: str = Field(min_length=1)
    not_worse_than: float = Field(ge=0.0, le=1.0)
    alpha: float | None = Field(None, gt=0.0, lt=0.5)
    sensitive: str | None = None


class ReleaseModel(_Strict):
    """A tier's ``release:`` section (docs/releases.md)."""

    environments: list[str] = Field(default_factory=lambda: ["production"], min_length=1)
    independent_full: bool = True
    min_rows: int = Field(200, ge=1)
    require_comparison: bool = False
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    test: Literal["non_inferiority", "significant_worsening"] = "non_inferiority"
    promote_if: list[PromoteIfModel] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("expected a mapping with 'environments', 'promote_if', "
                             f"'min_rows'..., got {data!r}")
        return data

    @field_validator("promote_if", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v


@dataclass(frozen=True)
class PromoteIf:
    metric: str
    margin: float
    alpha: float
    sensitive: str | None = None
    source: str = ""

    @property
    def label(self) -> str:
        return f"{self.metric} by {self.sensitive}" if self.sensitive else self.metric

    @property
    def higher_is_better(self) -> bool:
        return self.metric in HIGHER_IS_BETTER


@dataclass(frozen=True)
class ReleasePlan:
    """A tier's validated release section."""

    environments: tuple[str, ...] = ("production",)
    independent_full: bool = True
    min_rows: int = 200
    require_comparison: bool = False
    test: str = "non_inferiority"
    promote_if: tuple[PromoteIf, ...] = field(default_factory=tuple)


#: The plan of a tier without a ``release:`` section.
DEFAULT_PLAN = ReleasePlan()


def build_release(model: ReleaseModel, loc: tuple[str | int, ...],
                  where: Callable[..., str], did_you_mean: Callable[[str, list[str]], str]
                  ) -> ReleasePlan:
    """Validate a ``ReleaseModel`` (environment names, metrics, their groups) into a plan."""
    seen: dict[str, int] = {}
    for i, env in enumerate(model.environments):
        at = (*loc, "environments", i)
        if not ENVIRONMENT.match(env):
            raise PolicyError(f"{where(*at)}: {format_path(at)}: expected an environment name "
                              "(lower-case letters, digits, '-' or '_', at most 40), got "
                              f"{env!r}")
        if env in seen:
            raise PolicyError(f"{where(*at)}: {format_path(at)}: environment '{env}' is "
                              f"already listed at environments[{seen[env]}]")
        seen[env] = i
    rules: list[PromoteIf] = []
    keys: set[tuple[str, str | None]] = set()
    for i, r in enumerate(model.promote_if):
        at = (*loc, "promote_if", i)
        if r.metric not in RELEASE_METRICS:
            raise PolicyError(f"{where(*at, 'metric')}: {format_path((*at, 'metric'))}: unknown "
                              f"release metric '{r.metric}' (expected one of "
                              + ", ".join(RELEASE_METRICS) + ")"
                              + did_you_mean(r.metric, list(RELEASE_METRICS)))
        if r.metric in GAP_METRICS and not r.sensitive:
            raise PolicyError(f"{where(*at)}: {format_path(at)}: '{r.metric}' is a gap between "
                              "groups: name the protected attribute with 'sensitive: COLUMN'")
        if r.metric not in GAP_METRICS and r.sensitive:
            raise PolicyError(f"{where(*at, 'sensitive')}: {format_path((*at, 'sensitive'))}: "
                              f"'{r.metric}' is an overall metric and takes no 'sensitive' (use "
                              + " or ".join(GAP_METRICS) + " for a gap between groups)")
        key = (r.metric, r.sensitive)
        if key in keys:
            raise PolicyError(f"{where(*at)}: {format_path(at)}: '{r.metric}' is listed twice")
        keys.add(key)
        rules.append(PromoteIf(metric=r.metric, margin=float(r.not_worse_than),
                               alpha=float(r.alpha if r.alpha is not None else model.alpha),
                               sensitive=r.sensitive, source=where(*at)))
    return ReleasePlan(environments=tuple(model.environments),
                       independent_full=model.independent_full, min_rows=model.min_rows,
                       require_comparison=model.require_comparison, test=model.test,
                       promote_if=tuple(rules))
