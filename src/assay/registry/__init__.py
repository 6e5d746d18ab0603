"""The model inventory: users and roles, models, versions and their lineage, certifications.

Every function takes the session and the acting :class:`User`, checks the
actor's rights, writes, and appends an audit event in the same transaction.
None of them commits: the caller owns the transaction (``store.transaction()``),
so an operation is recorded whole, with its audit event, or not at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from assay.config import Settings, load_settings
from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.registry import roles as R
from assay.registry.tables import (
    CERTIFICATION_STATUSES,
    CRITICALITIES,
    DECISION_TYPES,
    DEPLOYMENT_STATUSES,
    TIERS,
    Certification,
    Model,
    ModelVersion,
    User,
    UserRole,
)
from assay.store.audit import append_event
from assay.store.db import as_utc, utcnow

__all__ = [
    "LATEST",
    "Certification",
    "InventoryRow",
    "Model",
    "ModelVersion",
    "User",
    "add_user",
    "add_version",
    "get_model",
    "get_user",
    "get_version",
    "grant_role",
    "inventory",
    "latest_certification",
    "list_certifications",
    "list_models",
    "list_users",
    "list_versions",
    "record_certification",
    "register_model",
    "require_role",
    "revoke_role",
    "set_model_tier",
    "set_user_active",
    "unaudited_records",
    "update_model",
]

#: ``parent_version`` default of :func:`add_version`: the model's newest version.
LATEST = "latest"

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,99}$")
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


# --------------------------------------------------------------------------- users and roles

def get_user(session: Session, username: str, *, allow_inactive: bool = False) -> User:
    """The user called ``username``; NotFoundError if unknown.

    A deactivated user cannot act: PermissionDenied unless ``allow_inactive``.
    """
    name = (username or "").strip().lower()
    user = session.scalars(select(User).where(User.username == name)).first()
    if user is None:
        raise NotFoundError(f"unknown user '{username}' (see `assay user list`)")
    if not user.active and not allow_inactive:
        raise PermissionDenied(f"user '{user.username}' is deactivated")
    return user


def list_users(session: Session, *, include_inactive: bool = True) -> list[User]:
    stmt = select(User).order_by(User.username)
    if not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    return list(session.scalars(stmt))


def require_role(user: User, *roles: str, action: str | None = None) -> None:
    """PermissionDenied unless ``user`` holds at least one of ``roles``."""
    if not user.active:
        raise PermissionDenied(f"user '{user.username}' is deactivated")
    if user.roles & set(roles):
        return
    what = action or "do this"
    held = ", ".join(sorted(user.roles)) or "no roles"
    raise PermissionDenied(f"user '{user.username}' ({held}) may not {what}: "
                           f"needs one of {', '.join(roles)}")


def _check_roles(roles: Iterable[str]) -> list[str]:
    out = []
    for role in roles:
        r = str(role).strip().lower()
        if r not in R.ROLES:
            raise InputError(f"unknown role '{role}': expected one of {', '.join(R.ROLES)}")
        if r not in out:
            out.append(r)
    return out


def add_user(session: Session, actor: User | None, username: str, *, display_name: str = "",
             email: str | None = None, roles: Iterable[str] = ()) -> User:
    """Create a user with roles (admin only).

    The very first user of a store may be created with ``actor=None``; it is
    made an admin so that someone can manage the others.
    """
    name = (username or "").strip().lower()
    if not _USERNAME.match(name):
        raise InputError(f"user name '{username}': expected 1-100 characters of a-z, 0-9, "
                         "'.', '_', '-', '@', starting with a letter or digit")
    role_list = _check_roles(roles)
    if actor is None:
        if session.scalar(select(func.count()).select_from(User)):
            raise PermissionDenied("only an admin can add users once the first one exists")
        if R.ADMIN not in role_list:
            role_list.append(R.ADMIN)
        actor_name = name
    else:
        require_role(actor, R.ADMIN, action="add users")
        actor_name = actor.username
    if email is not None and email and "@" not in email:
        raise InputError(f"email '{email}': expected an address like name@example.org")
    if session.scalars(select(User.id).where(User.username == name)).first() is not None:
        raise ConflictError(f"user '{name}' already exists")
    now = utcnow()
    user = User(username=name, display_name=display_name or name, email=email or None,
                active=True, created_at=now)
    user.role_rows = [UserRole(role=r, granted_at=now, granted_by=actor_name) for r in role_list]
    session.add(user)
    session.flush()
    append_event(session, actor=actor_name, action="user.add", subject_type="user",
                 subject_id=name, payload={"display_name": user.display_name,
                                           "email": user.email, "roles": sorted(role_list)})
    return user


def _admins(session: Session) -> int:
    return session.scalar(
        select(func.count()).select_from(UserRole).join(User)
        .where(UserRole.role == R.ADMIN, User.active.is_(True))
    ) or 0


def grant_role(session: Session, actor: User, username: str, role: str) -> User:
    """Give ``username`` a role (admin only). Granting a held role is a no-op."""
    require_role(actor, R.ADMIN, action="grant roles")
    (r,) = _check_roles([role])
    user = get_user(session, username, allow_inactive=True)
    if r in user.roles:
        return user
    user.role_rows.append(UserRole(role=r, granted_at=utcnow(), granted_by=actor.username))
    session.flush()
    append_event(session, actor=actor, action="user.role_grant", subject_type="user",
                 subject_id=user.username, payload={"role": r, "roles": sorted(user.roles)})
    return user


def revoke_role(session: Session, actor: User, username: str, role: str) -> User:
    """Take a role from ``username`` (admin only); the last admin keeps theirs."""
    require_role(actor, R.ADMIN, action="revoke roles")
    (r,) = _check_roles([role])
    user = get_user(session, username, allow_inactive=True)
    if r not in user.roles:
        raise ConflictError(f"user '{user.username}' does not hold role '{r}'")
    if r == R.ADMIN and user.active and _admins(session) <= 1:
        raise ConflictError(f"user '{user.username}' is the last admin; grant admin to "
                            "someone else first")
    user.role_rows = [row for row in user.role_rows if row.role != r]
    session.flush()
    append_event(session, actor=actor, action="user.role_revoke", subject_type="user",
                 subject_id=user.username, payload={"role": r, "roles": sorted(user.roles)})
    return user


def set_user_active(session: Session, actor: User, username: str, active: bool) -> User:
    """Activate or deactivate a user (admin only). Deactivated users cannot act."""
    require_role(actor, R.ADMIN, action="activate or deactivate users")
    user = get_user(session, username, allow_inactive=True)
    if user.active == active:
        return user
    if not active and R.ADMIN in user.roles and _admins(session) <= 1:
        raise ConflictError(f"user '{user.username}' is the last admin and cannot be "
                            "deactivated")
    user.active = active
    session.flush()
    append_event(session, actor=actor, action="user.activate" if active else "user.deactivate",
                 subject_type="user", subject_id=user.username, payload={"active": active})
    return user


# --------------------------------------------------------------------------- models

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
        _require_deployable(session, name, None)
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


def _require_deployable(session: Session, name: str, model_id: int | None) -> None:
    """ConflictError unless the deployment gate (the workflow's, the only one) allows
    at least one version of the model: ``deployed`` in the inventory must never say
    more than the gate does."""
    from assay.workflow.service import gate

    versions = [] if model_id is None else list(session.scalars(
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


def update_model(session: Session, actor: User, name: str, **fields: Any) -> Model:
    """Change inventory fields of a model; the audit event records old and new values.

    Model writers change the descriptive fields. Only the model's owner or an admin
    hands the model to another owner, and ``deployment_status: deployed`` is refused
    unless the deployment gate allows one of the model's versions."""
    require_role(actor, *R.MODEL_WRITERS, action="update models")
    model = get_model(session, name)
    values = _model_values(session, fields, partial=True)
    if values.get("owner_id", model.owner_id) != model.owner_id and \
            actor.id != model.owner_id and R.ADMIN not in actor.roles:
        raise PermissionDenied(f"user '{actor.username}' may not change the owner of model "
                               f"'{name}': only its owner or an admin may")
    if values.get("deployment_status") == "deployed" and model.deployment_status != "deployed":
        _require_deployable(session, name, model.id)
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


# --------------------------------------------------------------------------- certifications

def _settings_of(session: Session, settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    found = session.info.get("settings")
    return found if isinstance(found, Settings) else load_settings()


def record_certification(session: Session, actor: User, model_name: str, version: str,
                         results: Mapping[str, Any] | None, results_bytes: bytes,
                         report_bytes: bytes | None = None, *,
                         settings: Settings | None = None) -> Certification:
    """Record a certification run of a model version as evidence.

    ``results_bytes`` is the ``results.json`` file exactly as written (its
    digest is the evidence); ``results`` is its parsed content (parsed from
    the bytes when ``None``). The results and the report are stored in the
    evidence store; an audit event points at them and at the policy, model
    and data digests the run names. A run made on a different model artifact
    than the version's is refused.
    """
    from assay.evidence import normalise_digest, store_bytes

    require_role(actor, *R.CERTIFIERS, action="record certifications")
    mv = get_version(session, model_name, version)
    try:
        parsed = json.loads(results_bytes)
    except (TypeError, ValueError) as exc:
        raise InputError(f"results.json: not valid JSON ({exc})") from None
    if results is None:
        results = parsed
    else:
        try:
            same = json.loads(json.dumps(dict(results))) == parsed
        except (TypeError, ValueError):
            same = False
        if not same:
            raise InputError("results.json: the parsed results differ from the bytes given")
    if not isinstance(results, Mapping):
        raise InputError("results.json: expected a JSON object")
    status = results.get("status")
    if status not in CERTIFICATION_STATUSES:
        raise InputError(f"results.json status '{status}': expected one of "
                         f"{', '.join(CERTIFICATION_STATUSES)}")
    policy = results.get("policy")
    if not isinstance(policy, Mapping) or not policy.get("name") or not policy.get("tier"):
        raise InputError("results.json policy: expected an object with name, version, tier "
                         "and sha256")
    try:
        policy_digest = normalise_digest(str(policy.get("sha256") or ""))
    except InputError:
        raise InputError(f"results.json policy.sha256 '{policy.get('sha256')}': expected a "
                         "SHA-256 hex digest") from None
    evidence: dict[str, str] = {"policy": policy_digest}
    model_info = results.get("model")
    if isinstance(model_info, Mapping) and model_info.get("sha256"):
        model_digest = _digest("results.json model.sha256", model_info["sha256"])
        if mv.artifact_digest and model_digest != mv.artifact_digest:
            raise ConflictError(
                f"results.json was produced for model {model_digest}, but {model_name} "
                f"version {version} is artifact {mv.artifact_digest}")
        if model_digest:
            evidence["model"] = model_digest
    data = results.get("data")
    if isinstance(data, Mapping):
        for key in ("evaluation", "reference"):
            part = data.get(key)
            if isinstance(part, Mapping) and part.get("sha256"):
                d = _digest(f"results.json data.{key}.sha256", part["sha256"])
                if d:
                    evidence[f"{key}_data"] = d
    st = _settings_of(session, settings)
    results_digest = store_bytes(st, bytes(results_bytes))
    evidence["results"] = results_digest
    report_digest = None
    if report_bytes:
        report_digest = store_bytes(st, bytes(report_bytes))
        evidence["report"] = report_digest
    cert = Certification(model_version_id=mv.id, policy_name=str(policy["name"]),
                         policy_version=str(policy.get("version") or ""),
                         policy_digest=policy_digest, tier=str(policy["tier"]), status=status,
                         results_digest=results_digest, report_digest=report_digest,
                         created_by=actor.id, created_at=utcnow())
    session.add(cert)
    session.flush()
    summary = results.get("summary") if isinstance(results.get("summary"), Mapping) else {}
    append_event(session, actor=actor, action="certification.record",
                 subject_type="model_version", subject_id=f"{model_name}@{version}",
                 payload={"certification_id": cert.id, "status": status,
                          "policy": cert.policy_name, "policy_version": cert.policy_version,
                          "tier": cert.tier, "summary": dict(summary or {})},
                 evidence=evidence)
    return cert


def latest_certification(session: Session, version_id: int, *, policy_name: str | None = None,
                         tier: str | None = None) -> Certification | None:
    """The newest certification of a model version (optionally under one policy and tier)."""
    stmt = select(Certification).where(Certification.model_version_id == version_id)
    if policy_name:
        stmt = stmt.where(Certification.policy_name == policy_name)
    if tier:
        stmt = stmt.where(Certification.tier == tier)
    stmt = stmt.order_by(Certification.created_at.desc(), Certification.id.desc()).limit(1)
    return session.scalars(stmt).first()


def list_certifications(session: Session, version_id: int) -> list[Certification]:
    return list(session.scalars(select(Certification)
                                .where(Certification.model_version_id == version_id)
                                .order_by(Certification.id)))


# --------------------------------------------------------------------------- inventory

_TIER_ORDER = {"high": 0, "medium": 1, "low": 2, None: 3}


@dataclass(frozen=True)
class InventoryRow:
    """One model in the inventory view."""

    name: str
    tier: str | None
    deployment_status: str
    criticality: str
    decision_type: str
    owner: str
    business_unit: str
    latest_version: str | None
    versions: int
    certification: str | None
    next_review_at: datetime | None
    overdue: bool
    days_overdue: int
    approval: str | None = None
    approved_version: str | None = None
    """The newest version whose approval for deployment is in force (approved and
    not expired), which may be older than ``latest_version``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "tier": self.tier, "deployment_status": self.deployment_status,
            "criticality": self.criticality, "decision_type": self.decision_type,
            "owner": self.owner, "business_unit": self.business_unit,
            "latest_version": self.latest_version, "versions": self.versions,
            "certification": self.certification,
            "next_review_at": (as_utc(self.next_review_at).isoformat().replace("+00:00", "Z")
                               if self.next_review_at else None),
            "overdue": self.overdue, "days_overdue": self.days_overdue,
            "approval": self.approval,
            "approved_version": self.approved_version,
        }


def approval_states(session: Session, version_ids: list[int], *,
                    now: datetime | None = None) -> dict[int, str]:
    """Version id -> state of its newest approval submission (``approved``,
    ``expired``, ``in_review: STAGE``, ``rejected``...); versions never
    submitted are absent."""
    return _approval_states(session, version_ids, as_utc(now or utcnow()))


def _approval_states(session: Session, version_ids: list[int] | Select, now: datetime
                     ) -> dict[int, str]:
    """State of the newest approval submission of each version, when the workflow is installed.

    ``approved`` becomes ``expired`` once the approval's expiry has passed;
    ``in_review`` names the stage under review.
    """
    if isinstance(version_ids, list) and not version_ids:
        return {}
    try:
        from assay.workflow.tables import Submission
    except ImportError:  # the workflow package is optional for the inventory
        return {}
    out: dict[int, str] = {}
    for vid, state, stage, expires in session.execute(
            select(Submission.model_version_id, Submission.state, Submission.current_stage,
                   Submission.expires_at)
            .where(Submission.model_version_id.in_(version_ids)).order_by(Submission.id)):
        if state == "approved" and expires is not None and as_utc(expires) < now:
            state = "expired"
        elif state == "in_review" and stage:
            state = f"in_review: {stage}"
        out[vid] = state  # ordered by id: the newest submission wins
    return out


def _approved_versions(session: Session, listed: Select, now: datetime) -> dict[int, str]:
    """Per model, the newest version whose newest submission is approved and not expired."""
    try:
        from assay.workflow.tables import Submission
    except ImportError:  # the workflow package is optional for the inventory
        return {}
    newest: dict[int, tuple[int, str, str, datetime | None]] = {}
    for model_id, vid, version, state, expires in session.execute(
            select(ModelVersion.model_id, ModelVersion.id, ModelVersion.version,
                   Submission.state, Submission.expires_at)
            .join(Submission, Submission.model_version_id == ModelVersion.id)
            .where(ModelVersion.model_id.in_(listed)).order_by(Submission.id)):
        newest[vid] = (model_id, version, state, expires)  # the newest submission wins
    out: dict[int, tuple[int, str]] = {}
    for vid, (model_id, version, state, expires) in newest.items():
        if state != "approved" or (expires is not None and as_utc(expires) < now):
            continue
        if model_id not in out or vid > out[model_id][0]:
            out[model_id] = (vid, version)
    return {model_id: version for model_id, (_, version) in out.items()}


def inventory(session: Session, *, now: datetime | None = None, tier: str | None = None,
              status: str | None = None, overdue_only: bool = False) -> list[InventoryRow]:
    """Every model with its tier, status, latest version, its certification and approval
    state, the newest version approved for deployment, and review dates.

    Ordered by tier (high first, unassessed last), then overdue first, then
    by next review date and name. A review is overdue when its date has passed
    and the model is not retired.
    """
    now = as_utc(now or utcnow())
    # Plain column queries: the inventory lists every model, so loading whole
    # records (with their owners' and creators' roles) would cost far more.
    filters = []
    if tier:
        filters.append(Model.tier == _choice("tier", tier, TIERS))
    if status:
        filters.append(Model.deployment_status == _choice("status", status,
                                                          DEPLOYMENT_STATUSES))
    models = session.execute(
        select(Model.id, Model.name, Model.tier, Model.deployment_status, Model.criticality,
               Model.decision_type, User.username, Model.business_unit, Model.next_review_at)
        .join(User, Model.owner_id == User.id).where(*filters).order_by(Model.name)).all()
    # The versions, certifications and submissions of the listed models are
    # selected by subqueries, not by lists of ids bound one parameter each.
    listed = select(Model.id).where(*filters)
    latest: dict[int, tuple[int, str]] = {}
    counts: dict[int, int] = {}
    certs: dict[int, str] = {}
    approvals: dict[int, str] = {}
    approved_versions: dict[int, str] = {}
    if models:
        for model_id, vid, version in session.execute(
                select(ModelVersion.model_id, ModelVersion.id, ModelVersion.version)
                .where(ModelVersion.model_id.in_(listed)).order_by(ModelVersion.id)):
            latest[model_id] = (vid, version)  # ordered by id: the last one wins
            counts[model_id] = counts.get(model_id, 0) + 1
        newest = (select(func.max(ModelVersion.id)).where(ModelVersion.model_id.in_(listed))
                  .group_by(ModelVersion.model_id))
        for vid, cstatus in session.execute(
                select(Certification.model_version_id, Certification.status)
                .where(Certification.model_version_id.in_(newest))
                .order_by(Certification.created_at, Certification.id)):
            certs[vid] = cstatus  # ordered oldest first: the newest wins
        approvals = _approval_states(session, newest, now)
        approved_versions = _approved_versions(session, listed, now)
    rows: list[InventoryRow] = []
    for model in models:
        mv = latest.get(model.id)
        due = as_utc(model.next_review_at) if model.next_review_at else None
        overdue = bool(due and due < now and model.deployment_status != "retired")
        days = (now - due).days if overdue and due else 0
        rows.append(InventoryRow(
            name=model.name, tier=model.tier, deployment_status=model.deployment_status,
            criticality=model.criticality, decision_type=model.decision_type,
            owner=model.username, business_unit=model.business_unit,
            latest_version=mv[1] if mv else None, versions=counts.get(model.id, 0),
            certification=certs.get(mv[0]) if mv else None, next_review_at=due,
            overdue=overdue, days_overdue=days,
            approval=approvals.get(mv[0]) if mv else None,
            approved_version=approved_versions.get(model.id)))
    if overdue_only:
        rows = [r for r in rows if r.overdue]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (_TIER_ORDER.get(r.tier, 3), not r.overdue,
                             r.next_review_at or far, r.name))
    return rows


# --------------------------------------------------------------------------- coverage

def unaudited_records(session: Session) -> list[str]:
    """Inventory records that have no audit event recording their creation.

    Every user, model, version and certification is created together with
    its event, so a record without one was written around assay (directly
    in the database). Returns one line per such record, empty when all are
    accounted for.
    """
    from assay.store.audit import AuditEvent

    def subjects(action: str) -> set[str]:
        return set(session.scalars(select(AuditEvent.subject_id)
                                   .where(AuditEvent.action == action)))

    problems: list[str] = []
    users = subjects("user.add")
    for (name,) in session.execute(select(User.username).order_by(User.id)):
        if name not in users:
            problems.append(f"user '{name}' has no user.add event")
    models = subjects("model.register")
    for (name,) in session.execute(select(Model.name).order_by(Model.id)):
        if name not in models:
            problems.append(f"model '{name}' has no model.register event")
    versions = subjects("model.version_add")
    for model_name, version in session.execute(
            select(Model.name, ModelVersion.version).join(Model)
            .order_by(ModelVersion.id)):
        if f"{model_name}@{version}" not in versions:
            problems.append(f"model version '{model_name}@{version}' has no "
                            "model.version_add event")
    recorded: set[int] = set()
    for payload in session.scalars(select(AuditEvent.payload)
                                   .where(AuditEvent.action == "certification.record")):
        if isinstance(payload, dict) and isinstance(payload.get("certification_id"), int):
            recorded.add(payload["certification_id"])
    for (cid,) in session.execute(select(Certification.id).order_by(Certification.id)):
        if cid not in recorded:
            problems.append(f"certification #{cid} has no certification.record event")
    return problems
