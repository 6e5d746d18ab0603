"""Find the policy a submission is judged under and read its ``workflow`` section.

Uses :func:`assay.policy.load_policy` when it is available and falls back to
reading the YAML file directly (shipped policies by name, or a path), so the
workflow only needs the policy's name, version, digest and raw sections.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assay.errors import PolicyError
from assay.workflow.config import WorkflowConfig, parse_workflow

SHIPPED = Path(__file__).resolve().parent.parent / "policy" / "policies"


@dataclass(frozen=True)
class PolicyInfo:
    """What the workflow needs to know about one policy."""

    name: str
    version: str
    digest: str  # "sha256:<hex>" of the policy file
    workflow: WorkflowConfig


def _digest(value: str) -> str:
    return value if value.startswith("sha256:") else f"sha256:{value}"


def _from_yaml(name_or_path: str) -> PolicyInfo:
    path = Path(name_or_path)
    if not path.is_file():
        path = SHIPPED / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
        raise PolicyError(
            f"policy '{name_or_path}' not found: expected a file or one of the shipped policies "
            + (", ".join(shipped) or "(none)")
        )
    raw = path.read_bytes()
    try:
        doc = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return PolicyInfo(
        name=str(doc.get("name") or path.stem),
        version=str(doc.get("version", "")),
        digest="sha256:" + hashlib.sha256(raw).hexdigest(),
        workflow=parse_workflow(doc.get("workflow"), source=str(path)),
    )


_CACHE: dict[tuple[str, str], PolicyInfo] = {}
_CACHE_SIZE = 64


def load_policy_info(name_or_path: str) -> PolicyInfo:
    """Load a policy by shipped name or path; errors are :class:`PolicyError`.

    Status and gate queries re-read the policy every time (a changed file is
    a change-control event); parsed results are reused while the file's bytes
    are unchanged.
    """
    try:
        from assay.policy import load_policy, resolve_policy_path
    except ImportError:
        return _from_yaml(name_or_path)
    path = resolve_policy_path(name_or_path)
    try:
        key = (str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest())
    except OSError as exc:
        raise PolicyError(f"policy '{name_or_path}': cannot be read: {exc}") from None
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    info = _from_policy(load_policy(str(path)), str(name_or_path))
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    _CACHE[key] = info
    return info


def _from_policy(policy: Any, name_or_path: str) -> PolicyInfo:
    extra = getattr(policy, "extra_sections", None) or {}
    source = str(getattr(policy, "source", None) or getattr(policy, "path", None)
                 or name_or_path)
    return PolicyInfo(
        name=str(policy.name),
        version=str(policy.version),
        digest=_digest(str(policy.sha256)),
        workflow=parse_workflow(extra.get("workflow"), source=source,
                                where=getattr(policy, "where", None)),
    )
