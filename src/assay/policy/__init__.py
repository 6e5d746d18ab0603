"""Policy as code: which checks a model must pass, per risk tier, and how they are judged.

``load_policy("credit-lending")`` (a shipped policy) or ``load_policy("my.yaml")``
gives a :class:`Policy`; ``policy.tier("high").checks`` are the
:class:`assay.checks.base.CheckSpec` entries a certification runs. Any
problem in the file is one :class:`assay.errors.PolicyError` naming the
file, line, field and what was expected. ``docs/policy.md`` documents the
format.
"""

from __future__ import annotations

from assay.policy.loader import (
    SHIPPED_DIR,
    Policy,
    Tier,
    load_check_modules,
    load_policy,
    parse_policy,
    resolve_policy_path,
    shipped_policies,
)
from assay.policy.schema import RESERVED_SECTIONS, BootstrapSettings, Settings

__all__ = [
    "RESERVED_SECTIONS",
    "SHIPPED_DIR",
    "BootstrapSettings",
    "Policy",
    "Settings",
    "Tier",
    "load_check_modules",
    "load_policy",
    "parse_policy",
    "resolve_policy_path",
    "shipped_policies",
]
