"""The impact numbers of one data set, as the command line and the API compute them.

Each function reads ``data`` (a CSV or Parquet path, a frame or an Arrow table), runs one
analysis and returns its JSON (the output of ``assay impact KIND --format json``), so
both faces give the same answer for the same input. Errors are :class:`InputError` with
the option name in braces (``{sensitive}``), for the face to rename.

A model that scores the data again (feature scenarios, feature sensitivity) is a
:class:`~assay.data.model.ModelAdapter`; :func:`version_model` loads the stored artefact
of a registered version from the evidence store (the API accepts no uploaded model:
loading a pickle runs its code).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from assay.errors import InputError


def _stats(data: Any, target: str, positive_label: Any, score: str, value: str,
           sensitive: Sequence[str]) -> tuple[Any, Any]:
    from assay.impact.value import parse_value_model, stats_from_data

    model = parse_value_model(value)
    return model, stats_from_data(data, target=target, positive_label=positive_label,
                                  score=score, model=model, sensitive=list(sensitive))


def scored(data: Any, *, target: str, positive_label: Any, value: str,
           score: str | None = None, adapter: Any = None,
           sensitive: Sequence[str] = ()) -> tuple[Any, Any, Any]:
    """(value model, baseline statistics, ScoredData or None): the data scored by its
    ``score`` column, or by ``adapter`` when given."""
    if adapter is None:
        if score is None:
            raise InputError("give {score} or {model} to score the data",
                             fields=["score", "model"])
        model, stats = _stats(data, target, positive_label, score, value, sensitive)
        return model, stats, None
    from assay.impact.scenarios import ScoredData
    from assay.impact.value import parse_value_model

    model = parse_value_model(value)
    sd = ScoredData(data, adapter, target=target, positive_label=positive_label, model=model,
                    sensitive=list(sensitive))
    return model, sd.stats(), sd


def value(data: Any, *, target: str, positive_label: Any, score: str, value: str,
          sensitive: Sequence[str] = (), points: int = 200, n_boot: int = 1000,
          seed: int = 0) -> dict[str, Any]:
    """The value curve, best threshold and per-group values (docs/impact.md)."""
    from assay.impact.value import value_curve

    model, stats = _stats(data, target, positive_label, score, value, sensitive)
    return value_curve(stats, model, points=points, n_boot=n_boot, seed=seed).to_dict()


def frontier(data: Any, *, target: str, positive_label: Any, score: str, value: str,
             sensitive: Sequence[str], constraint: str = "demographic_parity_ratio",
             levels: Sequence[float] | None = None, randomized: bool = False
             ) -> dict[str, Any]:
    """The value-fairness frontier (docs/impact.md)."""
    from assay.errors import choice_error
    from assay.impact.frontier import CONSTRAINTS, value_fairness_frontier

    if constraint not in CONSTRAINTS:
        raise InputError(choice_error("{constraint}", constraint, CONSTRAINTS).template,
                         fields=["constraint"])
    model, stats = _stats(data, target, positive_label, score, value, sensitive)
    return value_fairness_frontier(stats, model, constraint=constraint,
                                   levels=None if levels is None else list(levels),
                                   randomized=randomized).to_dict()


def scenarios(data: Any, *, target: str, positive_label: Any, value: str, text: str,
              source: str, score: str | None = None, adapter: Any = None,
              sensitive: Sequence[str] = (), threshold: float | None = None,
              n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each scenario of the YAML ``text`` (named ``source`` in errors) beside the
    baseline (docs/impact.md)."""
    from assay.impact.scenarios import parse_scenarios, run_scenarios

    model, stats, sd = scored(data, target=target, positive_label=positive_label, value=value,
                              score=score, adapter=adapter, sensitive=sensitive)
    items = parse_scenarios(text, source, features=sd.features if sd is not None else None,
                            groups=stats.groups if sensitive else None)
    return run_scenarios(stats, model, items, threshold=threshold,
                         rescore=sd.rescore if sd is not None else None,
                         n_boot=n_boot, seed=seed).to_dict()


def sensitivity(data: Any, *, target: str, positive_label: Any, value: str,
                score: str | None = None, adapter: Any = None, sensitive: Sequence[str] = (),
                group: str | None = None, reference: str | None = None,
                features: Sequence[str] = (), rate: str = "selection_rate",
                threshold: float | None = None, spread: float = 0.5, n_boot: int = 1000,
                seed: int = 0) -> dict[str, Any]:
    """The value tornado, and with a model, a group and a reference group, which
    features drive the gap (docs/impact.md)."""
    from assay.impact.sensitivity import feature_sensitivity, value_tornado

    if (group is None) != (reference is None):
        raise InputError("give both {group} and {reference} (or neither)",
                         fields=["group", "reference"])
    if group is not None and adapter is None:
        raise InputError("{group}: swapping features needs {model} to score again",
                         fields=["group", "model"])
    model, stats, sd = scored(data, target=target, positive_label=positive_label, value=value,
                              score=score, adapter=adapter, sensitive=sensitive)
    torn = value_tornado(stats, model, spread=spread, threshold=threshold)
    out: dict[str, Any] = {"tornado": torn}
    if group is not None:
        out["features"] = feature_sensitivity(
            sd, group=group, reference=str(reference), features=list(features) or None,
            threshold=torn["baseline_threshold"] if threshold is None else threshold,
            rate=rate, n_boot=n_boot, seed=seed)
    return out


def version_model(session: Session, model: str, version: str, folder: Path, *,
                  settings: Any = None) -> Any:
    """The stored model artefact of a registered version, loaded (a ModelAdapter).

    The artefact is the one registered with the version (``artifact_digest``), read
    from the evidence store and checked against its digest; a version without a stored
    artefact is an InputError."""
    from assay.data.model import load_model
    from assay.evidence import has_artifact, open_artifact
    from assay.registry import get_version
    from assay.workflow._registry import settings_of

    mv = get_version(session, model, version)
    cfg = settings_of(session, settings)
    if not mv.artifact_digest or not has_artifact(cfg, mv.artifact_digest):
        raise InputError(f"{{model}}: {model}@{version} has no model artefact in the "
                         "evidence store to score the data with", fields=["model"])
    path = folder / "model.joblib"
    path.write_bytes(open_artifact(cfg, mv.artifact_digest))
    return load_model(path)
