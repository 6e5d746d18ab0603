"""Models in the inventory and their versions with lineage.

Every function takes the session and the acting :class:`User`, checks the
actor's rights, writes, and appends an audit event in the same transaction.
None of them commits: the caller owns the transaction (``store.transaction()``),
so an operation is recorded whole, with its audit event, or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.registry import roles as R
from assay.registry.tables import (
    CRITICALITIES,
    DECISION_TYPES,
    DEPLOYMENT_STATUSES,
    TIERS,
    Model,
    ModelVersion,
    User,
)
from assay.registry.users import get_user, require_role
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

__all__ = [
    "LATEST",
    "MODEL_FIELDS",
    "VERSION_FIELDS",
    "add_version",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "register_model",
    "set_model_tier",
    "update_model",
]

#: ``parent_version`` default of :func:`add_version`: the model's newest version.
LATEST = "latest"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")

#: Model fields that :func:`register_model` and :func:`update_model` accept.
MODEL_FIELDS = ("purpose", "intended_use", "out_of_scope_uses", "owner", "business_unit",
                "stakeholders", "decision_type", "deployment_status", "criticality",
                "next_review_at")
#: Version fields that :func:`add_version` accepts.
VERSION_FIELDS = ("artifact_digest", "training_data_digest", "training_data_source",
                  "evaluation_data_digest", "evaluation_data_source", "feature_pipeline",
                  "code_revision", "parent_version")



def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    v = str(value).strip().lower().replace("-", "_") if value is not None else ""
    if v not in choices:
        raise InputError(f"{field} '{value}': expected one of {', '.join(choices)}")
    return v


def _text(field: str, value: Any, *, limit: int = 20000) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{field}: expected text, got {type(value).__name__}")
    if len(value) > limit:
        raise InputError(f"{field}: at most {limit} characters, got {len(value)}")
    return value.strip()


def _stakeholders(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = [s.strip() for s in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = []
        for s in value:
            if not isinstance(s, str):
                raise InputError(f"stakeholders: expected a list of names, got {s!r}")
            items.append(s.strip())
    else:
        raise InputError(f"stakeholders: expected a list of names, got {type(value).__name__}")
    return [s for s in items if s]


def _when(field: str, value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if hasattr(value, "isoformat") and not isinstance(value, str):  # a date
        return as_utc(datetime(value.year, value.month, value.day))
    try:
        return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        raise InputError(f"{field} '{value}': expected an ISO date like 2027-01-31") from None


def _digest(field: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    from assay.evidence import normalise_digest

    try:
        return normalise_digest(str(value))
    except InputError:
        raise InputError(f"{field} '{value}': expected 'sha256:<64 hex digits>'") from None


def _model_values(session: Session, fields: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    unknown = set(fields) - set(MODEL_FIELDS)
    if unknown:
        raise InputError(f"unknown model field(s) {', '.join(sorted(unknown))}: expected "
                         f"{', '.join(MODEL_FIELDS)}")
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "owner":
            if not value:
                raise InputError("owner: expected the user name of the model's owner")
            out["owner_id"] = get_user(session, str(value)).id
        elif key == "stakeholders":
            out[key] = _stakeholders(value)
        elif key == "decision_type":
            out[key] = _choice(key, value, DECISION_TYPES)
        elif key == "deployment_status":
            out[key] = _choice(key, value, DEPLOYMENT_STATUSES)
        elif key == "criticality":
            out[key] = _choice(key, value, CRITICALITIES)
        elif key == "next_review_at":
            out[key] = _when(key, value)
        else:
            out[key] = _text(key, value)
    if not partial:
        for key in ("owner_id", "decision_type", "criticality"):
            if key not in out:
                raise InputError(f"{key.removesuffix('_id')}: required to register a model")
    return out


def register_model(session: Session, actor: User, name: str, **fields: Any) -> Model:
    """Add a model to the inventory.

    Required: ``owner`` (a user name), ``decision_type`` (automated or
    human_in_the_loop) and ``criticality`` (low, medium, high, critical).
    Optional: purpose, intended_use, out_of_scope_uses, business_unit,
    stakeholders (list), deployment_status (default ``development``),
    next_review_at.
    """
    require_role(actor, *R.MODEL_WRITERS, action="register models")
    if not isinstance(name, str) or not _NAME.match(name or ""):
        raise InputError(f"model name '{name}': expected 1-200 characters of letters, digits, "
                         "'.', '_', '-', starting with a letter or digit")
    values = _model_values(session, fields, partial=False)
    values.setdefault("deployment_status", "development")
    if values["deployment_status"] == "deployed":
        raise ConflictError(f"model '{name}': a new model cannot be registered as 'deployed': "
                            "no version of it has passed the deployment gate; register it, "
                            "then set 'deployed' once the gate allows one of its versions")
    if session.scalars(select(Model.id).where(Model.name == name)).first() is not None:
        raise ConflictError(f"model '{name}' is already registered")
    model = Model(name=name, created_at=utcnow(), created_by=actor.id, **values)
    session.add(model)
    session.flush()
    append_event(session, actor=actor, action="model.register", subject_type="model",
                 subject_id=name, payload=model.to_dict())
    return model


def get_model(session: Session, name: str) -> Model:
    model = session.scalars(select(Model).where(Model.name == name)).first()
    if model is None:
        raise NotFoundError(f"unknown model '{name}' (see `assay model list`)")
    return model


def list_models(session: Session, *, tier: str | None = None,
                status: str | None = None) -> list[Model]:
    stmt = select(Model).order_by(Model.name)
    if tier:
        stmt = stmt.where(Model.tier == _choice("tier", tier, TIERS))
    if status:
        stmt = stmt.where(Model.deployment_status == _choice("status", status,
                                                              DEPLOYMENT_STATUSES))
    return list(session.scalars(stmt))


def _require_deployable(session: Session, name: str, model_id: int,
                        gate: Callable[[Session, str, str], Any] | None) -> None:
    """ConflictError unless the deployment gate allows at least one version of the model:
    ``deployed`` in the inventory must never say more than the gate does. The gate is
    the workflow's (the only one), handed in by :func:`assay.workflow.update_model`."""
    if gate is None:
        raise ConflictError(f"model '{name}': deployment_status 'deployed' is set through "
                            "assay.workflow.update_model, which asks the deployment gate")
    versions = list(session.scalars(
        select(ModelVersion.version).where(ModelVersion.model_id == model_id)
        .order_by(ModelVersion.id.desc())))
    why = []
    for version in versions:
        decision = gate(session, name, version)
        if decision.allowed:
            return
        why.append(f"{version}: {'; '.join(decision.reasons) or 'not allowed'}")
    raise ConflictError(f"model '{name}': deployment_status 'deployed' needs the deployment "
                        "gate to allow one of its versions ("
                        + (" | ".join(why) if why else "it has no version") + ")")


def update_model(session: Session, actor: User, name: str, *,
                 gate: Callable[[Session, str, str], Any] | None = None,
                 **fields: Any) -> Model:
    """Change inventory fields of a model; the audit event records old and new values.

    Model writers change the descriptive fields. Only the model's owner or an admin
    hands the model to another owner, and ``deployment_status: deployed`` is refused
    unless the deployment gate allows one of the model's versions: ``gate`` is the
    workflow's, so faces call :func:`assay.workflow.update_model`, which hands it in."""
    require_role(actor, *R.MODEL_WRITERS, action="update models")
    model = get_model(session, name)
    values = _model_values(session, fields, partial=True)
    if values.get("owner_id", model.owner_id) != model.owner_id and \
            actor.id != model.owner_id and R.ADMIN not in actor.roles:
        raise PermissionDenied(f"user '{actor.username}' may not change the owner of model "
                               f"'{name}': only its owner or an admin may")
    if values.get("deployment_status") == "deployed" and model.deployment_status != "deployed":
        _require_deployable(session, name, model.id, gate)
    before = model.to_dict()
    for key, value in values.items():
        setattr(model, key, value)
    session.flush()
    session.refresh(model)
    after = model.to_dict()
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if changes:
        append_event(session, actor=actor, action="model.update", subject_type="model",
                     subject_id=name, payload={"changes": changes})
    return model


def set_model_tier(session: Session, actor: User, name: str, tier: str | None, *,
                   next_review_at: Any = None, reason: str = "",
                   evidence: Mapping[str, str] | None = None) -> Model:
    """Record a model's risk tier and next review date (risk officers and admins)."""
    require_role(actor, R.RISK_OFFICER, R.ADMIN, action="set risk tiers")
    model = get_model(session, name)
    before = (model.tier, model.to_dict()["next_review_at"])
    model.tier = _choice("tier", tier, TIERS) if tier else None
    if next_review_at is not None:
        model.next_review_at = _when("next_review_at", next_review_at)
    session.flush()
    append_event(session, actor=actor, action="model.tier", subject_type="model",
                 subject_id=name,
                 payload={"tier": model.tier, "previous_tier": before[0],
                          "next_review_at": model.to_dict()["next_review_at"],
                          "previous_next_review_at": before[1], "reason": reason},
                 evidence=evidence)
    return model


# --------------------------------------------------------------------------- versions

def get_version(session: Session, model_name: str, version: str) -> ModelVersion:
    model = get_model(session, model_name)
    mv = session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                    ModelVersion.version == version)).first()
    if mv is None:
        raise NotFoundError(f"model '{model_name}' has no version '{version}'")
    return mv


def list_versions(session: Session, model_name: str) -> list[ModelVersion]:
    model = get_model(session, model_name)
    return list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id)
                                .order_by(ModelVersion.id)))


def add_version(session: Session, actor: User, model_name: str, version: str,
                **fields: Any) -> ModelVersion:
    """Register a new version of a model with its lineage.

    ``parent_version`` defaults to :data:`LATEST` (the model's newest
    version); pass ``None`` for a version without a parent. Digests are
    ``sha256:<hex>`` (bare hex is accepted).
    """
    require_role(actor, *R.MODEL_WRITERS, action="add model versions")
    unknown = set(fields) - set(VERSION_FIELDS)
    if unknown:
        raise InputError(f"unknown version field(s) {', '.join(sorted(unknown))}: expected "
                         f"{', '.join(VERSION_FIELDS)}")
    if not isinstance(version, str) or not _VERSION.match(version or ""):
        raise InputError(f"version '{version}': expected 1-100 characters of letters, digits, "
                         "'.', '_', '+', '-'")
    model = get_model(session, model_name)
    if session.scalars(select(ModelVersion.id).where(ModelVersion.model_id == model.id,
                                                     ModelVersion.version == version)).first():
        raise ConflictError(f"model '{model_name}' already has version '{version}'")
    parent_name = fields.pop("parent_version", LATEST)
    parent: ModelVersion | None = None
    if parent_name == LATEST:
        parent = session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id)
                                 .order_by(ModelVersion.id.desc()).limit(1)).first()
    elif parent_name:
        parent = get_version(session, model_name, str(parent_name))
    values: dict[str, Any] = {}
    for key, value in fields.items():
        values[key] = _digest(key, value) if key.endswith("_digest") else _text(key, value)
    mv = ModelVersion(model_id=model.id, version=version, created_by=actor.id,
                      parent_version_id=parent.id if parent else None, created_at=utcnow(),
                      **values)
    session.add(mv)
    session.flush()
    session.refresh(mv)
    evidence = {k.removesuffix("_digest"): v for k, v in values.items()
                if k.endswith("_digest") and v}
    append_event(session, actor=actor, action="model.version_add", subject_type="model_version",
                 subject_id=f"{model_name}@{version}", payload=mv.to_dict(), evidence=evidence)
    return mv
