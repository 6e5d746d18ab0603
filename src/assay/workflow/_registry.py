"""The few registry (and risk) look-ups the workflow needs, in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assay.registry import (
    get_model,
    get_user,
    get_version,
    list_users,
    require_role,
    update_model,
)
from assay.registry.tables import Certification, Model, ModelVersion, User

__all__ = [
    "Certification",
    "Model",
    "ModelVersion",
    "User",
    "active_users",
    "card_evidence",
    "get_model",
    "get_user",
    "get_version",
    "impact_assessment_digest",
    "is_developer",
    "require_role",
    "risk_assessment_digest",
    "settings_of",
    "update_model",
    "username_of",
    "versions_of",
]


def versions_of(session: Session, model_id: int) -> list[Any]:
    """Every version of a model, in the order they were registered."""
    return list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model_id)
                                .order_by(ModelVersion.id)))


def username_of(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return user.username if user is not None else f"user#{user_id}"


def active_users(session: Session) -> list[Any]:
    return list_users(session, include_inactive=False)


def settings_of(session: Session, settings: Any | None = None) -> Any:
    """The settings of the store this session belongs to (for the evidence store)."""
    if settings is not None:
        return settings
    found = session.info.get("settings")
    if found is not None:
        return found
    from assay.config import load_settings

    return load_settings()


def is_developer(user: Any, version: Any) -> bool:
    """Whether ``user`` created (developed) the model version."""
    created_by = getattr(version, "created_by", None)
    if created_by is None:
        return False
    if isinstance(created_by, int):
        return created_by == user.id
    return str(created_by) in (user.username, str(user.id))


def risk_assessment_digest(session: Session, version: Any) -> str | None:
    """A digest identifying the latest risk assessment of a version, if any."""
    try:
        from assay.risk import tables as risk_tables
    except ImportError:
        return None
    table = getattr(risk_tables, "RiskAssessment", None)
    if table is None or not hasattr(table, "model_version_id"):
        return None
    order = [c for c in (getattr(table, "created_at", None), table.id) if c is not None]
    row = session.scalars(select(table).where(table.model_version_id == version.id)
                          .order_by(*[c.desc() for c in order]).limit(1)).first()
    if row is None:
        return None
    digest = getattr(row, "digest", None) or getattr(row, "record_digest", None)
    return str(digest) if digest else f"risk_assessment:{row.id}"


def card_evidence(session: Session, version: Any, kind: str) -> tuple[str | None, dict[str, str]]:
    """For the evidence kinds ``model_card`` and ``reproduction``: what is missing (None
    when nothing is), and the digests of what is there."""
    from assay.registry.cards import card_state, reproduction_state

    if kind == "model_card":
        state = card_state(session, version.id)
        if not state.ok:
            return state.reason, {}
        return None, {"model_card": state.current.digest}
    row, reason = reproduction_state(session, version.id)
    if row is None:
        return reason, {}
    return None, {"reproduction": row.record_digest}
def impact_assessment_digest(session: Session, version: Any) -> str | None:
    """The digest of the current impact assessment of a version, if any."""
    from assay.impact.assessment import assessment_digest

    return assessment_digest(session, version.id)
