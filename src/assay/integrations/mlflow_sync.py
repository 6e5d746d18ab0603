"""MLflow's model registry mirrored into assay's inventory, and aliases set through the
deployment gate.

* :func:`sync`: every registered model (or one) and its versions become inventory models
  and versions, each linked to its MLflow version (:class:`~assay.integrations.tables.
  MlflowVersion`) with the lineage MLflow holds: run id, source, the run's logged data
  sets, the ``mlflow.source.git.commit`` and ``mlflow.source.name`` tags. Running it
  again changes nothing and records nothing; a version whose lineage changed in MLflow
  has its mirror updated, with the changes in the audit trail.
* :func:`promote`: sets an alias (``champion``) on an MLflow version only when assay's
  deployment gate allows that version; the decision, allowed or refused, is recorded.

Every function takes the session and the acting user, checks the actor's rights and
appends its audit events in the caller's transaction (the caller commits).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from assay.integrations.mlflow import ModelRef, Registry, version_metadata
from assay.integrations.tables import MlflowVersion
from assay.registry import roles as R
from assay.registry.models import (
    LATEST,
    add_version,
    get_model,
    get_version,
    register_model,
)
from assay.registry.tables import CRITICALITIES, DECISION_TYPES, Model, ModelVersion, User
from assay.registry.users import require_role
from assay.store.audit import append_event
from assay.store.db import utcnow

__all__ = ["PROMOTERS", "PromoteResult", "SyncReport", "mirrored", "promote", "sync"]

#: Roles that may set an alias through :func:`promote`: those who take a version to full
#: traffic in a release (docs/releases.md).
PROMOTERS: tuple[str, ...] = (R.BUSINESS_OWNER, R.RISK_OFFICER, R.ADMIN)
#: Inventory fields a model imported by :func:`sync` gets unless the registered model
#: carries an ``assay.<field>`` tag (``assay.owner``, ``assay.criticality`` ...).
MODEL_TAGS = ("owner", "decision_type", "criticality", "purpose", "intended_use",
              "business_unit")


@dataclass
class SyncReport:
    """What :func:`sync` did: models registered, versions imported, linked, updated, unchanged,
    and what it skipped (with the reason)."""

    models_registered: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.models_registered or self.imported or self.linked or self.updated)

    def to_dict(self) -> dict[str, Any]:
        return {"models_registered": self.models_registered, "imported": self.imported,
                "linked": self.linked, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped}


def _digest(meta: dict[str, Any]) -> str:
    blob = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def _lineage_digest(meta: dict[str, Any]) -> str:
    """The digest of what identifies the version's content (aliases and status move)."""
    return _digest({k: v for k, v in meta.items() if k not in ("aliases", "status",
                                                                "description")})


def _training_source(meta: dict[str, Any]) -> str:
    parts = []
    for ds in meta["datasets"]:
        where = f" {ds['source']}" if ds.get("source") else ""
        parts.append(f"{ds['name']} ({ds['context'] or 'input'}):{where} "
                     f"[mlflow digest {ds['digest']}]")
    return "; ".join(parts)


def mirrored(session: Session, model_name: str, version: str) -> MlflowVersion | None:
    """The MLflow mirror of an inventory version, or None."""
    mv = get_version(session, model_name, version)
    return session.scalars(select(MlflowVersion)
                           .where(MlflowVersion.model_version_id == mv.id)).first()


def _model_fields(actor: User, rm: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    tags = dict(getattr(rm, "tags", None) or {})
    fields = {"owner": actor.username, "decision_type": "human_in_the_loop",
              "criticality": "medium"}
    if getattr(rm, "description", None):
        fields["purpose"] = rm.description
    fields.update({k: v for k, v in defaults.items() if v is not None})
    for key in MODEL_TAGS:
        if f"assay.{key}" in tags:
            fields[key] = tags[f"assay.{key}"]
    return fields


def sync(session: Session, actor: User, registry: Registry, *, name: str | None = None,
         owner: str | None = None, decision_type: str | None = None,
         criticality: str | None = None) -> SyncReport:
    """Mirror the registered models of ``registry`` (only ``name`` when given) into the
    inventory.

    A model not in the inventory is registered (owner, decision type and criticality:
    the registered model's ``assay.*`` tags, else these arguments, else the actor,
    ``human_in_the_loop`` and ``medium``). A version not in the inventory is added with
    its code revision (the git commit) and training data (the run's logged data sets),
    and linked to its MLflow version; an inventory version of the same number without a
    link is linked. A linked version whose MLflow metadata changed has its mirror
    updated, the changes recorded (``mlflow.version_update``). Nothing changes, and no
    event is recorded, when MLflow has not changed. A model or version whose name is not
    valid in the inventory is skipped and reported."""
    require_role(actor, *R.MODEL_WRITERS, action="import models from MLflow")
    for flag, value, choices in (("decision_type", decision_type, DECISION_TYPES),
                                 ("criticality", criticality, CRITICALITIES)):
        if value is not None and value not in choices:
            raise InputError(f"{{{flag}}} {value!r}: expected one of {', '.join(choices)}",
                             fields=[flag])
    report = SyncReport()
    defaults = {"owner": owner, "decision_type": decision_type, "criticality": criticality}
    for rm in registry.registered_models(name):
        model = session.scalars(select(Model).where(Model.name == rm.name)).first()
        versions = registry.versions(rm.name)
        if model is None:
            try:  # a name the inventory refuses is refused before anything is written
                register_model(session, actor, rm.name, **_model_fields(actor, rm, defaults))
            except InputError as exc:
                report.skipped.append({"model": rm.name, "reason": str(exc)})
                continue
            report.models_registered.append(rm.name)
        for mlv in versions:
            _sync_version(session, actor, registry, rm.name, mlv, report)
    return report


def _sync_version(session: Session, actor: User, registry: Registry, name: str, mlv: Any,
                  report: SyncReport) -> None:
    version = str(mlv.version)
    label = f"{name}@{version}"
    meta = version_metadata(registry, mlv)
    digest = _digest(meta)
    model = get_model(session, name)
    mv = session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                    ModelVersion.version == version)).first()
    link = None if mv is None else session.scalars(
        select(MlflowVersion).where(MlflowVersion.model_version_id == mv.id)).first()
    if link is not None:
        if link.metadata_digest == digest:
            report.unchanged.append(label)
            return
        before = dict(link.metadata_)
        changes = {k: {"from": before.get(k), "to": meta[k]} for k in meta
                   if before.get(k) != meta[k]}
        link.metadata_, link.metadata_digest = meta, digest
        link.run_id, link.synced_at = meta["run_id"], utcnow()
        session.flush()
        append_event(session, actor=actor, action="mlflow.version_update",
                     subject_type="model_version", subject_id=label,
                     payload={"tracking_uri": registry.display_uri, "changes": changes,
                              "metadata_digest": digest})
        report.updated.append(label)
        return
    if mv is None:
        mv = add_version(session, actor, name, version, parent_version=LATEST,
                         code_revision=meta["git_commit"],
                         training_data_source=_training_source(meta),
                         feature_pipeline=meta["source"])
        report.imported.append(label)
    else:
        report.linked.append(label)
    session.add(MlflowVersion(model_version_id=mv.id, tracking_uri=registry.display_uri,
                              mlflow_name=name, mlflow_version=version,
                              run_id=meta["run_id"], metadata_=meta, metadata_digest=digest,
                              synced_at=utcnow()))
    session.flush()
    append_event(session, actor=actor, action="mlflow.version_link",
                 subject_type="model_version", subject_id=label,
                 payload={"tracking_uri": registry.display_uri, "mlflow_name": name,
                          "mlflow_version": version, "metadata": meta,
                          "metadata_digest": digest})


@dataclass
class PromoteResult:
    """The outcome of :func:`promote`: the gate's decision and whether the alias was set."""

    model: str
    version: str
    alias: str
    allowed: bool
    reasons: list[str]
    gate: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "alias": self.alias,
                "allowed": self.allowed, "reasons": list(self.reasons), "gate": self.gate}


def promote(session: Session, actor: User, registry: Registry, name: str, version: str,
            alias: str) -> PromoteResult:
    """Point ``alias`` of MLflow model ``name`` at ``version`` when the deployment gate
    allows that version (:func:`assay.workflow.gate`).

    The version must be mirrored (:func:`sync`) and unchanged in MLflow since; someone
    other than the one who added it to the inventory sets the alias (separation of
    duties, as for a full release). The decision is recorded either way:
    ``mlflow.alias_set`` with the gate's evidence, or ``mlflow.alias_refused`` with its
    reasons (the alias is then left as it was)."""
    require_role(actor, *PROMOTERS, action="set MLflow aliases")
    if not alias or not alias.replace("-", "").replace("_", "").isalnum() or alias.isdigit():
        raise InputError(f"alias {alias!r}: expected letters, digits, '-' or '_' (not only "
                         "digits, which MLflow reads as a version)")
    if not str(version).isdigit():
        raise InputError(f"version {version!r}: expected an MLflow version number")
    version = str(int(version))
    mlv = registry.version(ModelRef(name, version=version))
    try:
        link = mirrored(session, name, version)
    except NotFoundError:
        link = None
    if link is None:
        raise NotFoundError(f"models:/{name}/{version} is not in the inventory: run "
                            "`assay mlflow sync` first")
    mv = link.model_version
    if mv.created_by == actor.id:
        raise PermissionDenied(f"user '{actor.username}' added {name}@{version} to the "
                               "inventory and may not promote it: someone else sets the "
                               "alias (separation of duties)")
    meta = version_metadata(registry, mlv)
    if _lineage_digest(meta) != _lineage_digest(dict(link.metadata_)):
        raise ConflictError(f"models:/{name}/{version} changed in MLflow since it was synced "
                            "(run, source or data lineage): run `assay mlflow sync`, then "
                            "certify and approve it again")
    from assay.workflow import gate

    decision = gate(session, name, version)
    payload = {"tracking_uri": registry.display_uri, "alias": alias,
               "allowed": decision.allowed, "reasons": list(decision.reasons),
               "previous": _alias_target(registry, name, alias)}
    label = f"{name}@{version}"
    if not decision.allowed:
        append_event(session, actor=actor, action="mlflow.alias_refused",
                     subject_type="model_version", subject_id=label, payload=payload,
                     evidence={k: v for k, v in decision.evidence.items() if v})
        return PromoteResult(name, version, alias, False, list(decision.reasons),
                             decision.to_dict())
    append_event(session, actor=actor, action="mlflow.alias_set",
                 subject_type="model_version", subject_id=label, payload=payload,
                 evidence={k: v for k, v in decision.evidence.items() if v})
    session.flush()
    registry.set_alias(name, alias, version)  # last: a failure rolls the event back
    return PromoteResult(name, version, alias, True, [], decision.to_dict())


def _alias_target(registry: Registry, name: str, alias: str) -> str | None:
    aliases = dict(getattr(registry.registered_model(name), "aliases", None) or {})
    value = aliases.get(alias)
    return None if value is None else str(value)
