"""The impact assessment record of a model version.

* The **theory of impact** (intended outcomes and for whom, the pathway from the
  model's outputs to decisions to outcomes, assumptions, out-of-scope uses,
  anticipated unintended consequences) is written in YAML and validated like a
  policy: an error names the file, line and field. Each save is a new revision
  (who, when, digest), audited as ``impact.assess``; nothing is overwritten.
* The **impact register**: anticipated impacts, positive or negative, with the
  stakeholders and groups affected, likelihood and severity (1-5), how they are
  measured, their status, and links to risks, KPIs and incidents.
* **Stakeholder feedback**: feedback and complaints of affected people (channel,
  category, group where known), linkable to a register entry and counted per window
  as a KPI (:mod:`assay.impact.kpis`).

Editing needs one of :data:`EDITORS`; reading needs a signed-in user (the faces check).
Functions take a ``Session`` and never commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assay.errors import InputError, NotFoundError, choice_error
from assay.impact.tables import (
    FEEDBACK_CHANNELS,
    IMPACT_KINDS,
    REGISTER_STATUSES,
    ImpactAssessment,
    ImpactFeedback,
    ImpactKpi,
    ImpactRegisterEntry,
)
from assay.policy._yaml import load_yaml_mapping
from assay.registry import get_version, require_role
from assay.registry.roles import ADMIN, BUSINESS_OWNER, DATA_SCIENTIST, RISK_OFFICER
from assay.registry.tables import ModelVersion, User, _iso
from assay.store.audit import append_event, canonical_json
from assay.store.db import as_utc, utcnow

#: Who may write the impact record.
EDITORS = (BUSINESS_OWNER, DATA_SCIENTIST, RISK_OFFICER, ADMIN)
MAX_TEXT = 5000


# --------------------------------------------------------------------------- theory schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _nonempty(items: list[str]) -> list[str]:
    for i, item in enumerate(items):
        if not item.strip():
            raise ValueError(f"item {i + 1} is empty")
    return items


class Outcome(_Strict):
    """An intended outcome and the people it is for."""

    outcome: str = Field(min_length=1, max_length=MAX_TEXT)
    for_whom: list[str] = Field(min_length=1)
    measured_by: list[str] = Field(default_factory=list)

    _check = field_validator("for_whom", "measured_by")(_nonempty)


class Theory(_Strict):
    """A theory of impact (the YAML document ``assay impact assess --file`` reads)."""

    summary: str = Field(default="", max_length=MAX_TEXT)
    intended_outcomes: list[Outcome] = Field(min_length=1)
    #: steps from the model's outputs to decisions to outcomes
    pathway: list[str] = Field(min_length=1)
    assumptions: list[str] = Field(default_factory=list)
    out_of_scope: list[str] = Field(default_factory=list)
    unintended_consequences: list[str] = Field(default_factory=list)

    _check = field_validator("pathway", "assumptions", "out_of_scope",
                             "unintended_consequences")(_nonempty)


def parse_theory(text: str | bytes, *, source: str = "<theory>") -> dict[str, Any]:
    """Validate a theory of impact given as YAML; errors name ``source``, line and field."""
    from assay.policy.loader import _from_validation

    data, positions = load_yaml_mapping(text, source,
                                        "a mapping with 'intended_outcomes' and 'pathway'")
    try:
        return Theory.model_validate(data).model_dump()
    except ValidationError as exc:
        raise _from_validation(exc, source, positions) from None


def read_theory(path: str | Path) -> dict[str, Any]:
    """:func:`parse_theory` of a file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read the theory of impact: "
                         f"{exc.strerror or exc}") from None
    return parse_theory(raw, source=p.name)


# --------------------------------------------------------------------------- assessments


def _digest(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def _lock_version(session: Session, model: str, version: str) -> ModelVersion:
    """The version, locked for the rest of the transaction (revisions are numbered in turn)."""
    mv = get_version(session, model, version)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(ModelVersion.id).where(ModelVersion.id == mv.id)
                        .with_for_update())
    else:  # take SQLite's write lock before reading the last revision
        session.execute(update(ModelVersion).where(ModelVersion.id == mv.id)
                        .values(version=ModelVersion.version))
    return mv


def assessment_to_dict(a: ImpactAssessment, mv: ModelVersion, author: str | None) -> dict:
    return {"model": mv.model.name, "version": mv.version, "revision": a.revision,
            "theory": a.theory, "source": a.source, "digest": a.digest,
            "created_by": author, "created_at": _iso(a.created_at)}


def save_assessment(session: Session, actor: User, model: str, version: str,
                    theory: Mapping[str, Any] | str | bytes, *,
                    source: str = "") -> dict[str, Any]:
    """Save a new revision of the theory of impact of ``model@version``.

    ``theory`` is YAML text (validated with file:line errors naming ``source``) or a
    mapping (validated against :class:`Theory`, as the REST API and web UI send it).
    """
    require_role(actor, *EDITORS, action="edit the impact assessment")
    if isinstance(theory, (str, bytes)):
        body = parse_theory(theory, source=source or "<theory>")
    else:
        try:
            body = Theory.model_validate(dict(theory)).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "theory"
            raise InputError(f"theory of impact: {loc}: {err['msg']}") from None
    mv = _lock_version(session, model, version)
    last = session.scalar(select(func.max(ImpactAssessment.revision))
                          .where(ImpactAssessment.model_version_id == mv.id)) or 0
    row = ImpactAssessment(model_version_id=mv.id, revision=last + 1, theory=body,
                           source=(source or "")[:300], digest=_digest(body),
                           created_by=actor.id, created_at=utcnow())
    session.add(row)
    session.flush()
    append_event(session, actor=actor, action="impact.assess", subject_type="model_version",
                 subject_id=f"{model}@{version}",
                 payload={"revision": row.revision, "source": row.source},
                 evidence={"impact_assessment": row.digest})
    return assessment_to_dict(row, mv, actor.username)


def _author(session: Session, user_id: int) -> str:
    u = session.get(User, user_id)
    return u.username if u is not None else f"user#{user_id}"


def current_assessment(session: Session, model: str, version: str) -> dict[str, Any] | None:
    """The latest revision of the assessment of ``model@version`` (None if there is none)."""
    mv = get_version(session, model, version)
    row = _latest(session, mv.id)
    return None if row is None else assessment_to_dict(row, mv, _author(session, row.created_by))


def _latest(session: Session, version_id: int) -> ImpactAssessment | None:
    return session.scalars(select(ImpactAssessment)
                           .where(ImpactAssessment.model_version_id == version_id)
                           .order_by(ImpactAssessment.revision.desc()).limit(1)).first()


def assessment_digest(session: Session, version_id: int) -> str | None:
    """The digest of the current assessment of a version (the workflow's evidence)."""
    row = _latest(session, version_id)
    return None if row is None else row.digest


def assessment_history(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """Every revision, oldest first."""
    mv = get_version(session, model, version)
    rows = session.scalars(select(ImpactAssessment)
                           .where(ImpactAssessment.model_version_id == mv.id)
                           .order_by(ImpactAssessment.revision))
    return [assessment_to_dict(r, mv, _author(session, r.created_by)) for r in rows]


# --------------------------------------------------------------------------- helpers


def _choice(name: str, value: str, choices: Iterable[str]) -> str:
    value = (value or "").strip()
    choices = tuple(choices)
    if value not in choices:
        raise choice_error(name, value, choices)
    return value


def _text(name: str, value: str | None, *, required: bool = False, limit: int = MAX_TEXT
          ) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InputError(f"{{{name}}}: must not be empty", fields=[name])
    if len(value) > limit:
        raise InputError(f"{{{name}}}: at most {limit} characters, got {len(value)}", fields=[name])
    return value


def _names(name: str, values: Iterable[str] | None) -> list[str]:
    out = []
    for v in values or ():
        v = _text(name, str(v), limit=200)
        if v and v not in out:
            out.append(v)
    return out


def _scale(name: str, value: Any) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{{{name}}}: expected an integer from 1 to 5, got {value!r}",
                         fields=[name]) from None
    if not 1 <= v <= 5 or (v != value and str(value).strip() != str(v)):
        raise InputError(f"{{{name}}}: expected an integer from 1 to 5, got {value!r}",
                         fields=[name])
    return v


def parse_time(value: datetime | str | None, name: str) -> datetime:
    """A timezone-aware UTC time from a datetime or ISO text (date or date-time)."""
    if value is None:
        return utcnow()
    if isinstance(value, datetime):
        return as_utc(value)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{{{name}}}: expected a date YYYY-MM-DD or a time "
                         f"YYYY-MM-DDTHH:MM, got {text!r}", fields=[name]) from None
    return as_utc(parsed)


# --------------------------------------------------------------------------- register

LINK_KINDS = ("risks", "kpis", "incidents")


def register_to_dict(e: ImpactRegisterEntry) -> dict[str, Any]:
    return {"id": e.id, "title": e.title, "kind": e.kind, "stakeholders": list(e.stakeholders),
            "groups": list(e.groups), "likelihood": e.likelihood, "severity": e.severity,
            "score": e.likelihood * e.severity, "measurement": e.measurement,
            "status": e.status,
            "links": {k: list((e.links or {}).get(k, [])) for k in LINK_KINDS},
            "created_at": _iso(e.created_at), "updated_at": _iso(e.updated_at)}


def add_register_entry(session: Session, actor: User, model: str, version: str, *,
                       title: str, kind: str, likelihood: int, severity: int,
                       stakeholders: Iterable[str] = (), groups: Iterable[str] = (),
                       measurement: str = "", status: str = "anticipated") -> dict[str, Any]:
    """Add an anticipated impact to the register of ``model@version``."""
    require_role(actor, *EDITORS, action="edit the impact register")
    mv = get_version(session, model, version)
    now = utcnow()
    e = ImpactRegisterEntry(
        model_version_id=mv.id, title=_text("title", title, required=True, limit=300),
        kind=_choice("kind", kind, IMPACT_KINDS), stakeholders=_names("stakeholders",
                                                                       stakeholders),
        groups=_names("groups", groups), likelihood=_scale("likelihood", likelihood),
        severity=_scale("severity", severity), measurement=_text("measurement", measurement),
        status=_choice("status", status, REGISTER_STATUSES),
        links={k: [] for k in LINK_KINDS}, created_by=actor.id, created_at=now,
        updated_at=now)
    session.add(e)
    session.flush()
    out = register_to_dict(e)
    append_event(session, actor=actor, action="impact.register.add",
                 subject_type="impact_register", subject_id=e.id,
                 payload={"model": model, "version": version, **out})
    return out


def _entry(session: Session, mv: ModelVersion, entry_id: int) -> ImpactRegisterEntry:
    e = session.scalars(select(ImpactRegisterEntry).where(ImpactRegisterEntry.id == int(entry_id))
                        .with_for_update()).first()
    if e is None or e.model_version_id != mv.id:
        raise NotFoundError(f"{mv.model.name}@{mv.version} has no impact register entry "
                            f"#{entry_id} (see `assay impact register list`)")
    return e


def _incident_ids(values: Iterable[int | str]) -> list[int]:
    out: list[int] = []
    for v in values:
        text = str(v).strip().lstrip("#")
        if isinstance(v, bool) or not text.isdigit():
            raise InputError(f"incidents: expected an incident id (a number, see `assay "
                             f"incident list`), got {str(v)!r}")
        if int(text) not in out:
            out.append(int(text))
    return out


def _incidents(session: Session, mv: ModelVersion, ids: Iterable[Any]) -> list[dict[str, Any]]:
    """The linked incidents with their title and state (a reference kept as text by an
    older version of assay is shown as it is, with no title or state)."""
    from assay.operate.incident_tables import Incident

    nums = [i for i in ids if isinstance(i, int)]
    found = {i.id: i for i in session.scalars(select(Incident).where(
        Incident.id.in_(nums), Incident.model_version_id == mv.id))} if nums else {}
    return [{"id": i, "title": found[i].title, "state": found[i].state}
            if i in found else {"id": i, "title": None, "state": None} for i in ids]


def link_register_entry(session: Session, actor: User, model: str, version: str,
                        entry_id: int, *, risks: Iterable[str] = (), kpis: Iterable[str] = (),
                        incidents: Iterable[int | str] = (), status: str | None = None
                        ) -> dict[str, Any]:
    """Link a register entry to risks (ids of the risk register), KPIs (names of this
    version's KPIs, checked) and incidents (ids of this version's incidents, checked),
    and optionally set its status. Everything is checked before anything changes."""
    from assay.operate.incident_tables import Incident

    require_role(actor, *EDITORS, action="edit the impact register")
    mv = get_version(session, model, version)
    e = _entry(session, mv, entry_id)
    known = set(session.scalars(select(ImpactKpi.name)
                                .where(ImpactKpi.model_version_id == mv.id)))
    kpi_names = _names("kpis", kpis)
    for k in kpi_names:
        if k not in known:
            raise NotFoundError(f"kpis: {model}@{version} has no KPI '{k}' "
                                "(see `assay impact kpi list`)")
    incident_ids = _incident_ids(incidents)
    for i in incident_ids:
        inc = session.get(Incident, i) if i < 2**31 else None
        if inc is None or inc.model_version_id != mv.id:
            raise NotFoundError(f"incidents: {model}@{version} has no incident #{i} "
                                "(see `assay incident list`)")
    new_status = _choice("status", status, REGISTER_STATUSES) if status is not None else None
    links = {k: list((e.links or {}).get(k, [])) for k in LINK_KINDS}
    for kind, values in (("risks", _names("risks", risks)), ("kpis", kpi_names),
                         ("incidents", incident_ids)):
        links[kind] += [v for v in values if v not in links[kind]]
    e.links = links
    if new_status is not None:
        e.status = new_status
    e.updated_at = utcnow()
    session.flush()
    out = register_to_dict(e)
    append_event(session, actor=actor, action="impact.register.link",
                 subject_type="impact_register", subject_id=e.id,
                 payload={"model": model, "version": version, "links": out["links"],
                          "status": out["status"]})
    return {**out, "incidents": _incidents(session, mv, out["links"]["incidents"])}


def list_register(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """The register of ``model@version``, highest likelihood x severity first, with the
    feedback linked to each entry counted and the linked incidents (``incidents``: id,
    title, state)."""
    mv = get_version(session, model, version)
    counts = dict(session.execute(
        select(ImpactFeedback.register_id, func.count(ImpactFeedback.id))
        .where(ImpactFeedback.model_version_id == mv.id,
               ImpactFeedback.register_id.is_not(None))
        .group_by(ImpactFeedback.register_id)).all())
    rows = session.scalars(select(ImpactRegisterEntry)
                           .where(ImpactRegisterEntry.model_version_id == mv.id)
                           .order_by(ImpactRegisterEntry.id))
    out = []
    for e in rows:
        d = register_to_dict(e)
        out.append({**d, "feedback": int(counts.get(e.id, 0)),
                    "incidents": _incidents(session, mv, d["links"]["incidents"])})
    out.sort(key=lambda d: (-d["score"], d["id"]))
    return out


# --------------------------------------------------------------------------- feedback


def feedback_to_dict(f: ImpactFeedback) -> dict[str, Any]:
    return {"id": f.id, "channel": f.channel, "category": f.category, "group": f.group,
            "text": f.text, "received_at": _iso(f.received_at), "register_id": f.register_id,
            "recorded_at": _iso(f.recorded_at)}


def add_feedback(session: Session, actor: User, model: str, version: str, *, channel: str,
                 category: str, text: str = "", group: str = "",
                 received_at: datetime | str | None = None,
                 register_id: int | None = None) -> dict[str, Any]:
    """Record feedback or a complaint about ``model@version`` from an affected person."""
    require_role(actor, *EDITORS, action="record stakeholder feedback")
    mv = get_version(session, model, version)
    if register_id is not None:
        _entry(session, mv, register_id)
    f = ImpactFeedback(
        model_version_id=mv.id, channel=_choice("channel", channel, FEEDBACK_CHANNELS),
        category=_text("category", category, required=True, limit=100),
        group=_text("group", group, limit=200), text=_text("text", text),
        received_at=parse_time(received_at, "received_at"), register_id=register_id,
        recorded_by=actor.id, recorded_at=utcnow())
    session.add(f)
    session.flush()
    out = feedback_to_dict(f)
    # the text may hold personal data: the audit event keeps its digest, not the words
    payload = {k: v for k, v in out.items() if k != "text"}
    append_event(session, actor=actor, action="impact.feedback.add",
                 subject_type="impact_feedback", subject_id=f.id,
                 payload={"model": model, "version": version, **payload,
                          "text_sha256": hashlib.sha256(f.text.encode()).hexdigest()})
    return out


def list_feedback(session: Session, model: str, version: str, *,
                  category: str | None = None) -> list[dict[str, Any]]:
    mv = get_version(session, model, version)
    stmt = (select(ImpactFeedback).where(ImpactFeedback.model_version_id == mv.id)
            .order_by(ImpactFeedback.received_at, ImpactFeedback.id))
    if category:
        stmt = stmt.where(ImpactFeedback.category == category)
    return [feedback_to_dict(f) for f in session.scalars(stmt)]
