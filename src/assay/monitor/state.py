"""What a window keeps: mergeable statistics, and the arithmetic of windows.

A :class:`WindowState` holds, for the rows of one window:

* ``profile``: per-feature statistics (:class:`assay.metrics.profile.Profile`)
  on the bins fixed by the training data: counts, nulls, moments, coarse and
  fine histograms, category counts;
* ``outputs``: a :class:`~assay.metrics.ClassificationStats` of the model's
  outputs per group cell, with the prediction in the label slot (so
  ``selection_rate`` per group is exact, and the score histograms per
  predicted class feed the confidence-based performance estimate);
* ``labeled``: a ``ClassificationStats`` of the rows whose labels arrived;
* ``scores``: the profile of the score (or the prediction) for prediction drift;
* ``out_of_range`` (values outside the training range) and ``extra``
  (columns the training data does not have), counted per column;
* ``novel`` of ``novelty_rows`` scored rows beyond the training data's 99th
  percentile of the novelty score (:mod:`assay.metrics.novelty`) stored with the
  reference.

Every part merges exactly (sums of counts), so a week or a month is the merge
of its days, and a batch is merged into its days in any order.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

from assay.errors import InputError
from assay.metrics import ClassificationStats
from assay.metrics.novelty import NoveltyScorer
from assay.metrics.profile import NUMERIC, FeatureBins, FeatureStats, Profile

#: Score bins of the window statistics (100 is plenty for monitoring and keeps them small).
SCORE_BINS = 100
#: Name of the output column in the ``scores`` profile.
SCORE = "score"
PREDICTION = "prediction"
PERIODS = ("daily", "weekly", "monthly")


def day_of(d: datetime | date) -> date:
    if isinstance(d, datetime):
        d = (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC)
        return d.date()
    return d


def at_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def period_start(day: date, period: str) -> date:
    """First day of the ``period`` window (Monday for weeks) that contains ``day``."""
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    raise InputError(f"window: expected one of {', '.join(PERIODS)}, got {period!r}")


def period_end(start: date, period: str) -> date:
    """First day after the window that starts on ``start``."""
    if period == "daily":
        return start + timedelta(days=1)
    if period == "weekly":
        return start + timedelta(days=7)
    nxt = start.replace(day=28) + timedelta(days=4)
    return nxt.replace(day=1)


def periods_between(a: date, b: date, period: str) -> int:
    """How many windows after the one starting at ``a`` the one starting at ``b`` is."""
    if period == "daily":
        return (b - a).days
    if period == "weekly":
        return (b - a).days // 7
    return (b.year - a.year) * 12 + (b.month - a.month)


def score_bins() -> FeatureBins:
    """Fixed bins of a probability: 10 coarse and 100 fine equal-width bins on [0, 1]."""
    return FeatureBins(SCORE, NUMERIC, np.linspace(0.1, 0.9, 9), np.linspace(0.01, 0.99, 99))


@dataclass
class WindowState:
    """The mergeable statistics of one window (see the module docstring)."""

    profile: Profile
    rows: int = 0
    outputs: ClassificationStats | None = None
    labeled: ClassificationStats | None = None
    scores: FeatureStats | None = None
    out_of_range: dict[str, int] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)
    novel: int = 0
    novelty_rows: int = 0

    @classmethod
    def empty(cls, bins: dict[str, FeatureBins]) -> WindowState:
        return cls(profile=Profile.empty(bins))

    @property
    def labeled_rows(self) -> int:
        return 0 if self.labeled is None else int(self.labeled.n)

    def merge(self, other: WindowState) -> WindowState:
        def both(a: Any, b: Any) -> Any:
            if a is None:
                return b
            if b is None:
                return a
            return a.merge(b)

        def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}

        return WindowState(profile=self.profile.merge(other.profile),
                           rows=self.rows + other.rows,
                           outputs=both(self.outputs, other.outputs),
                           labeled=both(self.labeled, other.labeled),
                           scores=both(self.scores, other.scores),
                           out_of_range=add(self.out_of_range, other.out_of_range),
                           extra=add(self.extra, other.extra),
                           novel=self.novel + other.novel,
                           novelty_rows=self.novelty_rows + other.novelty_rows)

    # ------------------------------------------------------------ storage
    def to_blob(self) -> bytes:
        """Compressed JSON; the bins are left out (the reference holds them)."""
        feats = {}
        for name, st in self.profile.features.items():
            d = st.to_dict()
            d.pop("bins")
            feats[name] = d
        scores = None
        if self.scores is not None:
            scores = self.scores.to_dict()
        body = {"v": 1, "rows": self.rows, "profile_rows": self.profile.rows,
                "features": feats,
                "outputs": None if self.outputs is None else self.outputs.to_state(),
                "labeled": None if self.labeled is None else self.labeled.to_state(),
                "scores": scores, "out_of_range": self.out_of_range, "extra": self.extra,
                "novel": self.novel, "novelty_rows": self.novelty_rows}
        return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)

    @classmethod
    def from_blob(cls, blob: bytes, bins: dict[str, FeatureBins]) -> WindowState:
        body = json.loads(zlib.decompress(blob))
        feats = {}
        for name, b in bins.items():
            d = body["features"].get(name)
            feats[name] = (FeatureStats(bins=b) if d is None else
                           FeatureStats.from_dict({**d, "bins": b.to_dict()}))
        return cls(profile=Profile(feats, rows=int(body["profile_rows"])),
                   rows=int(body["rows"]),
                   outputs=None if body["outputs"] is None else
                   ClassificationStats.from_state(body["outputs"]),
                   labeled=None if body["labeled"] is None else
                   ClassificationStats.from_state(body["labeled"]),
                   scores=None if body["scores"] is None else
                   FeatureStats.from_dict(body["scores"]),
                   out_of_range={k: int(v) for k, v in body["out_of_range"].items()},
                   extra={k: int(v) for k, v in body["extra"].items()},
                   novel=int(body.get("novel", 0)),
                   novelty_rows=int(body.get("novelty_rows", 0)))


def reference_blob(profile: Profile, novelty: NoveltyScorer | None = None) -> bytes:
    """The reference profile (and the fitted novelty score, when there is one) as bytes."""
    body = profile.to_dict()
    if novelty is not None:
        body["novelty"] = novelty.to_dict()
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6)


def novelty_from_blob(blob: bytes) -> NoveltyScorer | None:
    """The novelty score stored with a reference (None for a reference built without one)."""
    return _novelty(bytes(blob))


@lru_cache(maxsize=16)
def _novelty(blob: bytes) -> NoveltyScorer | None:
    body = json.loads(zlib.decompress(blob)).get("novelty")
    return None if body is None else NoveltyScorer.from_dict(body)


def reference_from_blob(blob: bytes) -> Profile:
    """The reference profile stored as ``blob``; the same (read-only) object for the same
    bytes, so its bins' lookup tables are built once, not at every batch and run."""
    return _reference(bytes(blob))


@lru_cache(maxsize=16)
def _reference(blob: bytes) -> Profile:
    return Profile.from_dict(json.loads(zlib.decompress(blob)))
