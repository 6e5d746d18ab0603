"""results.json documents for tests that record certifications.

``genuine_results`` runs ``assay certify`` for real on a small synthetic data
set; ``consistent_results`` builds, without data, the document ``certify``
would write if every check of a tier measured a value that passes (or, for
the ids in ``failed``, fails) its threshold: judged by the check framework's
own functions, so it is consistent with the policy the way the registry
verifies it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assay import __version__
from assay.certification import SCHEMA_VERSION, certify, verdict
from assay.checks.base import CheckResult, Measurement, check_status, judge
from assay.policy import Policy, load_policy


def frame(n: int = 600, seed: int = 7) -> pd.DataFrame:
    """A binary-classification evaluation set with a score, a prediction and a group."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.2, n), 0, 1)
    return pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                         "sex": rng.choice(["f", "m"], n), "y": y, "score": score,
                         "pred": (score >= 0.5).astype(int)})


def genuine_results(out_dir: Path, *, policy: str | Path = "default", tier: str = "low",
                    data: pd.DataFrame | None = None) -> Path:
    """Run ``certify`` and write results.json and report.html to ``out_dir``; return the
    results path."""
    cert = certify(data=frame() if data is None else data, policy=policy, tier=tier,
                   target="y", score="score", prediction="pred", sensitive=["sex"])
    return cert.write(out_dir)["results.json"]


def consistent_results(policy: str | Path | Policy, tier: str, *, failed: tuple[str, ...] = (),
                       model_sha: str | None = None,
                       values: dict[str, float] | None = None) -> dict[str, Any]:
    """A results.json document for ``tier`` of ``policy``: each check passes, or fails when
    its id is in ``failed``; a check named in ``values`` measures that value (and is judged
    on it)."""
    pol = load_policy(policy)
    tier_obj = pol.tier(tier)
    results: list[CheckResult] = []
    for spec in tier_obj.checks:
        value = 0.0
        t = spec.threshold
        if t is not None:
            if spec.id in failed:
                value = t.min - 1.0 if t.min is not None else t.max + 1.0  # type: ignore
            else:
                value = t.min if t.min is not None else t.max  # type: ignore
        if values and spec.id in values:
            value = values[spec.id]
        m = Measurement(label="overall", value=value, n=1000)
        m.status = judge(m, t, spec.judge_on)
        results.append(CheckResult(
            id=spec.id, family=spec.id.split(".", 1)[0], title=spec.name or spec.id,
            status=check_status([m.status], spec.severity), severity=spec.severity,
            judge_on=spec.judge_on, threshold=t, measurements=[m], message="",
            rationale=spec.rationale, regulations=list(spec.regulations), source=spec.source))
    summary = {s: 0 for s in ("pass", "warn", "fail", "skip", "error")}
    for r in results:
        summary[str(r.status)] += 1
    return {
        "schema_version": SCHEMA_VERSION, "assay_version": __version__,
        "created_at": "2026-11-29T10:00:00Z",
        "status": verdict(results, pol.settings),
        "policy": pol.to_dict(tier),
        "model": ({"path": "model.joblib", "sha256": model_sha.removeprefix("sha256:"),
                   "kind": "sklearn"} if model_sha else None),
        "data": {"evaluation": {"name": "eval.parquet", "sha256": "ef" * 32, "rows": 1000},
                 "reference": None},
        "roles": {}, "settings": pol.settings.model_dump(mode="json"),
        "environment": {}, "summary": summary,
        "checks": [json.loads(json.dumps(r.to_dict())) for r in results],
        "metrics": None, "notes": [],
    }
