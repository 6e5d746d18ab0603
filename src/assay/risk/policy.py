"""Read what risk needs from a policy, and what a tier sets.

Uses :func:`assay.policy.load_policy` when it is available and otherwise reads
the YAML file directly (a shipped policy by name, or a path), so risk only
depends on a policy's name, version, digest, its ``risk`` and ``workflow``
sections and the check ids of each tier.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assay.errors import PolicyError
from assay.risk.config import TIERS, RiskConfig, parse_risk

SHIPPED = Path(__file__).resolve().parent.parent / "policy" / "policies"


@dataclass(frozen=True)
class RiskPolicy:
    """The parts of a policy risk tiering uses."""

    name: str
    version: str
    digest: str  # "sha256:<hex>" of the policy file
    risk: RiskConfig
    source: str
    checks: dict[str, list[str]] = field(default_factory=dict)  # tier -> check ids
    sections: dict[str, Any] = field(default_factory=dict)  # raw workflow / monitoring sections


def _digest(value: str) -> str:
    return value if value.startswith("sha256:") else f"sha256:{value}"


def _tier_checks_from_yaml(doc: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    tiers = doc.get("tiers")
    if isinstance(tiers, dict):
        for name, body in tiers.items():
            entries = body.get("checks") if isinstance(body, dict) else body
            ids = []
            for e in entries or []:
                if isinstance(e, dict) and "id" in e:
                    ids.append(str(e["id"]))
                elif isinstance(e, str):
                    ids.append(e)
            out[str(name)] = ids
    return out


def _from_yaml(name_or_path: str | Path) -> RiskPolicy:
    path = Path(name_or_path)
    if not path.is_file():
        path = SHIPPED / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
        raise PolicyError(f"policy '{name_or_path}' not found: expected a file or one of the "
                          "shipped policies " + (", ".join(shipped) or "(none)"))
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return RiskPolicy(
        name=str(doc.get("name") or path.stem),
        version=str(doc.get("version", "")),
        digest="sha256:" + hashlib.sha256(raw).hexdigest(),
        risk=parse_risk(doc.get("risk"), source=str(path)),
        source=str(path),
        checks=_tier_checks_from_yaml(doc),
        sections={k: doc.get(k) for k in ("workflow", "monitoring") if k in doc},
    )


def _from_policy_object(policy: Any, fallback_name: str) -> RiskPolicy:
    extra = dict(getattr(policy, "extra_sections", None) or {})
    source = str(getattr(policy, "path", None) or getattr(policy, "source", None) or fallback_name)
    checks: dict[str, list[str]] = {}
    for tier in TIERS:
        try:
            specs = policy.tier(tier).checks
        except Exception:  # a policy need not define every tier
            continue
        checks[tier] = [str(getattr(s, "id", s)) for s in specs]
    return RiskPolicy(
        name=str(policy.name),
        version=str(policy.version),
        digest=_digest(str(policy.sha256)),
        risk=parse_risk(extra.get("risk"), source=source),
        source=source,
        checks=checks,
        sections={k: extra[k] for k in ("workflow", "monitoring") if k in extra},
    )


def load_risk_policy(policy: Any = "default") -> RiskPolicy:
    """A :class:`RiskPolicy` from a shipped name, a path, or a loaded policy object."""
    if isinstance(policy, RiskPolicy):
        return policy
    if not isinstance(policy, str | Path):
        return _from_policy_object(policy, "policy")
    try:
        from assay.policy import load_policy  # type: ignore[attr-defined]
    except ImportError:
        return _from_yaml(policy)
    return _from_policy_object(load_policy(str(policy)), str(policy))


def tier_requirements(policy: Any, tier: str) -> dict[str, Any]:
    """What a tier sets: checks certification requires, sign-off roles, review interval, monitoring.

    ``signoff_roles`` maps each workflow stage that is not skipped for this
    tier to the roles that must sign it (from the policy's ``workflow``
    section, or the workflow defaults when it has none).
    """
    rp = load_risk_policy(policy)
    if tier not in TIERS:
        raise PolicyError(f"{rp.source}: unknown tier '{tier}'; expected high, medium or low")
    settings = rp.risk.tier(tier)
    signoff: dict[str, list[str]] = {}
    try:
        from assay.workflow.config import parse_workflow
    except ImportError:  # the workflow package is optional for risk
        parse_workflow = None  # type: ignore[assignment]
    if parse_workflow is not None:
        wf = parse_workflow(rp.sections.get("workflow"), source=rp.source)
        for stage in wf.stages:
            s = stage.for_tier(tier)
            if not s.skip:
                signoff[stage.id] = list(s.roles)
    return {
        "checks": list(rp.checks.get(tier, [])),
        "signoff_roles": signoff,
        "review_interval_days": settings.review_interval_days,
        "monitoring": dict(settings.monitoring),
    }
