"""The ranked mitigation backlog: which open risk to work on first.

For each open risk (status ``open`` or ``mitigating``)::

    score     = likelihood x impact                       (1..25)
    cost      = sum of estimated cost of its unfinished mitigations
    days      = longest estimated duration of its unfinished mitigations
    c         = min(cost / cost_reference, 1)
    d         = min(days / days_reference, 1)
    priority  = score / (1 + cost_weight x c + time_weight x d)

Higher priority first. The reference values and weights come from the
policy's ``risk.backlog`` section (defaults: 50,000 and 90 days, weights 1).
The discount is capped (each normalised term is at most 1) so that cost and
time reorder risks of similar size but never bury a severe risk under trivial
ones: with the default weights a risk keeps at least a third of its score.
A risk without a planned mitigation is not discounted (c = d = 0), which
puts unplanned severe risks at the top, where they need an owner's plan.

Ties are broken, in order, by the higher score, the earlier due date of an
unfinished mitigation (none last), the older risk and finally the lower id,
so the same register always gives the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from assay.risk.config import BacklogConfig


@dataclass(frozen=True)
class BacklogInput:
    """What the ranking needs to know about one open risk."""

    risk_id: int
    title: str
    likelihood: int
    impact: int
    mitigation_costs: tuple[float, ...] = ()
    mitigation_days: tuple[float, ...] = ()
    next_due: date | None = None
    created_order: Any = 0  # anything sortable: creation time, then the id breaks ties
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BacklogItem:
    rank: int
    risk_id: int
    title: str
    score: int
    cost: float
    days: float
    norm_cost: float
    norm_days: float
    priority: float
    next_due: date | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "risk_id": self.risk_id,
            "title": self.title,
            "score": self.score,
            "cost": self.cost,
            "days": self.days,
            "norm_cost": self.norm_cost,
            "norm_days": self.norm_days,
            "priority": self.priority,
            "next_due": self.next_due.isoformat() if self.next_due else None,
            **self.extra,
        }


def priority(score: float, cost: float, days: float,
             config: BacklogConfig) -> tuple[float, float, float]:
    """``(priority, normalised cost, normalised days)`` of one risk (formula in the module doc)."""
    c = min(cost / config.cost_reference, 1.0)
    d = min(days / config.days_reference, 1.0)
    p = score / (1.0 + config.cost_weight * c + config.time_weight * d)
    return p, c, d


def rank(items: Iterable[BacklogInput], config: BacklogConfig) -> list[BacklogItem]:
    """Order open risks by priority, highest first, with deterministic ties."""
    scored = []
    for it in items:
        cost = float(sum(it.mitigation_costs))
        days = float(max(it.mitigation_days, default=0.0))
        score = it.likelihood * it.impact
        p, c, d = priority(score, cost, days, config)
        # rounding keeps mathematically equal priorities equal despite float noise
        key = (-round(p, 9), -score, it.next_due or date.max, it.created_order, it.risk_id)
        scored.append((key, it, score, cost, days, c, d, p))
    scored.sort(key=lambda row: row[0])
    out = []
    for i, (_key, it, score, cost, days, c, d, p) in enumerate(scored, start=1):
        out.append(BacklogItem(rank=i, risk_id=it.risk_id, title=it.title, score=score,
                               cost=cost, days=days, norm_cost=round(c, 6),
                               norm_days=round(d, 6), priority=round(p, 6),
                               next_due=it.next_due, extra=dict(it.extra)))
    return out
