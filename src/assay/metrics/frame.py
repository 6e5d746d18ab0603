"""One result object for metrics overall and by group.

:class:`MetricFrame` follows the conventions of Fairlearn's ``MetricFrame``:
``overall``, ``by_group``, ``difference()`` (largest minus smallest group
value) and ``ratio()`` (smallest over largest). It adds the signed,
reference-group convention used by AIF360 (``gaps(reference)``: group minus
reference) and the minimum group size: groups with fewer rows are reported
but left out of differences and ratios.

Group labels are strings: the category for one feature, categories joined
with ``" x "`` for an intersection (``"Female x White"``).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

from assay.errors import InputError

SEP = " x "


def group_name(label: tuple[str, ...] | list[str] | str) -> str:
    """The one spelling of a group or an intersection: its parts joined by ``" x "``.

    ``("Female", "White")`` is ``"Female x White"``; the attributes of an
    intersection are named the same way (``["sex", "race"]`` is ``"sex x race"``).
    results.json, the report and the command line all show labels made here.
    """
    return label if isinstance(label, str) else SEP.join(label)


def group_label(by: tuple[str, ...] | list[str] | str, group: tuple[str, ...] | str) -> str:
    """A group within its grouping: ``"sex x race=Female x White"``."""
    return f"{group_name(by)}={group_name(group)}"


def _nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass
class MetricFrame:
    """Metrics overall and per group, with differences and ratios between groups."""

    metrics: list[str]
    by: list[str]
    overall: dict[str, float]
    by_group: dict[Any, dict[str, float]]
    counts: dict[Any, int]
    min_group_size: int = 0
    _keys: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.by_group = {group_name(k): v for k, v in self.by_group.items()}
        self.counts = {group_name(k): v for k, v in self.counts.items()}

    @property
    def groups(self) -> list[str]:
        return list(self.by_group)

    @property
    def judged_groups(self) -> list[str]:
        """Groups with at least ``min_group_size`` rows."""
        return [g for g in self.by_group if self.counts[g] >= self.min_group_size]

    def _check_reference(self, reference: str | None) -> str:
        if reference is None:
            raise InputError("method='to_reference' needs a reference group")
        if reference not in self.by_group:
            raise InputError(f"reference group '{reference}' is not among the groups of "
                             f"{SEP.join(self.by)}: {', '.join(self.by_group)}")
        return reference

    def _values(self, metric: str) -> dict[str, float]:
        if metric not in self.metrics:
            raise InputError(f"metric '{metric}' is not in this frame ({', '.join(self.metrics)})")
        return {g: self.by_group[g][metric] for g in self.judged_groups
                if not math.isnan(self.by_group[g][metric])}

    def gaps(self, reference: str) -> dict[str, dict[str, float]]:
        """Signed differences group minus reference (AIF360 convention), per metric."""
        ref = self._check_reference(reference)
        return {m: {g: v - self.by_group[ref][m] for g, v in self._values(m).items() if g != ref}
                for m in self.metrics}

    def difference(self, method: str = "between_groups", reference: str | None = None
                   ) -> dict[str, float]:
        """Per metric: ``between_groups`` max - min (Fairlearn), or ``to_reference``:
        the largest absolute difference between a group and the reference."""
        out = {}
        for m in self.metrics:
            vals = self._values(m)
            if method == "between_groups":
                out[m] = max(vals.values()) - min(vals.values()) if vals else math.nan
            elif method == "to_reference":
                ref = self._check_reference(reference)
                r = self.by_group[ref][m]
                out[m] = max((abs(v - r) for v in vals.values()), default=math.nan)
            else:
                raise InputError(f"method '{method}': expected 'between_groups' or 'to_reference'")
        return out

    def ratio(self, method: str = "between_groups", reference: str | None = None
              ) -> dict[str, float]:
        """Per metric: ``between_groups`` min / max (Fairlearn), or ``to_reference``: the
        smallest of group / reference and reference / group over the groups."""
        out = {}
        for m in self.metrics:
            vals = self._values(m)
            if method == "between_groups":
                hi = max(vals.values()) if vals else math.nan
                out[m] = (min(vals.values()) / hi) if vals and hi != 0 else math.nan
            elif method == "to_reference":
                ref = self._check_reference(reference)
                r = self.by_group[ref][m]
                rs = [min(v / r, r / v) if v != 0 and r != 0 else (1.0 if v == r else 0.0)
                      for v in vals.values()]
                out[m] = min(rs) if rs else math.nan
            else:
                raise InputError(f"method '{method}': expected 'between_groups' or 'to_reference'")
        return out

    def group_min(self) -> dict[str, float]:
        return {m: min(self._values(m).values(), default=math.nan) for m in self.metrics}

    def group_max(self) -> dict[str, float]:
        return {m: max(self._values(m).values(), default=math.nan) for m in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes ``None``."""
        return {
            "by": list(self.by),
            "min_group_size": self.min_group_size,
            "overall": {m: _nan_to_none(v) for m, v in self.overall.items()},
            "by_group": {g: {"n": self.counts[g], "judged": self.counts[g] >= self.min_group_size,
                             "metrics": {m: _nan_to_none(v) for m, v in vals.items()}}
                         for g, vals in self.by_group.items()},
        }

    def to_pandas(self) -> Any:
        """A DataFrame with one row per group (a MultiIndex for intersections) and ``n``."""
        import pandas as pd

        rows = [{**vals, "n": self.counts[g]} for g, vals in self.by_group.items()]
        if len(self.by) > 1:
            index = pd.MultiIndex.from_tuples([tuple(g.split(SEP)) for g in self.by_group],
                                              names=self.by)
        else:
            index = pd.Index(list(self.by_group), name=self.by[0] if self.by else None)
        return pd.DataFrame(rows, index=index, columns=[*self.metrics, "n"])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(m)}</th>" for m in [*self.metrics, "n"])
        label = html.escape(SEP.join(self.by) or "group")

        def row(name: str, vals: dict[str, float], n: Any, muted: bool = False) -> str:
            cells = "".join(f"<td>{v:.4g}</td>" for v in (vals[m] for m in self.metrics))
            style = ' style="color:#888"' if muted else ""
            return f"<tr{style}><th>{html.escape(name)}</th>{cells}<td>{n}</td></tr>"

        body = row("overall", self.overall, "")
        for g, vals in self.by_group.items():
            body += row(g, vals, self.counts[g], self.counts[g] < self.min_group_size)
        return (f"<table><thead><tr><th>{label}</th>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def __repr__(self) -> str:
        return (f"MetricFrame(by={self.by}, metrics={self.metrics}, groups={len(self.by_group)}, "
                f"overall={ {m: round(v, 4) for m, v in self.overall.items()} })")
