"""Column roles: which column of a data set plays which part."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from assay.errors import InputError, did_you_mean

Task = Literal["classification", "regression", "multiclass"]
#: The tasks assay certifies (``classification`` is binary; ``multiclass`` has more than two
#: classes, see ``docs/multiclass.md``).
TASKS: tuple[str, ...] = ("classification", "regression", "multiclass")

#: Names of the columns that ``Dataset.with_model`` adds when the roles do not name them.
MODEL_PREDICTION = "__prediction__"
MODEL_SCORE = "__score__"


@dataclass
class ColumnRoles:
    """Which column is the target, the prediction, the score, the protected attributes.

    ``features=None`` means every column that has no other role (target,
    prediction, score, weight). Protected attributes stay among the features:
    they are often model inputs, and the robustness checks need to know it.
    ``threshold`` turns a score into a decision (``score >= threshold``) when
    no prediction column is given. ``excluded`` maps columns left out of the
    default features to the reason (identifier-like columns, see
    :mod:`assay.data.identifiers`); columns named in ``features`` are always kept.
    """

    target: str | None = None
    prediction: str | None = None
    score: str | None = None
    sensitive: list[str] = field(default_factory=list)
    features: list[str] | None = None
    weight: str | None = None
    positive_label: Any = 1
    task: Task = "classification"
    threshold: float = 0.5
    excluded: dict[str, str] = field(default_factory=dict)
    #: multiclass: class label -> column holding the probability of that class
    class_scores: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.class_scores is not None:
            self.class_scores = {str(k): str(v) for k, v in dict(self.class_scores).items()}
        self.excluded = {str(k): str(v) for k, v in dict(self.excluded or {}).items()}
        if isinstance(self.sensitive, str):
            self.sensitive = [self.sensitive]
        else:
            self.sensitive = list(self.sensitive or [])
        if self.features is not None:
            if isinstance(self.features, str):
                self.features = [self.features]
            self.features = list(self.features)
        if self.task not in TASKS:
            raise InputError(
                "{task}: expected 'classification', 'multiclass' or 'regression', got "
                f"{str(self.task)!r}{did_you_mean(self.task, TASKS)}", fields=["task"])
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise InputError(
                f"threshold: expected a number between 0 and 1, got {self.threshold!r}")

    @property
    def role_columns(self) -> list[str]:
        """Columns with a role other than feature (target, prediction, score, weight)."""
        return [c for c in (self.target, self.prediction, self.score, self.weight,
                            *(self.class_scores or {}).values()) if c]

    def declared_columns(self) -> list[str]:
        """Every column the roles name, in a stable order and without repeats."""
        cols: list[str] = []
        for c in [*self.role_columns, *self.sensitive, *(self.features or [])]:
            if c not in cols:
                cols.append(c)
        return cols

    def feature_columns(self, available: Iterable[str]) -> list[str]:
        """The feature columns, resolving ``features=None`` against ``available``."""
        if self.features is not None:
            return list(self.features)
        skip = set(self.role_columns) | {MODEL_PREDICTION, MODEL_SCORE} | set(self.excluded)
        return [c for c in available if c not in skip]

    def with_model_outputs(self, *, has_score: bool = True) -> ColumnRoles:
        """Roles naming the columns that ``Dataset.with_model`` adds."""
        return replace(
            self,
            prediction=self.prediction or MODEL_PREDICTION,
            score=(self.score or MODEL_SCORE) if has_score else self.score,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        pl = d["positive_label"]
        if hasattr(pl, "item"):
            d["positive_label"] = pl.item()
        return d


def match_label(values: Sequence[Any], label: Any) -> Any | None:
    """The element of ``values`` equal to ``label``, comparing text forms if types differ."""
    for v in values:
        if v == label:
            return v
    text = str(label).strip().lower()
    for v in values:
        if str(v).strip().lower() == text:
            return v
    return None
