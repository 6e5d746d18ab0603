"""A small, realistic governance history in a store: for trying the web UI,
the benchmark and the service's end-to-end tests.

``populate(store, password=...)`` adds people with every role, a sample
policy (written under ``ASSAY_HOME`` and registered in the store), models with versions, a recorded
certification with per-group metrics and calibration, a risk assessment and
register entries, and submissions at different stages. Everything goes
through the domain functions, so the audit trail is real.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

#: People and their roles.
USERS: dict[str, tuple[str, list[str]]] = {
    "admin": ("Ada Admin", ["admin"]),
    "dana": ("Dana Developer", ["data_scientist"]),
    "vic": ("Vic Validator", ["validator"]),
    "vera": ("Vera Validator", ["validator"]),
    "rita": ("Rita Risk", ["risk_officer"]),
    "bob": ("Bob Business", ["business_owner"]),
    "cora": ("Cora Compliance", ["compliance"]),
    "sid": ("Sid Security", ["security"]),
    "aud": ("Audrey Auditor", ["auditor"]),
}

WORKFLOW = {
    "approval_valid_days": {"default": 365},
    "waivers": {"granted_by": {"default": ["risk_officer"]}, "max_days": 90},
    "stages": [
        {"id": "scope", "title": "Requirements and scope", "evidence": ["documents"],
         "signoff": {"default": {"roles": ["business_owner"]}}},
        {"id": "validation", "title": "Independent validation", "evidence": ["certification"],
         "independent": True, "signoff": {"default": {"roles": ["validator"]}}},
        {"id": "deployment_approval", "title": "Deployment approval",
         "evidence": ["certification"],
         "signoff": {"default": {"roles": ["risk_officer"]},
                     "high": {"roles": ["risk_officer", "business_owner"], "approvers": 2}}},
    ],
}


@dataclass
class Sample:
    policy_path: Path
    policy_digest: str
    users: list[str]
    models: list[str]
    submitted: list[tuple[str, str]] = field(default_factory=list)


#: The checks of every tier of the sample policy (``sample_results`` holds their outcomes).
CHECKS = [
    {"id": "performance.roc_auc", "threshold": {"min": 0.75}, "judge": "interval",
     "severity": "block"},
    {"id": "fairness.demographic_parity_ratio", "threshold": {"min": 0.4}, "severity": "warn"},
    {"id": "fairness.equal_opportunity_difference", "threshold": {"max": 0.1},
     "severity": "block"},
    {"id": "performance.ece", "threshold": {"max": 0.05}, "severity": "block"},
]


def write_policy(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "sample-policy.yaml"
    doc = {"name": "sample", "version": "1",
           "description": "Sample policy for the assay web UI and its tests",
           "tiers": {"high": {"checks": CHECKS}, "medium": {"extends": "high"},
                     "low": {"extends": "high"}},
           "risk": {"require_questionnaire": False},
           "workflow": WORKFLOW}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _measure(label: str, value: float, half: float) -> dict[str, Any]:
    return {"label": label, "value": value, "ci": [round(value - half, 4),
                                                   round(value + half, 4)],
            "n": 2000, "judged": True, "note": None}


def _judged(check: dict[str, Any]) -> dict[str, Any]:
    """Judge a sample check as the check framework does, so the results are consistent."""
    from assay.checks.base import JudgeOn, Measurement, Severity, Threshold, check_status, judge

    threshold = Threshold(**check["threshold"])
    statuses = []
    for m in check["measurements"]:
        status = judge(Measurement(m["label"], m["value"], tuple(m["ci"])), threshold,
                       JudgeOn(check["judge_on"]))
        m["status"] = str(status)
        statuses.append(status)
    check["status"] = str(check_status(statuses, Severity(check["severity"])))
    worst = check["measurements"][0]
    check.update(value=worst["value"], ci=worst["ci"], worst=worst["label"])
    check.setdefault("message", f"{worst['label']}: {worst['value']:.4g}, required "
                                f"{threshold.describe()}")
    check.update(rationale="", regulations=[], details={}, source=None)
    return check


def sample_results(policy_path: Path, *, tier: str = "high", status: str = "passed",
                   artifact: str | None = None) -> dict[str, Any]:
    """A results.json document in the certification schema (schema_version 1.0).

    Its checks are those of the sample policy (:func:`write_policy`), judged
    as ``assay certify`` judges them: ``passed`` passes every check,
    ``passed_with_warnings`` misses the (warn-severity) parity ratio, and
    ``blocked`` also fails the AUC.
    """
    from assay.certification import verdict
    from assay.checks.base import CheckResult, Severity, Status
    from assay.policy import Settings

    digest = hashlib.sha256(policy_path.read_bytes()).hexdigest()
    by_sex = {
        "Female": {"n": 5421, "metrics": {"accuracy": {"value": 0.912, "ci": [0.904, 0.919]},
                                          "selection_rate": {"value": 0.081,
                                                             "ci": [0.074, 0.088]},
                                          "true_positive_rate": {"value": 0.602,
                                                                 "ci": [0.561, 0.641]}}},
        "Male": {"n": 10860, "metrics": {"accuracy": {"value": 0.842, "ci": [0.835, 0.849]},
                                         "selection_rate": {"value": 0.201,
                                                            "ci": [0.193, 0.209]},
                                         "true_positive_rate": {"value": 0.655,
                                                                "ci": [0.640, 0.670]}}},
    }
    bins = [i / 10 for i in range(11)]
    auc = 0.70 if status == "blocked" else 0.905
    ratio = 0.403 if status == "passed" else 0.38
    checks = [_judged(c) for c in [
        {"id": "performance.roc_auc", "family": "performance", "title": "ROC AUC",
         "severity": "block", "judge_on": "interval", "threshold": {"min": 0.75},
         "measurements": [_measure("overall", auc, 0.02 if status == "blocked" else 0.006)]},
        {"id": "fairness.demographic_parity_ratio", "family": "fairness",
         "title": "Demographic parity ratio", "severity": "warn", "judge_on": "point",
         "threshold": {"min": 0.4}, "measurements": [_measure("sex", ratio, 0.045)]},
        {"id": "fairness.equal_opportunity_difference", "family": "fairness",
         "title": "Equal opportunity difference", "severity": "block", "judge_on": "point",
         "threshold": {"max": 0.1}, "measurements": [_measure("Female vs Male", 0.053, 0.042)]},
        {"id": "performance.ece", "family": "performance", "title": "Expected calibration error",
         "severity": "block", "judge_on": "point", "threshold": {"max": 0.05},
         "measurements": [_measure("overall", 0.018, 0.006)]},
    ]]
    summary = {k: sum(1 for c in checks if c["status"] == k)
               for k in ("pass", "warn", "fail", "skip", "error")}
    judged = [CheckResult(id=c["id"], family=c["family"], title=c["title"],
                          status=Status(c["status"]), severity=Severity(c["severity"]),
                          judge_on=c["judge_on"], threshold=None) for c in checks]
    settings = Settings()
    computed = verdict(judged, settings)
    if computed != status:
        raise ValueError(f"sample results: expected status passed, passed_with_warnings or "
                         f"blocked, got {status!r}")
    return {
        "schema_version": "1.0", "assay_version": "0.1.0",
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "status": status,
        "policy": {"name": "sample", "version": "1", "tier": tier, "path": str(policy_path),
                   "sha256": digest},
        "model": ({"path": "model.joblib", "sha256": artifact.removeprefix("sha256:"),
                   "kind": "sklearn"} if artifact else None),
        "data": {"evaluation": {"name": "adult-test.parquet", "sha256": "c" * 64, "rows": 16281},
                 "reference": None},
        "roles": {"target": "income", "prediction": "pred", "score": "score",
                  "sensitive": ["sex"], "features": None, "weight": None,
                  "positive_label": ">50K", "task": "classification"},
        "settings": settings.model_dump(mode="json"),
        "environment": {"python": "3.11", "platform": "linux", "packages": {}},
        "summary": summary,
        "checks": checks,
        "metrics": {
            "overall": {"accuracy": {"value": 0.865, "ci": [0.86, 0.87]},
                        "auc": {"value": auc, "ci": [round(auc - 0.006, 4),
                                                     round(auc + 0.006, 4)]}},
            "by_group": {"sex": by_sex},
            "fairness": {"sex": {"demographic_parity_ratio": {"value": ratio,
                                                              "ci": [0.36, 0.45]},
                                 "equal_opportunity_difference": {"value": 0.053,
                                                                  "ci": [0.011, 0.095]}}},
            "calibration": {"bin_edges": bins,
                            "mean_predicted": [0.03, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65,
                                               0.75, 0.85, 0.95],
                            "fraction_positive": [0.02, 0.13, 0.27, 0.33, 0.47, 0.52, 0.68,
                                                  0.73, 0.86, 0.94],
                            "count": [8000, 2100, 1200, 900, 800, 700, 650, 700, 600, 631]},
        },
    }


def record(store, actor_name: str, model: str, version: str, results: dict[str, Any], *,
           report: bool = True) -> int:
    from assay.registry import get_user, record_certification
    from assay.report import render_report

    raw = json.dumps(results, indent=2, sort_keys=True).encode()
    html = render_report(results).encode() if report else None
    with store.transaction() as s:
        cert = record_certification(s, get_user(s, actor_name), model, version, None, raw,
                                    html, settings=store.settings)
        return cert.id


def populate(store, *, password: str, models: int = 3, submissions: int = 0,
             reports: bool = True) -> Sample:
    """Fill an empty store with the sample history; every user gets ``password``.

    ``models`` models are registered (at least one); the first, ``credit-scoring``,
    is certified, risk-assessed and in review at its validation stage; the
    second waits at the scope stage. ``submissions`` extra models are
    submitted and wait at the scope stage (for load tests of sign-offs).
    ``reports=False`` records certifications without their HTML report (the
    service then renders it from the results when asked).
    """
    from assay.auth.service import set_password
    from assay.registry import (
        add_user,
        add_version,
        get_user,
        register_model,
        register_policy,
    )
    from assay.risk import service as risk
    from assay.workflow import service as wf

    policy_path = write_policy(store.settings.home)
    with store.transaction() as s:
        admin = add_user(s, None, "admin", display_name=USERS["admin"][0], roles=["admin"])
        for name, (display, roles) in USERS.items():
            if name != "admin":
                add_user(s, admin, name, display_name=display, roles=roles)
        for name in USERS:
            user = get_user(s, name)
            set_password(s, user, name, password, one_time=False)
        register_policy(s, admin, policy_path.read_bytes(), source=policy_path.name,
                        settings=store.settings)

    names = ["credit-scoring", "fraud-alerts", "churn-propensity", "claims-triage",
             "readmission-risk"]
    purposes = ["Probability of default for consumer loan applications",
                "Flags card transactions for fraud review",
                "Predicts customers likely to leave within 90 days",
                "Routes insurance claims to fast-track or investigation",
                "30-day hospital readmission risk for discharge planning"]
    total = max(1, models) + submissions
    all_names = [names[i] if i < len(names) else f"model-{i:04d}" for i in range(total)]
    sample = Sample(policy_path, "", list(USERS), all_names[:max(1, models)])
    tiers = ["high", "medium", "low"]
    for i, name in enumerate(all_names):
        artifact = "sha256:" + hashlib.sha256(f"{name}-1.0".encode()).hexdigest()
        with store.transaction() as s:
            dana = get_user(s, "dana")
            register_model(s, dana, name, owner="bob", decision_type="automated",
                           criticality=["high", "medium", "low"][i % 3],
                           purpose=purposes[i] if i < len(purposes) else "Load-test model",
                           business_unit=["Retail lending", "Payments", "Marketing"][i % 3],
                           deployment_status="validation")
            add_version(s, dana, name, "1.0", artifact_digest=artifact,
                        training_data_source="adult-train.parquet",
                        evaluation_data_source="adult-test.parquet", code_revision="9f1c2ab")
        tier = tiers[i % 3] if i < max(1, models) else "medium"
        if i == 0:
            with store.transaction() as s:
                risk.assess(s, get_user(s, "rita"), name, "1.0", categories={
                    "fairness_bias": {"likelihood": 4, "impact": 4,
                                      "rationale": "Gender gap in selection rate"},
                    "model_performance": {"likelihood": 2, "impact": 4,
                                          "rationale": "Stable AUC over two years of data"},
                    "privacy": {"likelihood": 2, "impact": 3,
                                "rationale": "No direct identifiers in features"},
                    "data_quality": {"likelihood": 2, "impact": 3,
                                     "rationale": "Census data with known missing values"},
                    "security": {"likelihood": 1, "impact": 3,
                                 "rationale": "Internal scoring service, no public endpoint"},
                    "operational_reliability": {"likelihood": 2, "impact": 2,
                                                "rationale": "Batch scoring with fallback"},
                    "regulatory_exposure": {"likelihood": 3, "impact": 5,
                                            "rationale": "Credit decisions: fair lending law"},
                }, notes="Initial assessment", policy=str(policy_path))
                r = risk.add_risk(s, get_user(s, "rita"), name, title="Selection-rate gap by sex",
                                  category="fairness_bias", likelihood=4, impact=4, version="1.0")
                risk.add_mitigation(s, get_user(s, "rita"), r.id,
                                    title="Reweigh training data",
                                    success_criteria="DP ratio >= 0.8 on the next certification",
                                    estimated_cost=12000, estimated_days=15)
                risk.add_risk(s, get_user(s, "vic"), name, title="Drift in income distribution",
                              category="model_performance", likelihood=3, impact=3)
        else:
            with store.transaction() as s:
                from assay.registry import set_model_tier

                set_model_tier(s, get_user(s, "rita"), name, tier)
        if i == 0 or i >= max(1, models) or i == 1:
            record(store, "vic", name, "1.0", sample_results(
                policy_path, tier=tier if i else "high", artifact=artifact,
                status="passed" if i != 1 else "passed_with_warnings"),
                report=reports and i < max(1, models))
            with store.transaction() as s:
                wf.submit(s, get_user(s, "dana"), name, "1.0", policy=str(policy_path))
            sample.submitted.append((name, "1.0"))
        if i == 0:
            from assay.evidence import store_bytes

            digest = store_bytes(store.settings, b"Scope: consumer loans up to 50k EUR.\n")
            with store.transaction() as s:
                wf.approve(s, get_user(s, "bob"), name, "1.0", stage="scope",
                           documents={"scope.txt": digest},
                           comment="Scope agreed with the lending committee")
    sample.policy_digest = "sha256:" + hashlib.sha256(policy_path.read_bytes()).hexdigest()
    return sample
