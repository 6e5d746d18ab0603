"""The append-only, hash-chained audit trail.

Every change in the governance plane appends one :class:`AuditEvent` inside
the same transaction as the change itself, so the trail and the records can
never disagree. Events form a chain:

* ``seq`` numbers events 1, 2, 3, ... with no gaps;
* ``prev_hash`` is the ``hash`` of the event before (64 zeros for the first);
* ``hash = sha256(prev_hash + canonical_json(event without hash))`` as
  lowercase hex, where canonical JSON has sorted keys, no whitespace, UTF-8
  text (not ``\\u`` escapes) and times as ISO-8601 UTC with microseconds.

Altering, deleting or reordering a stored event breaks the chain at that
event, which :func:`verify_chain` reports. Rewriting the whole tail of the
chain (re-hashing every later event) is only detectable against a hash kept
outside the database, which is what ``anchor`` in :func:`verify_chain` and
the JSON Lines export are for.

Appending is serialised: on PostgreSQL with a transaction-scoped advisory
lock, on SQLite by taking the database write lock before reading the chain
head, so two transactions can never both append after the same event. The
migration adds triggers that refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import IO, Any

from sqlalchemy import JSON, Index, Integer, String, and_, or_, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from assay.errors import InputError
from assay.store.db import Base, as_utc, utcnow

#: ``prev_hash`` of the first event.
GENESIS_HASH = "0" * 64
#: Key of the PostgreSQL advisory lock that serialises appends ("assayaud").
_PG_LOCK_KEY = 0x6173736179617564 & 0x7FFFFFFFFFFFFFFF

#: The fields covered by an event's hash, in the order they are exported.
HASHED_FIELDS = ("seq", "created_at", "actor", "action", "subject_type", "subject_id",
                 "payload", "evidence", "prev_hash")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[str] = mapped_column(String(32), nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    subject_type: Mapped[str] = mapped_column(String(60), nullable=False)
    subject_id: Mapped[str] = mapped_column(String(300), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    evidence: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)

    def body(self) -> dict[str, Any]:
        """The hashed content of the event (everything but ``hash``)."""
        return {
            "seq": self.seq,
            "created_at": self.created_at,
            "actor": self.actor,
            "action": self.action,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "payload": self.payload,
            "evidence": self.evidence,
            "prev_hash": self.prev_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        """The event as exported: its hashed body plus ``hash``."""
        return {**self.body(), "hash": self.hash}

    def __repr__(self) -> str:
        return (f"AuditEvent(seq={self.seq}, action={self.action!r}, "
                f"subject={self.subject_type}:{self.subject_id})")


# --------------------------------------------------------------------------- canonical form

def format_time(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and a ``Z``: ``2026-11-25T10:00:00.000000Z``."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _check_finite(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"audit event {where}: {value!r} cannot be recorded "
                         "(expected a finite number)")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, non-ASCII kept as UTF-8, no NaN or infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_to_json)


def _normalise(obj: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``obj`` as plain JSON values, exactly as it will read back from the store."""
    try:
        out = json.loads(json.dumps(dict(obj), default=_to_json, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise InputError(f"audit event {where}: {exc}") from None
    _check_finite(out, where)
    return out


def event_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical_json(body))`` as lowercase hex."""
    data = (prev_hash + canonical_json(dict(body))).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- appending

def _lock_chain(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    elif dialect == "sqlite":
        # A write statement (matching no row) takes SQLite's write lock for the
        # rest of the transaction, so the head read below cannot go stale.
        session.execute(text("UPDATE audit_events SET seq = seq WHERE 1 = 0"))


def chain_head(session: Session) -> tuple[int, str]:
    """``(seq, hash)`` of the last event, or ``(0, GENESIS_HASH)`` for an empty trail."""
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def append_event(
    session: Session,
    *,
    actor: Any,
    action: str,
    subject_type: str,
    subject_id: Any,
    payload: Mapping[str, Any] | None = None,
    evidence: Mapping[str, str] | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    ``actor`` is a user name (a ``User`` is accepted too); ``evidence`` maps
    a name (``results``, ``policy``, ``model``...) to the digest of the
    artifact the change rests on. The caller commits; if its transaction
    rolls back, the event goes with it.
    """
    actor_name = getattr(actor, "username", actor)
    if not isinstance(actor_name, str) or not actor_name:
        raise InputError(f"audit event: actor must be a user name, got {actor!r}")
    if not action:
        raise InputError("audit event: action must not be empty")
    body_payload = _normalise(payload or {}, "payload")
    body_evidence = _normalise(evidence or {}, "evidence")
    for name, digest in body_evidence.items():
        if not isinstance(digest, str) or not digest:
            raise InputError(f"audit event evidence '{name}': expected a digest string, "
                             f"got {digest!r}")
    _lock_chain(session)
    seq, prev = chain_head(session)
    event = AuditEvent(
        seq=seq + 1,
        created_at=format_time(utcnow()),
        actor=actor_name,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        payload=body_payload,
        evidence=body_evidence,
        prev_hash=prev,
    )
    event.hash = event_hash(prev, event.body())
    session.add(event)
    session.flush()
    return event


# --------------------------------------------------------------------------- reading

def iter_records(session: Session, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every event as an exported dict, in ``seq`` order, read in batches."""
    cols = [getattr(AuditEvent, f) for f in (*HASHED_FIELDS, "hash")]
    last = 0
    while True:
        rows = session.execute(
            select(*cols).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield dict(row._mapping)
        last = rows[-1][0]


def list_events(
    session: Session,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    model: str | None = None,
    limit: int | None = 100,
    newest_first: bool = True,
) -> list[AuditEvent]:
    """Events matching every filter given (``action`` may end in ``*`` as a prefix).

    ``model`` selects the events about one model and its versions
    (subjects ``model:NAME`` and ``model_version:NAME@VERSION``).
    """
    q = select(AuditEvent)
    if model:
        q = q.where(or_(
            and_(AuditEvent.subject_type == "model", AuditEvent.subject_id == model),
            and_(AuditEvent.subject_type == "model_version",
                 AuditEvent.subject_id.startswith(model + "@", autoescape=True)),
        ))
    if subject_type:
        q = q.where(AuditEvent.subject_type == subject_type)
    if subject_id:
        q = q.where(AuditEvent.subject_id == str(subject_id))
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if action:
        if action.endswith("*"):
            q = q.where(AuditEvent.action.startswith(action[:-1]))
        else:
            q = q.where(AuditEvent.action == action)
    q = q.order_by(AuditEvent.seq.desc() if newest_first else AuditEvent.seq)
    if limit is not None:
        q = q.limit(limit)
    return list(session.scalars(q))


# --------------------------------------------------------------------------- verifying

@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_chain`.

    ``first_bad_seq`` is the sequence number of the first event that was
    altered, deleted or reordered (``None`` when the chain is intact) and
    ``reason`` says which, in words.
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    head_seq: int = 0
    head_hash: str = GENESIS_HASH

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq,
                "reason": self.reason, "head_seq": self.head_seq, "head_hash": self.head_hash}


def verify_records(records: Iterable[Mapping[str, Any]],
                   *, all_hashes: Container[str] | None = None,
                   anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Verify a sequence of exported events (dicts with the hashed fields and ``hash``).

    ``anchor`` is a ``(seq, hash)`` pair recorded earlier outside the
    database (for example from a previous export): the chain must still hold
    that event with that hash, which catches a truncated or wholly rewritten
    tail. ``all_hashes`` (every stored hash) tells a reordered event from
    one that follows a deleted or rewritten event.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    anchor_seen = anchor is None
    for rec in records:
        seq = rec["seq"]
        if seq != expected_seq:
            if seq < expected_seq:
                return VerifyResult(False, checked, seq,
                                    f"event {seq} appears twice or out of order",
                                    expected_seq - 1, prev_hash)
            missing = (f"event {expected_seq} is missing" if seq == expected_seq + 1
                       else f"events {expected_seq} to {seq - 1} are missing")
            return VerifyResult(False, checked, expected_seq,
                                f"{missing} (deleted); the chain continues at event {seq}",
                                expected_seq - 1, prev_hash)
        body = {k: rec[k] for k in HASHED_FIELDS}
        own_ok = event_hash(rec["prev_hash"], body) == rec["hash"]
        if rec["prev_hash"] != prev_hash:
            if own_ok and seq > 1:
                return VerifyResult(False, checked, seq - 1,
                                    f"event {seq - 1} was altered and re-hashed: event {seq} "
                                    "links to a different hash", expected_seq - 1, prev_hash)
            if all_hashes is not None and rec["prev_hash"] in all_hashes:
                return VerifyResult(False, checked, seq,
                                    f"event {seq} is out of order: it follows a different "
                                    f"event than event {seq - 1}", expected_seq - 1, prev_hash)
            return VerifyResult(False, checked, seq,
                                f"event {seq} does not link to event {seq - 1}: an event "
                                "before it was deleted or rewritten", expected_seq - 1, prev_hash)
        if not own_ok:
            return VerifyResult(False, checked, seq,
                                f"event {seq} was altered: its content does not match its hash",
                                expected_seq - 1, prev_hash)
        if anchor is not None and seq == anchor[0]:
            if rec["hash"] != anchor[1]:
                return VerifyResult(False, checked, seq,
                                    f"event {seq} does not match the anchor hash: the chain was "
                                    "rewritten from this event on or earlier",
                                    expected_seq - 1, prev_hash)
            anchor_seen = True
        checked += 1
        prev_hash = rec["hash"]
        expected_seq += 1
    if not anchor_seen:
        assert anchor is not None
        return VerifyResult(False, checked, expected_seq,
                            f"the trail ends at event {expected_seq - 1} but the anchor names "
                            f"event {anchor[0]}: events were deleted from the end",
                            expected_seq - 1, prev_hash)
    return VerifyResult(True, checked, None, "", expected_seq - 1, prev_hash)


class _StoredHashes:
    """``h in hashes`` asks the store, so a long trail is never held in memory."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __contains__(self, digest: object) -> bool:
        return self.session.scalars(select(AuditEvent.seq).where(AuditEvent.hash == digest)
                                    .limit(1)).first() is not None


def verify_chain(session: Session, *, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute the chain from the store and name the first broken event."""
    return verify_records(iter_records(session), all_hashes=_StoredHashes(session),
                          anchor=anchor)


def export_jsonl(session: Session, out: IO[str]) -> int:
    """Write the whole trail as JSON Lines, one canonical event (with its hash) per line.

    Returns the number of events written. The export is written whatever
    the state of the chain; verify it (or the store) to judge it.
    """
    n = 0
    for rec in iter_records(session):
        out.write(canonical_json(rec) + "\n")
        n += 1
    return n
