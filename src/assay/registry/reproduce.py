"""Reproducing a certification: run it again from the inputs its ``results.json``
records, and compare the two, number by number.

A results.json names its inputs by path and SHA-256 (evaluation and reference
data, the model file, the policy file) and holds the column roles, the CSV
options and the seeded bootstrap settings. :func:`reproduce` finds each input
(the file the caller names; else the recorded path when its bytes still have
the recorded digest; else the evidence store, by digest), certifies again with
the same roles and policy, and compares: the digests of the inputs, the
verdict and its summary, every check's status, value, interval and
measurements, and every number of the metrics and drift blocks. A seeded
bootstrap is deterministic, so a reproduction is exact: any difference is
reported. :func:`record_reproduction` keeps the outcome as evidence, with a row
a workflow stage can require.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.config import Settings
from assay.errors import InputError
from assay.registry import roles as R
from assay.registry.card_tables import Reproduction
from assay.registry.tables import Certification, User
from assay.registry.users import require_role
from assay.store.audit import append_event
from assay.store.db import utcnow

__all__ = ["Mismatch", "ReproductionResult", "compare_results", "list_reproductions",
           "load_results", "record_reproduction", "reproduce"]

#: Who may record a reproduction.
REPRODUCERS: tuple[str, ...] = (*R.CERTIFIERS, R.COMPLIANCE)
#: Keys of a results.json that describe the run, not its outcome: never compared.
_RUN_KEYS = frozenset({"created_at", "duration_seconds", "environment", "assay_version",
                       "path", "name"})
#: Check families that measure the machine they run on (latency, throughput, memory): a
#: reproduction measures them again and never finds the same numbers, so their values are
#: not compared (their policy entries are; a changed status shows in the summary).
MACHINE_FAMILIES = frozenset({"operational"})
_MEASURED_KEYS = frozenset({"value", "ci", "measurements", "message", "details", "worst",
                            "status", "n"})


@dataclass(frozen=True)
class Mismatch:
    """One value that differs between the recorded and the reproduced results."""

    where: str
    recorded: Any
    reproduced: Any

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "recorded": self.recorded, "reproduced": self.reproduced}


@dataclass
class ReproductionResult:
    """The outcome of a reproduction."""

    results_digest: str
    compared: int
    mismatches: list[Mismatch]
    inputs: dict[str, str] = field(default_factory=dict)  # input -> where it was found
    reproduced_results: dict[str, Any] = field(default_factory=dict)

    @property
    def reproduced(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"results_digest": self.results_digest, "reproduced": self.reproduced,
                "compared": self.compared, "inputs": dict(self.inputs),
                "mismatches": [m.to_dict() for m in self.mismatches]}


def load_results(source: str | os.PathLike[str], settings: Settings | None = None
                 ) -> tuple[dict[str, Any], bytes, Path | None]:
    """A results.json by path, or from the evidence store by digest (``sha256:...``)."""
    from assay.evidence import open_artifact

    text = str(source)
    if text.startswith("sha256:"):
        if settings is None:
            raise InputError(f"{text}: a results digest needs a store (ASSAY_HOME)")
        raw, where = open_artifact(settings, text), None
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such results.json")
        raw, where = path.read_bytes(), path
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"{text}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("policy"), Mapping) \
            or not isinstance(doc.get("data"), Mapping) or "roles" not in doc:
        raise InputError(f"{text}: not a results.json of assay certify (expected policy, data "
                         "and roles)")
    return doc, raw, where


def reproduce(source: str | os.PathLike[str], *, data: str | os.PathLike[str] | None = None,
              train: str | os.PathLike[str] | None = None,
              model: str | os.PathLike[str] | None = None,
              settings: Settings | None = None) -> ReproductionResult:
    """Certify again from the inputs ``source`` (a results.json) records and compare."""
    from assay.certification import certify
    from assay.evidence import digest_bytes

    recorded, raw, where = load_results(source, settings)
    base = where.parent if where is not None else None
    roles = recorded.get("roles") or {}
    ev = (recorded.get("data") or {}).get("evaluation") or {}
    ref = (recorded.get("data") or {}).get("reference")
    mod = recorded.get("model")
    inputs: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="assay-reproduce-") as tmp:
        missing: list[str] = []

        def find(what: str, part: Mapping[str, Any] | None, given: Any, option: str
                 ) -> str | None:
            if not part:
                if given is not None:
                    raise InputError(f"{option} {given}: the certification used no {what}")
                return None
            path = _locate(what, part, given, base, settings, Path(tmp), inputs)
            if path is None:
                missing.append(f"{what} sha256:{part.get('sha256')} (recorded at "
                               f"{part.get('path') or part.get('name')}; give {option})")
            return path

        data_path = find("evaluation data", ev, data, "--data")
        ref_path = find("reference data", ref, train, "--train")
        model_path = find("model", mod, model, "--model")
        policy = _policy(recorded.get("policy") or {}, base, settings, inputs)
        if policy is None:
            missing.append(f"policy sha256:{recorded['policy'].get('sha256')} (recorded at "
                           f"{recorded['policy'].get('path')})")
        if missing:
            raise InputError("cannot reproduce: not found by path or in the evidence store: "
                             + "; ".join(missing))
        csv = ev.get("csv") or None
        cert = certify(
            data=data_path, policy=policy, tier=str(recorded["policy"].get("tier")),
            target=roles.get("target"), model=model_path, reference=ref_path,
            prediction=roles.get("prediction"), score=roles.get("score"),
            sensitive=list(roles.get("sensitive") or []), features=roles.get("features"),
            weight=roles.get("weight"),
            positive_label=roles.get("positive_label", 1), task=roles.get("task",
                                                                         "classification"),
            na_values=(csv or {}).get("na_values") or None,
            csv={"delimiter": csv["delimiter"]} if csv and csv.get("delimiter") else None,
            red_team=_recorded_red_team(recorded))
        again = json.loads(cert.to_json())
    compared, mismatches = compare_results(recorded, again)
    return ReproductionResult(results_digest=digest_bytes(raw), compared=compared,
                              mismatches=mismatches, inputs=inputs, reproduced_results=again)


def _recorded_red_team(recorded: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The red-team findings the certification judged (as its ``security.red_team``
    details recorded them), so that the reproduction judges the same ones."""
    for c in recorded.get("checks") or []:
        if isinstance(c, Mapping) and c.get("id") == "security.red_team":
            found = (c.get("details") or {}).get("findings")
            if isinstance(found, list) and found:
                return [dict(f) for f in found if isinstance(f, Mapping)]
    return None


def compare_results(recorded: Mapping[str, Any], again: Mapping[str, Any]
                    ) -> tuple[int, list[Mismatch]]:
    """How many values were compared, and those that differ (exactly: numbers too).

    The checks of :data:`MACHINE_FAMILIES` are compared by their policy entry only: what
    they measure is the machine's speed, not the model's outcome."""
    mismatches: list[Mismatch] = []
    count = 0
    parts = [("policy.sha256", (recorded.get("policy") or {}).get("sha256"),
              (again.get("policy") or {}).get("sha256")),
             ("model.sha256", (recorded.get("model") or {}).get("sha256"),
              (again.get("model") or {}).get("sha256"))]
    for key in ("evaluation", "reference"):
        a = ((recorded.get("data") or {}).get(key)) or {}
        b = ((again.get("data") or {}).get(key)) or {}
        parts += [(f"data.{key}.sha256", a.get("sha256"), b.get("sha256")),
                  (f"data.{key}.rows", a.get("rows"), b.get("rows"))]
    for where, a, b in parts:
        count += 1
        if a != b:
            mismatches.append(Mismatch(where, a, b))
    for key in ("status", "summary", "metrics", "drift"):
        for where, a, b in _pairs(recorded.get(key), again.get(key), key):
            count += 1
            if not _same(a, b):
                mismatches.append(Mismatch(where, a, b))
    rec_checks = {c.get("id"): c for c in recorded.get("checks") or []}
    new_checks = {c.get("id"): c for c in again.get("checks") or []}
    for cid in list(rec_checks) + [c for c in new_checks if c not in rec_checks]:
        old, new = rec_checks.get(cid), new_checks.get(cid)
        if old is not None and new is not None and old.get("family") in MACHINE_FAMILIES:
            old, new = _policy_part(old), _policy_part(new)
        for where, a, b in _pairs(old, new, f"check {cid}"):
            count += 1
            if not _same(a, b):
                mismatches.append(Mismatch(where, a, b))
    return count, mismatches


def _policy_part(check: Mapping[str, Any]) -> dict[str, Any]:
    """A check of a machine-measuring family without what it measured."""
    return {k: v for k, v in check.items() if k not in _MEASURED_KEYS}


def record_reproduction(session: Session, actor: User, result: ReproductionResult, *,
                        settings: Settings | None = None,
                        now: datetime | None = None) -> Reproduction:
    """Keep a reproduction as evidence, tied to the certification whose results it re-ran
    (when the store holds it)."""
    from assay.evidence import store_bytes
    from assay.registry.policies import settings_of

    require_role(actor, *REPRODUCERS, action="record reproductions")
    cert = session.scalars(select(Certification)
                           .where(Certification.results_digest == result.results_digest)
                           .order_by(Certification.id.desc()).limit(1)).first()
    st = settings_of(session, settings)
    body = json.dumps(result.to_dict(), sort_keys=True, ensure_ascii=False,
                      default=str).encode("utf-8")
    digest = store_bytes(st, body)
    row = Reproduction(model_version_id=cert.model_version_id if cert else None,
                       certification_id=cert.id if cert else None,
                       results_digest=result.results_digest, reproduced=result.reproduced,
                       compared=result.compared,
                       mismatches=json.loads(json.dumps([m.to_dict()
                                                         for m in result.mismatches[:200]],
                                                        default=str)),
                       record_digest=digest, created_by=actor.id, created_at=now or utcnow())
    session.add(row)
    session.flush()
    subject = (f"{cert.model_version.model.name}@{cert.model_version.version}" if cert
               else result.results_digest)
    append_event(session, actor=actor, action="certification.reproduce",
                 subject_type="model_version" if cert else "results", subject_id=subject,
                 payload={"reproduced": result.reproduced, "compared": result.compared,
                          "mismatches": len(result.mismatches),
                          "certification_id": row.certification_id},
                 evidence={"results": result.results_digest, "reproduction": digest})
    return row


def list_reproductions(session: Session, model: str, version: str) -> list[Reproduction]:
    """The recorded reproductions of a version's certifications, oldest first."""
    from assay.registry.models import get_version

    mv = get_version(session, model, version)
    return list(session.scalars(select(Reproduction)
                                .where(Reproduction.model_version_id == mv.id)
                                .order_by(Reproduction.id)))


# --------------------------------------------------------------------------- helpers


def _locate(what: str, part: Mapping[str, Any], given: Any, base: Path | None,
            settings: Settings | None, tmp: Path, inputs: dict[str, str]) -> str | None:
    from assay.evidence import artifact_path, digest_file, has_artifact

    want = "sha256:" + str(part.get("sha256") or "")
    suffix = Path(str(part.get("path") or part.get("name") or "")).suffix
    if given is not None:
        p = Path(given)
        if not p.is_file():
            raise InputError(f"{p}: no such {what} file")
        inputs[what] = str(p)
        return str(p)
    recorded = part.get("path")
    if recorded:
        candidates = [Path(recorded)] if Path(recorded).is_absolute() else \
            [c for c in ((base / recorded) if base else None, Path(recorded)) if c is not None]
        for c in candidates:
            if c.is_file() and digest_file(c) == want:
                inputs[what] = str(c)
                return str(c)
    if settings is not None and part.get("sha256") and has_artifact(settings, want):
        dest = tmp / f"{what.replace(' ', '-')}{suffix}"
        shutil.copyfile(artifact_path(settings, want), dest)
        inputs[what] = f"evidence store {want}"
        return str(dest)
    return None


def _policy(claimed: Mapping[str, Any], base: Path | None, settings: Settings | None,
            inputs: dict[str, str]) -> Any:
    from assay.evidence import artifact_path, digest_file, has_artifact
    from assay.policy import load_policy
    from assay.policy.loader import SHIPPED_DIR

    want = "sha256:" + str(claimed.get("sha256") or "")
    recorded = claimed.get("path")
    candidates: list[Path] = []
    if recorded:
        candidates += [Path(recorded)] + ([base / recorded] if base else [])
    candidates += sorted(SHIPPED_DIR.glob("*.yaml"))
    if settings is not None and claimed.get("sha256") and has_artifact(settings, want):
        candidates.append(artifact_path(settings, want))
    for c in candidates:
        if c.is_file() and digest_file(c) == want:
            inputs["policy"] = str(c)
            return load_policy(c)
    return None


def _pairs(a: Any, b: Any, where: str) -> Iterator[tuple[str, Any, Any]]:
    """Leaf values of two JSON documents side by side (missing on one side: None)."""
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        a = a if isinstance(a, Mapping) else {}
        b = b if isinstance(b, Mapping) else {}
        for k in list(a) + [k for k in b if k not in a]:
            if k in _RUN_KEYS:
                continue
            yield from _pairs(a.get(k), b.get(k), f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            label = x.get("label") if isinstance(x, Mapping) and "label" in x else i
            yield from _pairs(x, y, f"{where}[{label}]")
    else:
        yield where, a, b


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)
